"""Feature caches at a URL (fsspec): ``file://`` and ``memory://`` behave like the local cache (same layout, hits,
misses, broken entries dropped, temporary caches removed), object stores get one whole-object write per entry, a
URL survives the API, the CLI and the server settings as the string it is, and a run on a URL cache gives the
numbers of a run on a directory."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fsspec")

from aigve.cli import main  # noqa: E402
from aigve.engine.cache import (  # noqa: E402
    TMP_PREFIX,
    FeatureCache,
    FsspecFeatureCache,
    cache_location,
    open_feature_cache,
    redact_url,
)
from aigve.errors import MissingDependencyError, UsageError  # noqa: E402

KEY = "ab" * 32
ARR = np.arange(12, dtype=np.float32).reshape(3, 4)


@pytest.fixture(params=["file", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file://{tmp_path / 'urlcache'}"
    return f"memory://aigve-test-{uuid.uuid4().hex[:8]}/cache"


def test_factory_picks_the_backend(tmp_path: Path) -> None:
    assert type(open_feature_cache(tmp_path)) is FeatureCache
    assert type(open_feature_cache(str(tmp_path))) is FeatureCache
    private = open_feature_cache(None)
    assert type(private) is FeatureCache and not private.shared
    private.close()
    c = open_feature_cache("memory://x/y")
    assert isinstance(c, FsspecFeatureCache) and c.root == "memory://x/y" and not c.shared
    # a URL stays a string (Path() would fold "//"); a directory is expanded; a Path is always local
    assert cache_location("s3://bucket/prefix") == "s3://bucket/prefix"
    assert cache_location("~/c") == Path("~/c").expanduser()
    assert type(open_feature_cache(tmp_path / "memory:" / "x")) is FeatureCache


def test_get_put_miss_and_counts(url: str) -> None:
    c = open_feature_cache(url)
    assert c.get(KEY) is None and (c.hits, c.misses) == (0, 1)
    c.put(KEY, ARR)
    got = c.get(KEY)
    assert got is not None and got.dtype == ARR.dtype
    np.testing.assert_array_equal(got, ARR)
    assert c.get(KEY, count=False) is not None and (c.hits, c.misses) == (1, 1)
    c.put(KEY, ARR + 1)  # an overwrite (another worker's equal entry, in practice)
    np.testing.assert_array_equal(c.get(KEY), ARR + 1)
    strings = np.array(["a warning", "another"], dtype=str)  # the engine also stores string arrays
    c.put("cd" * 32, strings)
    np.testing.assert_array_equal(c.get("cd" * 32), strings)
    st = c.stats()
    assert st["root"] == url and st["entries"] == 2 and st["bytes"] > 0 and st["stale_tmp_files"] == 0
    c.close()
    assert open_feature_cache(url).get(KEY) is not None  # not temporary: kept


def test_file_url_is_the_local_layout(tmp_path: Path) -> None:
    c = open_feature_cache(f"file://{tmp_path}")
    c.put(KEY, ARR)
    local = FeatureCache(tmp_path)
    assert local._path(KEY).is_file()
    np.testing.assert_array_equal(local.get(KEY), ARR)
    local.put("ef" * 32, ARR * 2)
    np.testing.assert_array_equal(c.get("ef" * 32), ARR * 2)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(TMP_PREFIX)]  # temp name moved into place


@pytest.mark.parametrize("damage", ["empty", "cut", "pickled"])
def test_a_broken_object_is_dropped_and_counts_as_a_miss(url: str, damage: str) -> None:
    c = open_feature_cache(url)
    assert isinstance(c, FsspecFeatureCache)
    c.put(KEY, ARR)
    p = c._object(KEY)
    data = c.fs.cat_file(p)
    bad = {
        "empty": b"",
        "cut": data[:40],
        "pickled": _npy_bytes(np.array([{"x": 1}], dtype=object)),  # never unpickled
    }[damage]
    c.fs.pipe_file(p, bad)
    assert c.get(KEY) is None and c.misses == 1 and c.hits == 0
    assert not c.fs.exists(p)
    c.put(KEY, ARR)  # the engine recomputes it
    np.testing.assert_array_equal(c.get(KEY), ARR)


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def test_temporary_close_removes_the_prefix(url: str) -> None:
    c = open_feature_cache(url, temporary=True)
    assert isinstance(c, FsspecFeatureCache)
    other = open_feature_cache(url.rstrip("/") + "-sibling")
    other.put(KEY, ARR)
    c.put(KEY, ARR)
    assert c.fs.exists(c._object(KEY))
    c.close()
    assert not c.fs.exists(c._base)
    assert other.get(KEY) is not None  # only its own prefix goes
    c.close()  # twice: nothing left to remove, no error


def test_object_store_entry_is_one_whole_object_write(monkeypatch: pytest.MonkeyPatch) -> None:
    c = open_feature_cache(f"memory://aigve-test-{uuid.uuid4().hex[:8]}")
    assert isinstance(c, FsspecFeatureCache)
    writes: list[str] = []
    real = c.fs.pipe_file
    monkeypatch.setattr(c.fs, "pipe_file", lambda p, data, **kw: (writes.append(p), real(p, data, **kw)))
    monkeypatch.setattr(c.fs, "mv", lambda *a, **kw: pytest.fail("no temporary object on an object store"))
    c.put(KEY, ARR)
    assert writes == [c._object(KEY)]


def test_no_leases_on_a_url_cache(url: str) -> None:
    c = open_feature_cache(url)
    assert not c.shared and not c.lease_held(KEY)
    with pytest.raises(UsageError, match="no leases"):
        c.try_lease(KEY)
    c.release_all()  # the engine's error path: nothing held, no error


def test_prune_and_clear(url: str) -> None:
    c = open_feature_cache(url)
    assert isinstance(c, FsspecFeatureCache)
    c.put(KEY, ARR)
    c.put("cd" * 32, ARR)
    assert c.prune(older_than_days=1.0) == (0, 0)  # both just written
    assert c.prune(older_than_days=0.5 / 86400) == (0, 0)  # older than half a second: none yet
    time.sleep(0.6)
    c.put("ef" * 32, ARR)
    removed, freed = c.prune(older_than_days=0.5 / 86400)
    assert removed == 2 and freed > 0 and c.stats()["entries"] == 1
    np.testing.assert_array_equal(c.get("ef" * 32), ARR)  # the young one stays
    assert c.prune() == (1, freed // 2)  # clear: everything left (three equal-sized entries)
    assert c.stats()["entries"] == 0


def test_prune_by_age_needs_times(monkeypatch: pytest.MonkeyPatch) -> None:
    c = open_feature_cache(f"memory://aigve-test-{uuid.uuid4().hex[:8]}")
    assert isinstance(c, FsspecFeatureCache)
    c.put(KEY, ARR)
    found = c.fs.find(c._features, detail=True)
    no_times = {p: {"name": p, "size": i["size"], "type": "file"} for p, i in found.items()}
    monkeypatch.setattr(c.fs, "find", lambda *a, **kw: no_times)
    with pytest.raises(UsageError, match="aigve cache clear"):
        c.prune(older_than_days=3)
    assert c.get(KEY) is not None  # nothing removed
    assert c.prune() == (1, no_times[c._object(KEY)]["size"])


def test_missing_protocol_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec.core

    def no_s3fs(url: str, **kw: object) -> None:
        raise ImportError("Install s3fs to access S3")  # what fsspec raises without s3fs

    with monkeypatch.context() as m:
        m.setattr(fsspec.core, "url_to_fs", no_s3fs)
        with pytest.raises(MissingDependencyError, match=r"needs s3fs: pip install s3fs"):
            open_feature_cache("s3://some-bucket/prefix")
        with pytest.raises(MissingDependencyError, match=r"needs gcsfs: pip install gcsfs"):
            open_feature_cache("gs://some-bucket/prefix")
    with pytest.raises(UsageError, match="protocol 'nosuchfs'"):
        open_feature_cache("nosuchfs://x/y")


def test_credentials_never_show() -> None:
    assert redact_url("s3://bucket/p") == "s3://bucket/p"
    assert redact_url("ftp://user:secret@host/dir/x@y") == "ftp://***@host/dir/x@y"
    assert redact_url("memory://a") == "memory://a"


def test_cli_cache_info_prune_clear_on_a_url(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    c = open_feature_cache(url)
    c.put(KEY, ARR)
    assert main(["cache", "info", "--cache-dir", url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["root"] == url and info["entries"] == 1
    assert main(["cache", "prune", "--older-than", "1", "--cache-dir", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed_files"] == 0
    assert main(["cache", "clear", "--cache-dir", url]) == 0
    out = capsys.readouterr().out
    assert "0 entries" in out and url in out and c.get(KEY) is None


def _videos(make_video, n: int = 3) -> Path:  # noqa: ANN001
    from tests.conftest import smooth_clip

    for i in range(n):
        path = make_video(f"v/{i}.mp4", smooth_clip(8, h=32, w=32, seed=i))
    return path.parent


def test_a_run_on_a_url_cache_matches_a_directory_cache(make_video, tmp_path: Path) -> None:
    from aigve import evaluate

    videos = _videos(make_video)
    kw = {"bootstrap": 0, "report": False, "num_workers": 0}
    plain = evaluate(videos, ["flicker"], cache_dir=tmp_path / "plain", **kw)
    url = f"file://{tmp_path / 'url'}"
    first = evaluate(videos, ["flicker"], cache_dir=url, **kw)
    second = evaluate(videos, ["flicker"], cache_dir=url, **kw)
    for res in (plain, first, second):
        assert res.exit_code == 0
    prov = second.provenance["cache"]
    assert prov["dir"] == url and prov["misses"] == 0 and prov["hits"] > 0  # all from the cache
    assert first.provenance["cache"]["misses"] > 0
    assert prov["leases_busy"] == 0 and prov["lease_takeovers"] == 0
    assert not (tmp_path / "url" / "leases").exists()  # no leases on a URL cache
    for res in (first, second):
        assert [r.video_id for r in res.records] == [r.video_id for r in plain.records]
        assert [r.value for r in res.records] == [r.value for r in plain.records]  # bitwise
        assert res.value("flicker") == plain.value("flicker")
    # the same layout: the directory cache's entries are the URL cache's files
    names = sorted(
        p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain" / "features").rglob("*.npy")
    )
    assert names == sorted(
        p.relative_to(tmp_path / "url") for p in (tmp_path / "url" / "features").rglob("*.npy")
    )


def test_cli_run_keeps_the_url(make_video, tmp_path: Path) -> None:
    videos = _videos(make_video, 2)
    url = f"memory://aigve-test-{uuid.uuid4().hex[:8]}/run-cache"
    out = tmp_path / "out"
    args = ["run", "--generated", str(videos), "--metrics", "flicker", "--out", str(out), "--quiet"]
    assert main([*args, "--cache-dir", url, "--bootstrap", "0", "--no-report"]) == 0
    prov = json.loads((out / "results.json").read_text())["provenance"]["cache"]
    assert prov["dir"] == url and prov["misses"] > 0  # "memory://…", not "memory:/…"
    c = open_feature_cache(url)
    assert isinstance(c, FsspecFeatureCache) and c.stats()["entries"] > 0


def test_judge_responses_stay_local_for_a_url_cache(caplog: pytest.LogCaptureFixture) -> None:
    from aigve.judges.base import JudgeConfig, open_cache
    from aigve.judges.cache import default_cache_path

    with caplog.at_level(logging.INFO, logger="aigve.judges.base"):
        rc = open_cache(JudgeConfig(), "s3://bucket/prefix", in_run=True)
    assert rc is not None and Path(rc.path) == default_cache_path()
    assert "SQLite needs a local file" in caplog.text and "s3://bucket/prefix" in caplog.text
    rc.close()


def test_server_settings_keep_a_url(tmp_path: Path) -> None:
    from aigve.server.settings import ServerSettings

    s = ServerSettings(state_dir=tmp_path, no_auth=True, cache_dir="gs://bucket/prefix").finalize()
    assert s.cache_dir == "gs://bucket/prefix"
    assert ServerSettings.from_dict(s.to_dict()).cache_dir == "gs://bucket/prefix"
    local = ServerSettings(state_dir=tmp_path, no_auth=True, cache_dir="rel/cache").finalize()
    assert local.cache_dir == Path("rel/cache").absolute()
    assert ServerSettings.from_dict(local.to_dict()).cache_dir == local.cache_dir


# ------------------------------------------------------------------ S3 (a moto server on 127.0.0.1)
@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket on the local moto server; the credentials and endpoint come from the environment, as
    they would for a real bucket (the URL carries none)."""
    import boto3
    import s3fs

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    bucket = f"aigve-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    s3fs.S3FileSystem.clear_instance_cache()
    yield f"s3://{bucket}/cache"
    s3fs.S3FileSystem.clear_instance_cache()


def test_s3_get_put_broken_prune_and_temporary(s3_url: str) -> None:
    c = open_feature_cache(s3_url)
    assert isinstance(c, FsspecFeatureCache) and c._whole_object and not c.shared
    assert c.get(KEY) is None and c.misses == 1
    c.put(KEY, ARR)
    np.testing.assert_array_equal(c.get(KEY), ARR)
    c.put("cd" * 32, ARR)
    c.fs.pipe_file(c._object("cd" * 32), b"")  # an empty object: dropped, a miss
    assert c.get("cd" * 32) is None and not c.fs.exists(c._object("cd" * 32))
    st = c.stats()
    assert st["root"] == s3_url and st["entries"] == 1 and st["bytes"] > 0
    assert c.prune(older_than_days=1.0) == (0, 0)  # S3 reports LastModified: ages are known
    assert c.prune()[0] == 1 and c.stats()["entries"] == 0
    t = open_feature_cache(s3_url + "-run", temporary=True)
    t.put(KEY, ARR)
    t.close()
    assert not t.fs.exists(s3_url.removeprefix("s3://") + "-run")


def test_a_run_on_an_s3_cache_matches_a_directory_cache(s3_url: str, make_video, tmp_path: Path) -> None:
    from aigve import evaluate

    videos = _videos(make_video, 2)
    kw = {"bootstrap": 0, "report": False, "num_workers": 0}
    plain = evaluate(videos, ["flicker"], cache_dir=tmp_path / "plain", **kw)
    first = evaluate(videos, ["flicker"], cache_dir=s3_url, **kw)
    second = evaluate(videos, ["flicker"], cache_dir=s3_url, **kw)
    assert second.provenance["cache"]["dir"] == s3_url
    assert first.provenance["cache"]["misses"] > 0 and second.provenance["cache"]["misses"] == 0
    for res in (first, second):
        assert res.exit_code == 0
        assert [r.value for r in res.records] == [r.value for r in plain.records]  # bitwise
