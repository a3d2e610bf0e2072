"""load_into: the one load sequence (resolve -> warn -> build -> safe read -> strict load -> clear errors).

Offline; every checkpoint is a tiny network saved by the test itself, registered under a private name.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from aigve import weights as W
from aigve.errors import WeightsError


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.register_buffer("scale", torch.ones(2))


class Other(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    cache_root = tmp_path / "cache"
    monkeypatch.setenv(W.ENV_CACHE_DIR, str(cache_root))
    monkeypatch.setenv(W.ENV_WEIGHTS_DIR, str(tmp_path / "weights-env"))
    monkeypatch.delenv(W.ENV_MIRROR, raising=False)
    monkeypatch.setenv(W.ENV_OFFLINE, "1")
    monkeypatch.setattr(W.spec, "_EXTRA", {})
    return {"cache": cache_root / "weights", "tmp": tmp_path}


def _state(seed: int = 0, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.to(dtype) for k, v in Tiny().state_dict().items()}


def _register(
    name: str, file: Path | None = None, *, filename: str | None = None, **kw: object
) -> W.WeightSpec:
    data = file.read_bytes() if file is not None else b""
    fields: dict[str, object] = {
        "name": name,
        "filename": filename or (file.name if file is not None else f"{name}.safetensors"),
        "urls": (),
        "hash_kind": "sha256" if file is not None else "none",
        "hash_value": hashlib.sha256(data).hexdigest() if file is not None else None,
        "size": len(data) if file is not None else None,
        "license": "test",
        "source_page": "https://example.org/",
        "used_by": ("toymetric",),
    }
    fields.update(kw)
    spec = W.WeightSpec(**fields)  # type: ignore[arg-type]
    W.register_weights(spec, replace=True)
    return spec


def _save_safetensors(path: Path, state: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return path


def test_good_safetensors_loads_with_its_sha256(env: dict[str, Path]) -> None:
    state = _state(1)
    src = _save_safetensors(env["tmp"] / "tiny.safetensors", state)
    _register("tiny", src)
    dest = _save_safetensors(env["cache"] / "tiny.safetensors", state)  # found in the cache
    loaded = W.load_into(Tiny, "tiny")
    assert isinstance(loaded.module, Tiny) and not loaded.module.training
    assert loaded.path == dest and loaded.warnings == []
    assert loaded.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert loaded.resolved.source == "cache"
    got = loaded.module.state_dict()
    assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)


def test_meta_build_assigns_the_file_tensors(env: dict[str, Path]) -> None:
    half = _save_safetensors(env["tmp"] / "half.safetensors", _state(2, torch.float16))
    _register("half", half)
    on_meta = W.load_into(Tiny, "half", half, meta=True).module
    assert on_meta.fc.weight.device.type == "cpu" and on_meta.fc.weight.dtype == torch.float16
    copied = W.load_into(Tiny, "half", half).module  # copied into a float32 network
    assert copied.fc.weight.dtype == torch.float32
    assert torch.equal(copied.fc.weight, on_meta.fc.weight.float())


def test_missing_file_names_the_file_and_the_fix(env: dict[str, Path]) -> None:
    _register("absent", filename="absent.safetensors")
    with pytest.raises(WeightsError) as exc:
        W.load_into(Tiny, "absent", context="toymetric needs the absent network", note="option note")
    msg = str(exc.value)
    assert msg.startswith("toymetric needs the absent network: absent.safetensors")
    assert str(env["cache"] / "absent.safetensors") in msg  # where to put it
    assert "--metric-option toymetric.weights=PATH" in msg and msg.endswith("(option note)")
    with pytest.raises(WeightsError) as exc:
        W.load_into(Tiny, "absent", env["tmp"] / "typo.safetensors")
    msg = str(exc.value)
    assert str(env["tmp"] / "typo.safetensors") in msg and "does not exist" in msg
    assert "--metric-option toymetric.weights=PATH" in msg


def test_missing_downloadable_file_says_how_to_fetch(env: dict[str, Path]) -> None:
    _register("remote", filename="remote.safetensors", urls=("https://example.org/remote.safetensors",))
    with pytest.raises(WeightsError) as exc:
        W.load_into(Tiny, "remote")
    msg = str(exc.value)
    assert "AIGVE_OFFLINE is set" in msg and str(env["cache"] / "remote.safetensors") in msg
    assert msg.endswith(f"({W.fetch_hint('remote')})") and "`aigve weights fetch remote`" in msg


def test_wrong_state_dict_is_a_strict_load_error_naming_the_file(env: dict[str, Path]) -> None:
    torch.manual_seed(0)
    wrong = env["tmp"] / "other.pt"
    torch.save(Other().state_dict(), wrong)
    _register("tiny_pt", filename="tiny.pt")
    with pytest.raises(WeightsError) as exc:
        W.load_into(Tiny, "tiny_pt", wrong)
    msg = str(exc.value)
    assert msg.startswith(f"{wrong}: not a 'tiny_pt' checkpoint (tiny.pt) (")
    assert "pass tiny.pt (--metric-option toymetric.weights=PATH)" in msg
    with pytest.raises(WeightsError, match=r"other\.pt: not a Tiny checkpoint \(.*\) — pass the Tiny file$"):
        W.load_into(Tiny, "tiny_pt", wrong, meta=True, what="a Tiny checkpoint", fix="pass the Tiny file")


def test_key_and_transform_unwrap_a_container(env: dict[str, Path]) -> None:
    state = _state(3)
    ckpt = env["tmp"] / "wrapped.pth"
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 7}, ckpt)
    _register("wrapped", filename="wrapped.pth")

    def strip(sd: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
        assert isinstance(module, Tiny)
        return {k.removeprefix("module."): v for k, v in sd.items()}

    loaded = W.load_into(Tiny, "wrapped", ckpt, key="auto", transform_state=strip)
    assert torch.equal(loaded.module.fc.bias, state["fc.bias"])
    with pytest.raises(WeightsError, match="key="):  # no unwrapping unless asked
        W.load_into(Tiny, "wrapped", ckpt, transform_state=strip)

    def refuse(sd: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
        raise RuntimeError("classifier entries differ")

    with pytest.raises(WeightsError, match=r"wrapped\.pth: not .*\(classifier entries differ\)"):
        W.load_into(Tiny, "wrapped", ckpt, key="auto", transform_state=refuse)


def test_resolution_warnings_are_logged_and_returned(
    env: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    published = _save_safetensors(env["tmp"] / "pub" / "tiny.safetensors", _state(4))
    _register("tiny", published)
    mine = _save_safetensors(env["tmp"] / "mine.safetensors", _state(5))  # differs from the registry
    with caplog.at_level(logging.WARNING, logger="aigve.weights.load"):
        loaded = W.load_into(Tiny, "tiny", mine)
    assert (
        loaded.path == mine and len(loaded.warnings) == 1 and "differ from the registry" in loaded.warnings[0]
    )
    assert loaded.warnings[0] in caplog.text
    assert loaded.sha256 == hashlib.sha256(mine.read_bytes()).hexdigest()
