"""Unit tests without a server: job store, token check, path rules, sniffing, names, redaction,
compat field mapping, settings rules."""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path

import pytest

from aigve.errors import UsageError
from aigve.server.jobs import JobStore
from aigve.server.security import (
    ApiError,
    Redactor,
    check_authorization,
    resolve_under_roots,
    safe_filename,
    sniff_container,
    stored_name,
)
from aigve.server.settings import ServerSettings

TOKEN = "t" * 20


def test_store_claims_each_job_once_under_concurrency(tmp_path: Path) -> None:
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    ids = [store.create_job({"n": i}).id for i in range(40)]
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        s = JobStore(store.url)  # own connection, like a worker process
        while (job := s.claim(name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)  # every job exactly once
    assert store.counts() == {"running": 40}


def test_store_lifecycle_cancel_and_requeue(tmp_path: Path) -> None:
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    a = store.create_job({"x": 1}, upload_id="u" * 32)
    b = store.create_job({"x": 2})
    assert store.queue_depth() == 2 and store.upload_in_use("u" * 32)
    job = store.claim("w")
    assert job is not None and job.id == a.id and job.status == "running" and job.attempts == 1
    assert store.progress(a.id, 1, 3) is False
    assert store.request_cancel(b.id).status == "cancelled"  # queued: cancelled at once
    assert store.request_cancel(a.id).status == "running"  # running: flagged
    assert store.progress(a.id, 2, 3) is True  # the worker learns it must stop
    store.requeue(a.id, "worker died", max_attempts=3)  # cancel requested: ends cancelled
    assert store.get_job(a.id).status == "cancelled"
    c = store.create_job({"x": 3})
    for attempt in (1, 2):
        assert store.claim("w").id == c.id
        store.requeue(c.id, "worker died", max_attempts=2)
        assert store.get_job(c.id).status == ("queued" if attempt == 1 else "failed")
    assert "gave up after 2 attempts" in store.get_job(c.id).error
    assert store.claim("w") is None


def test_store_refuses_unknown_url() -> None:
    with pytest.raises(UsageError):
        JobStore("mysql://x")


def test_check_authorization() -> None:
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert check_authorization(f"Bearer {TOKEN}", TOKEN)
    assert check_authorization(f"bearer   {TOKEN}", TOKEN)
    assert check_authorization(f"Basic {basic}", TOKEN)
    assert not check_authorization(f"Bearer {TOKEN}x", TOKEN)
    assert not check_authorization("Basic !!!", TOKEN)
    assert not check_authorization(f"Basic {base64.b64encode(TOKEN.encode()).decode()}", TOKEN)  # no colon
    assert not check_authorization(None, TOKEN)
    assert not check_authorization(f"Bearer {TOKEN}", None)


def test_resolve_under_roots(tmp_path: Path) -> None:
    root = (tmp_path / "root").resolve()
    (root / "a" / "b").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "inner-link").symlink_to(root / "a")
    assert resolve_under_roots("a/b", [root]) == root / "a" / "b"
    assert resolve_under_roots(str(root / "a"), [root]) == root / "a"
    assert resolve_under_roots("inner-link", [root]) == root / "a"  # a symlink inside the root is fine
    for raw, status in [
        ("../outside", 422),
        ("a/../../outside", 422),
        ("a\\..\\..", 422),
        ("/etc/passwd", 403),
        (str(outside), 403),
        ("link", 403),
        ("missing", 404),
        ("", 422),
        ("a\x00b", 422),
    ]:
        with pytest.raises(ApiError) as e:
            resolve_under_roots(raw, [root])
        assert e.value.status == status, raw
        assert str(tmp_path) not in e.value.message
    with pytest.raises(ApiError) as e:
        resolve_under_roots("a", [])
    assert e.value.status == 403


def test_sniff_container_and_names() -> None:
    assert sniff_container(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00") == "mp4"
    assert sniff_container(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00") == "mov"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm") == "webm"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska") == "matroska"
    assert sniff_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert sniff_container(b"GIF89a\x01\x00") == "gif"
    for bad in (b"", b"hello world, not a video", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", b"%PDF-1.7\n"):
        assert sniff_container(bad) is None
    assert stored_name("x.mp4", "mp4") == "x.mp4"
    assert stored_name("x.m4v", "mp4") == "x.m4v"
    assert stored_name("x.avi", "mp4") == "x.mp4"
    assert stored_name("x.mkv", "webm") == "x.mkv"
    assert safe_filename("dir/sub/clip 1, final.mp4") == "clip 1, final.mp4"
    assert safe_filename("C:\\Users\\me\\clip.mp4") == "clip.mp4"
    for bad in ("", ".hidden.mp4", "..", "a\x00b.mp4", "a|b.mp4", "x" * 300 + ".mp4"):
        with pytest.raises(ApiError):
            safe_filename(bad)


def test_redactor() -> None:
    r = Redactor([("/srv/state/uploads", "upload:"), ("/srv/state", "server:"), ("/data/videos", "data:")])
    assert r.text("/data/videos/x/a.mp4: bad") == "data:x/a.mp4: bad"
    assert r.text("cache at /srv/state/cache") == "cache at server:cache"
    assert r.text("/home/alice/secret/thing.mp4 failed") == "thing.mp4 failed"
    assert r.text("boom\nTraceback (most recent call last):\n  File x") == "boom\n(details in the server log)"
    assert r.deep({"a": ["/data/videos/b.mp4", 1.5, None]}) == {"a": ["data:b.mp4", 1.5, None]}
    assert r.text("https://example.org/a/b") == "https://example.org/a/b"  # URLs are not paths


def test_redactor_keeps_folders_after_a_tag_but_not_unknown_ones() -> None:
    r = Redactor([("/srv/w", "<server weights cache>/")])
    assert r.text("put it at /srv/w/hf/openai--clip@abc/model.bin") == (
        "put it at <server weights cache>/hf/openai--clip@abc/model.bin"
    )
    assert r.text("in /srv/w") == "in <server weights cache>"
    # an unknown absolute folder after ordinary text still goes
    assert r.text("see /opt/secret/x.pth and /srv/w/y.pth") == "see x.pth and <server weights cache>/y.pth"


def test_missing_weights_message_says_where_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fix in "put it at <folder>/<file>" is the folder: it must survive redaction as a
    placeholder, while no absolute server path reaches the client."""
    from aigve import weights as W
    from aigve.server.datasets import WEIGHTS_CACHE_TAG, WEIGHTS_DIR_TAG, redactor

    cache = tmp_path / "home" / ".cache" / "aigve"
    wdir = tmp_path / "opt" / "weights"
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(cache))
    monkeypatch.setenv("AIGVE_WEIGHTS_DIR", str(wdir))
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    (v,) = W.verify(["fid_inception"])
    assert v.status == "missing" and str(cache / "weights") in v.message  # precondition
    fname = W.get_weight_spec("fid_inception").filename
    state = tmp_path / "state"
    msg = redactor(ServerSettings(state_dir=state, no_auth=True).finalize()).text(v.message)
    assert f"{WEIGHTS_CACHE_TAG}/{fname}" in msg, msg
    assert f"{WEIGHTS_DIR_TAG}/{fname}" in msg, msg
    assert str(tmp_path) not in msg and "/home/" not in msg and "/opt/" not in msg, msg
    # a weights cache inside the server's state folder (the Docker layout) reads the same
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(state / "cache"))
    (v,) = W.verify(["fid_inception"])
    msg = redactor(ServerSettings(state_dir=state, no_auth=True).finalize()).text(v.message)
    assert f"{WEIGHTS_CACHE_TAG}/{fname}" in msg and str(tmp_path) not in msg, msg


def _help(command: str) -> str:
    import argparse

    from aigve.cli.server import add_commands

    parser = argparse.ArgumentParser(prog="aigve")
    sub = parser.add_subparsers()
    add_commands(sub)
    return " ".join(sub.choices[command].format_help().split())


def _flag_help(text: str, flag: str) -> str:
    """The help sentence of one flag in a whitespace-normalised help text."""
    start = text.index(f" {flag} ")
    nxt = re.search(r" --[a-z-]+ [A-Z{]", text[start + len(flag) + 2 :])
    return text[start : start + len(flag) + 2 + (nxt.start() if nxt else len(text))]


def test_serve_help_shows_the_defaults_the_server_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from aigve.cli.server import add_commands, settings_from_args
    from aigve.server.settings import MB, default_state_dir

    text = _help("serve")
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    monkeypatch.delenv("AIGVE_SERVER_DIR", raising=False)
    monkeypatch.setenv("AIGVE_API_TOKEN", TOKEN)
    args = parser.parse_args(["serve"])
    got = settings_from_args(args)
    ref = ServerSettings().finalize()  # the dataclass defaults
    shown = {
        "--port": (args.port, got.port == ref.port == 2200),
        "--workers": (args.workers, got.workers == ref.workers),
        "--device": (args.device, got.device == ref.device),
        "--max-files": (args.max_files, got.max_upload_files == ref.max_upload_files),
        "--max-file-mb": (f"{args.max_file_mb:g}", got.max_file_bytes == ref.max_file_bytes),
        "--max-upload-mb": (f"{args.max_upload_mb:g}", got.max_upload_bytes == ref.max_upload_bytes),
        "--retention-hours": (
            f"{args.retention_hours:g}",
            got.retention_seconds == ref.retention_seconds,
        ),
        "--bootstrap": (args.bootstrap, got.bootstrap == ref.bootstrap),
    }
    for flag, (value, same_as_settings) in shown.items():
        assert same_as_settings, flag
        assert f"(default {value}" in _flag_help(text, flag), (flag, _flag_help(text, flag))
    assert got.max_file_bytes == 2048 * MB
    assert "~/.local/share/aigve/server" in _flag_help(text, "--state-dir")
    assert default_state_dir() == Path.home() / ".local" / "share" / "aigve" / "server"
    assert "$AIGVE_SERVER_DIR" in _flag_help(text, "--state-dir")


def test_client_help_shows_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from aigve.cli.server import DEFAULT_BASE_URL

    monkeypatch.delenv("AIGVE_API_URL", raising=False)
    text = _help("client")
    assert "$AIGVE_API_URL" in _flag_help(text, "--base-url")
    assert f"else {DEFAULT_BASE_URL}" in _flag_help(text, "--base-url")
    assert "(default ./results)" in _flag_help(text, "--save-dir")


def test_client_quiets_httpx_request_logs() -> None:
    import logging

    from aigve.cli.server import quiet_http_logs

    loggers = [logging.getLogger(n) for n in ("httpx", "httpcore")]
    before = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.NOTSET)
        quiet_http_logs("DEBUG")
        assert all(lg.level == logging.NOTSET for lg in loggers)
        quiet_http_logs("INFO")
        assert all(not lg.isEnabledFor(logging.INFO) and lg.isEnabledFor(logging.WARNING) for lg in loggers)
    finally:
        for lg, lvl in zip(loggers, before, strict=True):
            lg.setLevel(lvl)


def test_settings_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIGVE_API_TOKEN", raising=False)
    with pytest.raises(UsageError, match="AIGVE_API_TOKEN"):
        ServerSettings(state_dir=tmp_path).finalize()
    with pytest.raises(UsageError, match="loopback"):
        ServerSettings(state_dir=tmp_path, host="0.0.0.0", no_auth=True).finalize()
    with pytest.raises(UsageError, match="too short"):
        ServerSettings(state_dir=tmp_path, token="short").finalize()
    with pytest.raises(UsageError, match="data-root"):
        ServerSettings(state_dir=tmp_path, token=TOKEN, data_roots=[tmp_path / "nope"]).finalize()
    s = ServerSettings(state_dir=tmp_path, no_auth=True).finalize()
    assert s.database_url == f"sqlite:///{tmp_path / 'jobs.db'}" and not s.auth_required
    monkeypatch.setenv("AIGVE_API_TOKEN", TOKEN)
    s = ServerSettings(state_dir=tmp_path, host="0.0.0.0").finalize()
    assert s.token == TOKEN and "token" not in {k for k, v in s.to_dict().items() if v}


def test_compat_field_mapping() -> None:
    pytest.importorskip("fastapi")
    from aigve.server.compat import compat_job

    req, notes = compat_job(
        {
            "metrics": "flicker",
            "categories": "",
            "max_len": 64,
            "max_seconds": 8.0,
            "fps": 25.0,
            "pad": True,
            "use_cpu": True,
            "generated_suffixes": "fake, gen",
            "stage_dataset": "/app/out/staged",
            "cdfvd_all_flavors": True,
        },
        {"path": "x"},
    )
    assert req.metrics == ["flicker"] and req.categories is None
    assert (req.max_len, req.max_seconds, req.fps, req.device) == (None, 8.0, 25.0, "cpu")  # seconds win
    assert req.dataset.generated_suffixes == ["fake", "gen"]
    assert any("pad ignored" in n for n in notes) and any("stage_dataset ignored" in n for n in notes)
    req, _ = compat_job({"metrics": "", "categories": "classic", "max_len": 64}, {"path": "x"})
    assert req.max_len == 64 and req.categories == ["classic"]
    for fields in (
        {"metrics": "flicker", "extra_args": ["--a"]},
        {"metrics": ""},
        {"metrics": "all"},
        {"metrics": "flicker", "gstvqa_model": "/m.pt"},
        {"metrics": "flicker", "out_json": "../x"},
    ):
        with pytest.raises(ApiError) as e:
            compat_job(fields, {"path": "x"})
        assert e.value.status == 422
    with pytest.raises(UsageError):
        compat_job({"metrics": "lightvqa+"}, {"path": "x"})


def test_worker_names_differ_between_server_instances(tmp_path: Path) -> None:
    """Two servers in containers with the same fixed hostname can have workers with the same pid: the
    instance token keeps their job ownership apart."""
    from aigve.server.worker import WorkerPool, worker_name

    settings = ServerSettings(state_dir=tmp_path, no_auth=True).finalize()
    a = WorkerPool(settings, None)  # type: ignore[arg-type]  # the store is not touched here
    b = WorkerPool(settings, None)  # type: ignore[arg-type]
    assert a.instance != b.instance
    assert worker_name(a.instance, 7) != worker_name(b.instance, 7)
    assert worker_name(a.instance, 7).endswith(":7") and worker_name(a.instance, 7) == worker_name(
        a.instance, 7
    )


def test_job_request_takes_backbone_options(tmp_path: Path, toy_dir: Path) -> None:
    """A job's backbone_options (one checkpoint for every metric on a backbone, as the missing-weights error
    says) reach the job's parameters; an unknown backbone is a 422 naming it."""
    from aigve.server.app import JobRequest, ServerState
    from aigve.server.security import ApiError

    settings = ServerSettings(state_dir=tmp_path, no_auth=True, data_roots=[toy_dir]).finalize()
    state = ServerState(settings)
    req = JobRequest.model_validate(
        {
            "dataset": {"path": str(toy_dir)},
            "metrics": ["kid"],
            "backbone_options": {"fid_inception": {"weights": "/w.pth"}},
        }
    )
    assert state.job_params(req)["backbone_options"] == {"fid_inception": {"weights": "/w.pth"}}
    bad = req.model_copy(update={"backbone_options": {"fid_inceptoin": {"weights": "/w.pth"}}})
    with pytest.raises(ApiError, match="unknown backbone 'fid_inceptoin'"):
        state.job_params(bad)


def test_serve_engine_flags_reach_each_jobs_evaluate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``aigve serve --engine ray --ray-address ... --ray-workers N``: the settings survive the trip to the
    worker processes, and every job's ``evaluate`` runs on that engine."""
    import argparse
    from types import SimpleNamespace

    import aigve.api
    import aigve.server.datasets
    from aigve.cli.server import add_commands, settings_from_args
    from aigve.errors import AigveError
    from aigve.server.worker import run_job

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(
        ["serve", "--no-auth", "--state-dir", str(tmp_path), "--engine", "ray", "--ray-address", "auto"]
        + ["--ray-workers", "3"]
    )
    settings = ServerSettings.from_dict(settings_from_args(args).finalize().to_dict())
    assert (settings.engine, settings.ray_address, settings.ray_workers) == ("ray", "auto", 3)
    seen: dict[str, object] = {}

    def fake_evaluate(ds: object, metrics: object, **kw: object) -> None:
        seen.update(kw)
        raise AigveError("stop here")

    class Store:
        finished: tuple[str, ...] = ()

        def get_job(self, job_id: str) -> SimpleNamespace:
            return SimpleNamespace(params={"dataset": {}, "metrics": ["flicker"]}, cancel_requested=None)

        def progress(self, job_id: str, done: int, total: int) -> bool:
            return False

        def heartbeat(self, job_id: str) -> None:
            pass

        def finish(self, job_id: str, status: str, error: str | None = None) -> None:
            self.finished = (status, str(error))

    monkeypatch.setattr(aigve.api, "evaluate", fake_evaluate)
    monkeypatch.setattr(aigve.server.datasets, "build_dataset", lambda s, spec: SimpleNamespace(entries=[]))
    store = Store()
    assert run_job(settings, store, "job1") == "failed"  # type: ignore[arg-type]
    assert store.finished[1] == "stop here"
    assert (seen["engine"], seen["ray_address"], seen["ray_workers"]) == ("ray", "auto", 3)
