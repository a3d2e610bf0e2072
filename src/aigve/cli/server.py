"""``aigve serve`` (the REST server, :mod:`aigve.server`) and ``aigve client`` (submit a job to one)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from aigve.cli import legacy
from aigve.cli.common import EXIT_FAILED, EXIT_OK
from aigve.errors import MissingDependencyError, UsageError

log = logging.getLogger("aigve")

DEFAULT_BASE_URL = "http://localhost:2200"

CLIENT_EXIT_CODES = """exit codes:
  0  the job succeeded, every video and metric in it too
  2  usage error, or no server answers at --base-url (start one with `aigve serve`, or pass --base-url)
  3  the job failed, or a video or metric in it failed (see the saved results)"""


def add_commands(sub: Any) -> None:
    s = sub.add_parser("serve", help="run the REST API server (jobs, uploads, web page)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=2200, help="port to listen on (default %(default)s)")
    s.add_argument(
        "--data-root",
        dest="data_roots",
        action="append",
        default=[],
        metavar="DIR",
        help="folder clients may name datasets in (repeatable); without it only uploads are accepted",
    )
    s.add_argument(
        "--state-dir",
        dest="state_dir",
        help="job store, uploads, job folders, feature cache "
        "(default $AIGVE_SERVER_DIR, else ~/.local/share/aigve/server)",
    )
    s.add_argument(
        "--database-url",
        dest="database_url",
        help="job store: sqlite:///FILE or postgresql://... (default sqlite:///<state-dir>/jobs.db)",
    )
    s.add_argument(
        "--cache-dir",
        dest="cache_dir",
        help="shared feature cache: a directory or a URL such as s3://bucket/prefix (default <state-dir>/cache)",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each keeps its models loaded (default %(default)s)",
    )
    s.add_argument(
        "--device", default="auto", help="device for jobs: auto, cpu, cuda, cuda:N (default %(default)s)"
    )
    s.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="where jobs run: local (in the worker process, default) or ray (a Ray cluster: --ray-address; "
        "the `distributed` extra, docs/distributed.md)",
    )
    s.add_argument(
        "--ray-address", dest="ray_address", help="with --engine ray: the cluster (default: a local Ray)"
    )
    s.add_argument(
        "--ray-workers", dest="ray_workers", type=int, help="with --engine ray: model actors per job"
    )
    s.add_argument(
        "--token-file", dest="token_file", help="read the API token from this file (else $AIGVE_API_TOKEN)"
    )
    s.add_argument(
        "--no-auth", dest="no_auth", action="store_true", help="no token (only allowed on a loopback host)"
    )
    s.add_argument(
        "--max-files", dest="max_files", type=int, default=200, help="videos per upload (default %(default)s)"
    )
    s.add_argument(
        "--max-file-mb",
        dest="max_file_mb",
        type=float,
        default=2048,
        help="size of one video in MiB (default %(default)g)",
    )
    s.add_argument(
        "--max-upload-mb",
        dest="max_upload_mb",
        type=float,
        default=8192,
        help="size of one request in MiB (default %(default)g)",
    )
    s.add_argument(
        "--retention-hours",
        dest="retention_hours",
        type=float,
        default=168,
        help="keep finished jobs and unused uploads this long (default %(default)g, i.e. 7 days)",
    )
    s.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples of a job that sets none (default %(default)s)",
    )
    s.add_argument("--stop-after", dest="stop_after", type=float, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser(
        "client",
        help="submit a job to an aigve server and save its results",
        epilog=CLIENT_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument(
        "--base-url",
        dest="base_url",
        default=os.environ.get("AIGVE_API_URL", DEFAULT_BASE_URL),
        help=f"the server (default $AIGVE_API_URL, else {DEFAULT_BASE_URL})",
    )
    c.add_argument("--token", help="API token (default $AIGVE_API_TOKEN)")
    c.add_argument("--upload-dir", dest="upload_dir", help="upload the videos of this local folder")
    c.add_argument("--upload-files", dest="upload_files", nargs="+", help="upload these local video files")
    c.add_argument("--prompts", help="local prompts file to upload with the videos")
    c.add_argument("--input-dir", dest="input_dir", help="a dataset on the server, relative to its data root")
    c.add_argument(
        "--categories",
        help="comma-separated metric families (default distribution_based "
        "when --metrics is not given, as in the original client)",
    )
    c.add_argument("--metrics", default="", help="comma-separated metric names")
    c.add_argument("--max-seconds", dest="max_seconds", type=float, help="decode at most S seconds per video")
    c.add_argument("--max-len", dest="max_len", type=int, help="decode at most N frames per video")
    c.add_argument("--fps", type=float, help="frame rate to assume where a container declares none")
    c.add_argument(
        "--generated-suffixes",
        dest="generated_suffixes",
        default="synthetic,generated",
        help="file-name tokens of generated videos (default %(default)s)",
    )
    c.add_argument("--cpu", action="store_true", help="run the job on the CPU")
    c.add_argument(
        "--save-dir",
        dest="save_dir",
        default="./results",
        help="where to save the result files (default %(default)s)",
    )
    legacy.add_cdfvd_arguments(c)
    c.add_argument(
        "--cdfvd-single-flavor",
        dest="cdfvd_single_flavor",
        action="store_true",
        help="accepted for compatibility (one flavour is always computed)",
    )
    c.add_argument("--stage-dataset", dest="stage_dataset", help="accepted for compatibility, ignored")
    c.add_argument("--local", action="store_true", help="accepted for compatibility, ignored")
    c.add_argument(
        "--no-help", dest="no_help", action="store_true", help="accepted for compatibility, ignored"
    )
    c.add_argument(
        "--timeout",
        type=float,
        help="give up waiting after this many seconds (default: wait until the job ends)",
    )
    c.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_client)


def settings_from_args(args: argparse.Namespace) -> Any:
    from aigve.server.settings import MB, ServerSettings, default_state_dir

    token = None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise UsageError(f"--token-file {args.token_file}: cannot read it ({exc.strerror})") from None
    return ServerSettings(
        host=args.host,
        port=args.port,
        state_dir=Path(args.state_dir) if args.state_dir else default_state_dir(),
        database_url=args.database_url,
        data_roots=[Path(p) for p in args.data_roots],
        token=token,
        no_auth=args.no_auth,
        workers=args.workers,
        device=args.device,
        engine=args.engine,
        ray_address=args.ray_address,
        ray_workers=args.ray_workers,
        cache_dir=args.cache_dir or None,  # a directory or a URL: finalize() makes a directory absolute
        max_upload_files=args.max_files,
        max_file_bytes=int(args.max_file_mb * MB),
        max_upload_bytes=int(args.max_upload_mb * MB),
        retention_seconds=args.retention_hours * 3600.0,
        bootstrap=args.bootstrap,
        stop_after=args.stop_after,
    ).finalize()


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:  # exit 2 (see cli.main): nothing ran; the fix is the install line
        raise MissingDependencyError("aigve serve", "server", "uvicorn") from None
    from aigve.server.app import create_app

    settings = settings_from_args(args)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    return EXIT_OK


def quiet_http_logs(log_level: str | None) -> None:
    """httpx logs every request at INFO; show that only with ``--log-level DEBUG``."""
    if str(log_level or "").upper() != "DEBUG":
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)


def client_job(args: argparse.Namespace) -> tuple[list[str], list[str], dict[str, Any], list[str]]:
    """What ``aigve client`` submits: (metrics, categories, job options, notes). The original client's
    cd-fvd flags are mapped by :mod:`aigve.cli.legacy`, as on the command line and in the server's
    ``/run`` endpoints."""
    metrics = [m.strip() for m in (args.metrics or "").split(",") if m.strip()]
    if args.categories is None:
        categories = [] if metrics else ["distribution_based"]
    else:
        categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    options: dict[str, Any] = {
        "max_seconds": args.max_seconds,
        "max_len": args.max_len,
        "fps": args.fps,
        "device": "cpu" if args.cpu else None,
    }
    notes: list[str] = []
    cd = legacy.cdfvd_from_fields(vars(args))
    if cd is not None:
        metric_options: dict[str, dict[str, Any]] = {}
        metrics = cd.apply(metrics, metric_options)
        if metric_options:
            options["metric_options"] = metric_options
        notes.extend(cd.notes)
    return metrics, categories, options, notes


def cmd_client(args: argparse.Namespace) -> int:
    """Exit codes: :data:`CLIENT_EXIT_CODES`."""
    from aigve.client import ServerUnreachableError

    try:
        return _client(args)
    except ServerUnreachableError as exc:  # one line: the URL and the fix (exit 2, as a usage error)
        raise UsageError(
            f"no aigve server answers at {exc.base_url} ({exc.reason}): start one with `aigve serve` "
            "(pip install 'aigve[server]'), or pass --base-url URL (or set $AIGVE_API_URL) for the one that runs"
        ) from None


def _client(args: argparse.Namespace) -> int:
    from aigve.client import Client, video_files

    quiet_http_logs(getattr(args, "log_level", None))

    metrics, categories, options, notes = client_job(args)
    for note in notes:
        log.warning("%s", note)
    suffixes = [s.strip() for s in args.generated_suffixes.split(",") if s.strip()]
    with Client(args.base_url, token=args.token) as client:
        health = client.health()
        print(
            f"server {args.base_url}: aigve {health.get('aigve')}, torch {health.get('torch')}, "
            f"cuda {health.get('cuda_available')}, queue {health.get('queue_depth')}"
        )
        files = video_files(args.upload_dir, args.upload_files)
        if files:
            up = client.upload(files, args.prompts)
            ds = up["dataset"]
            print(
                f"uploaded {len(files)} file(s): {ds['entries']} entries, {ds['pairs']} paired, "
                f"{ds['extra_reals']} extra real"
            )
            dataset: dict[str, Any] = {"upload_id": up["upload_id"]}
        elif args.input_dir:
            dataset = {"path": args.input_dir}
        else:
            raise UsageError(
                "aigve client needs --upload-dir/--upload-files (local videos) or --input-dir (server)"
            )
        if suffixes:
            dataset["generated_suffixes"] = suffixes
        job_id = client.submit(dataset, metrics or None, categories or None, **options)
        print(f"job {job_id} queued")
        final = _wait_with_bar(client, job_id, args)
        if final["status"] != "succeeded":
            print(f"job {job_id} {final['status']}: {final.get('error')}")
            return EXIT_FAILED
        saved = client.save(job_id, args.save_dir)
        for name, m in (final.get("summary") or {}).get("metrics", {}).items():
            print(f"{name}: {m.get('value') if not m.get('error') else 'error: ' + str(m['error'])}")
        print(f"saved {len(saved)} file(s) to {args.save_dir}")
        return int((final.get("summary") or {}).get("exit_code", 0))


def _wait_with_bar(client: Any, job_id: str, args: argparse.Namespace) -> dict[str, Any]:
    if args.no_progress:
        return client.wait(job_id, timeout=args.timeout)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("queued", total=None)

        def show(j: dict[str, Any]) -> None:
            p = j["progress"]
            bar.update(task, description=j["status"], completed=p["done"], total=p["total"] or None)

        return client.wait(job_id, timeout=args.timeout, on_progress=show)
