"""The FastAPI application: jobs API, uploads, results, the web page and the original API's endpoints.

The app holds no model code: it validates requests, writes jobs to the store and serves result files;
worker processes (``aigve.server.worker``) run ``aigve.api.evaluate``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from aigve import __version__
from aigve.errors import AigveError, UsageError
from aigve.server.datasets import build_dataset, redactor
from aigve.server.jobs import FINISHED, Job, JobStore
from aigve.server.security import (
    ApiError,
    BodyLimitMiddleware,
    Redactor,
    check_authorization,
    safe_filename,
    sniff_container,
    stored_name,
)
from aigve.server.settings import ServerSettings

log = logging.getLogger("aigve.server")

STATIC_DIR = Path(__file__).parent / "static"
_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d{1,2})?)$")


# ---------------------------------------------------------------------------- request models
class DatasetSpec(BaseModel):
    """Exactly one of ``upload_id`` (from ``POST /v1/uploads``) or ``path`` (under a data root)."""

    model_config = ConfigDict(extra="forbid")
    upload_id: str | None = Field(None, max_length=64, description="an upload id from POST /v1/uploads")
    path: str | None = Field(
        None, max_length=4096, description="folder, annotation JSON or manifest, relative to a data root"
    )
    prompts: str | None = Field(
        None, max_length=4096, description="prompts file under a data root (path only)"
    )
    generated_suffixes: list[str] | None = Field(
        None,
        max_length=16,
        description="suffix tokens marking generated videos (default synthetic, generated)",
    )


class JobRequest(BaseModel):
    """A job: a dataset, metrics (names, categories or a suite) and sampling options."""

    model_config = ConfigDict(extra="forbid")
    dataset: DatasetSpec
    metrics: list[str] | None = Field(None, max_length=200)
    categories: list[str] | None = Field(None, max_length=20)
    suite: str | None = Field(None, max_length=64)
    metric_options: dict[str, dict[str, Any]] | None = None
    backbone_options: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description="backbone name -> options for every metric using it, e.g. {'fid_inception': {'weights': PATH}}",
    )
    max_len: int | None = Field(None, ge=1, le=100000)
    max_seconds: float | None = Field(None, gt=0, le=86400)
    fps: float | None = Field(None, gt=0, le=10000)
    device: str | None = Field(None, max_length=16, description="cpu, cuda, cuda:N or auto (server default)")
    batch_size: int = Field(32, ge=1, le=4096)
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32", description="the neural backbones' forward passes; bf16/fp16 values are labelled"
    )
    bootstrap: int | None = Field(None, ge=0, le=100000, description="bootstrap resamples for CIs")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class JobAccepted(BaseModel):
    job_id: str
    status: str
    links: dict[str, str]


# ---------------------------------------------------------------------------- state
class ServerState:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.store = JobStore(str(settings.database_url))
        self.redactor: Redactor = redactor(settings)
        self.pool: Any = None
        self.started = time.time()
        self._tasks: list[asyncio.Task[Any]] = []

    # jobs --------------------------------------------------------------
    def validate_and_submit(self, req: JobRequest, source: str = "v1", notes: list[str] | None = None) -> Job:
        params = self.job_params(req)
        params["source"] = source
        params["notes"] = notes or []
        return self.store.create_job(params, upload_id=params["dataset"].get("upload_id"))

    def job_params(self, req: JobRequest) -> dict[str, Any]:
        from aigve.metrics.catalog import select_metrics
        from aigve.video.sampling import Window

        names = select_metrics(req.metrics, req.categories, req.suite)
        unknown = set(req.metric_options or {}) - set(names)
        if unknown:
            raise ApiError(422, f"metric_options given for metric(s) not in this job: {sorted(unknown)}")
        from aigve.backbones.registry import get_extractor_class

        for backbone in req.backbone_options or {}:
            try:
                get_extractor_class(backbone)
            except UsageError as exc:
                raise ApiError(422, f"backbone_options: {exc}") from None
        Window(max_len=req.max_len, max_seconds=req.max_seconds, fps_fallback=req.fps)
        if req.device is not None and not _DEVICE.match(req.device):
            raise ApiError(422, "device: use cpu, cuda, cuda:N or auto")
        ds = req.dataset
        if (ds.upload_id is None) == (ds.path is None):
            raise ApiError(422, "dataset: give exactly one of upload_id or path")
        spec: dict[str, Any]
        if ds.upload_id is not None:
            if not re.fullmatch(r"[0-9a-f]{32}", ds.upload_id) or self.store.get_upload(ds.upload_id) is None:
                raise ApiError(404, "dataset.upload_id: no such upload (expired or deleted?)")
            if ds.prompts:
                raise ApiError(
                    422, "dataset.prompts applies to path datasets; upload the prompts file instead"
                )
            spec = {"kind": "upload", "upload_id": ds.upload_id}
        else:
            spec = {"kind": "path", "path": ds.path, "prompts": ds.prompts}
        if ds.generated_suffixes:
            spec["generated_suffixes"] = [s for s in ds.generated_suffixes if s.strip()]
        dataset = build_dataset(self.settings, spec)  # 403/404/422 now rather than a failed job later
        return {
            "dataset": spec,
            "n_videos": len(dataset.entries),
            "metrics": names,
            "metric_options": req.metric_options or {},
            "backbone_options": req.backbone_options or {},
            "max_len": req.max_len,
            "max_seconds": req.max_seconds,
            "fps": req.fps,
            "device": req.device,
            "batch_size": req.batch_size,
            "precision": req.precision,
            "bootstrap": self.settings.bootstrap if req.bootstrap is None else req.bootstrap,
            "seed": req.seed,
        }

    def job_view(self, job: Job) -> dict[str, Any]:
        total = job.progress_total or job.params.get("n_videos") or 0
        status = job.status
        if status == "running" and job.cancel_requested is not None:
            status = "cancelling"
        p = job.params
        return {
            "id": job.id,
            "status": status,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
            "attempts": job.attempts,
            "progress": {
                "done": job.progress_done,
                "total": total,
                "fraction": (job.progress_done / total) if total else (1.0 if status == "succeeded" else 0.0),
            },
            "error": job.error,
            "summary": job.summary,
            "request": {
                "dataset": {k: v for k, v in p.get("dataset", {}).items() if k != "kind"}
                | {"kind": p["dataset"]["kind"]},
                "metrics": p.get("metrics"),
                "max_len": p.get("max_len"),
                "max_seconds": p.get("max_seconds"),
                "fps": p.get("fps"),
                "source": p.get("source"),
                "notes": p.get("notes", []),
            },
            "links": self.links(job.id),
        }

    @staticmethod
    def links(job_id: str) -> dict[str, str]:
        base = f"/v1/jobs/{job_id}"
        return {
            "self": base,
            "results": f"{base}/results",
            "per_video": f"{base}/per_video",
            "report": f"{base}/report",
            "artifacts": f"{base}/artifacts",
        }

    def get_job_or_404(self, job_id: str) -> Job:
        job = self.store.get_job(job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
        if job is None:
            raise ApiError(404, "no such job")
        return job

    def finished_out_dir(self, job: Job) -> Path:
        if job.status != "succeeded":
            raise ApiError(
                409, f"job is {job.status}; results exist once it has succeeded", job_status=job.status
            )
        out = self.settings.job_dir(job.id) / "out"
        if not (out / "results.json").is_file():
            raise ApiError(410, "the job's result files are gone (retention)")
        return out

    def artifacts(self, job: Job) -> list[dict[str, Any]]:
        out = self.finished_out_dir(job)
        arts = []
        for name in job.params.get("metrics", []):
            f = out / f"{name}_results.json"
            if f.is_file():
                arts.append({"name": f.name, "json": self.redactor.deep(json.loads(f.read_text("utf-8")))})
        return arts

    def remove_job_files(self, job_id: str) -> None:
        shutil.rmtree(self.settings.job_dir(job_id), ignore_errors=True)

    # maintenance -------------------------------------------------------
    def recover(self) -> None:
        """At start-up: jobs left running by a previous server go back to the queue (SQLite: all of
        them, the file has one server; PostgreSQL: those whose lease ran out)."""
        jobs = (
            self.store.running_jobs()
            if self.store.kind == "sqlite"
            else self.store.stale_running(self.settings.lease_seconds)
        )
        for job in jobs:
            self.store.requeue(job.id, "server restarted", self.settings.max_attempts + 1)
            log.info("job %s re-queued after a restart", job.id)

    def cleanup(self) -> None:
        cutoff = time.time() - self.settings.retention_seconds
        for job in self.store.expired_jobs(cutoff):
            self.remove_job_files(job.id)
            self.store.delete_job(job.id)
        for upload_id in self.store.expired_uploads(cutoff):
            shutil.rmtree(self.settings.upload_dir(upload_id), ignore_errors=True)
            self.store.delete_upload(upload_id)
        for job in self.store.list_jobs(limit=1000, status="cancelled"):
            self.remove_job_files(job.id)
        if self.store.kind != "sqlite":
            for job in self.store.stale_running(self.settings.lease_seconds):
                self.store.requeue(job.id, "worker lease expired", self.settings.max_attempts)
        # stray temporary upload folders (a request that died half way)
        if self.settings.uploads_dir.is_dir():
            for d in self.settings.uploads_dir.glob(".tmp-*"):
                try:
                    if d.stat().st_mtime < time.time() - 3600:
                        shutil.rmtree(d, ignore_errors=True)
                except OSError:
                    pass


# ---------------------------------------------------------------------------- app
def create_app(settings: ServerSettings, start_workers: bool = True) -> FastAPI:
    """The ASGI app. ``settings`` must be ``finalize()``-d; workers start with the app's lifespan."""
    state = ServerState(settings)
    for d in (settings.uploads_dir, settings.jobs_dir):
        d.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        state.recover()
        if start_workers:
            from aigve.server.worker import WorkerPool

            state.pool = WorkerPool(settings, state.store)
            # in the main thread: a worker's parent-death signal fires when the *thread* that
            # spawned it ends, so workers must never be started from a pool thread
            state.pool.start()
        state._tasks.append(asyncio.create_task(_maintenance(state)))
        if settings.stop_after:
            state._tasks.append(asyncio.create_task(_stop_after(settings.stop_after)))
        try:
            yield
        finally:
            for t in state._tasks:
                t.cancel()
            if state.pool is not None:
                state.pool.stop()

    app = FastAPI(
        title="aigve",
        version=__version__,
        description="Evaluate AI-generated video: a job queue over aigve.api.evaluate.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.aigve = state
    _install_error_handlers(app, state)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes + 1024 * 1024)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    auth = _auth_dependency(settings)
    api = APIRouter(dependencies=[Depends(auth)])

    # ------------------------------------------------------------------ open endpoints
    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        """Liveness and environment: versions, torch/CUDA, workers, queue depth (no auth)."""
        import platform

        try:
            import torch

            torch_info: dict[str, Any] = {
                "torch": torch.__version__,
                "cuda_available": bool(torch.cuda.is_available()),
                "cuda_version": getattr(torch.version, "cuda", None),
                "device_count": int(torch.cuda.device_count()),
            }
        except Exception:  # health must answer even with a broken torch
            torch_info = {"torch": None, "cuda_available": False, "cuda_version": None, "device_count": 0}
        counts = state.store.counts()
        return {
            "status": "ok",
            "aigve": __version__,
            "python": platform.python_version(),
            **torch_info,
            "workers": {
                "configured": settings.workers,
                "alive": state.pool.alive() if state.pool is not None else 0,
            },
            "queue_depth": counts.get("queued", 0),
            "running": counts.get("running", 0),
            "store": state.store.kind,
            "auth": settings.auth_required,
            "uptime_seconds": round(time.time() - state.started, 1),
        }

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            headers={
                "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            },
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ------------------------------------------------------------------ schema (auth)
    @api.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    # ------------------------------------------------------------------ catalogue
    @api.get("/v1/metrics", tags=["metrics"])
    def metrics() -> dict[str, Any]:
        """The metric catalogue: one row per metric, with availability on this server."""
        from aigve.metrics.base import FAMILIES
        from aigve.metrics.catalog import SUITES, all_specs, availability

        rows = []
        for spec in all_specs():
            d = spec.to_dict()
            a = availability(spec)
            d["available"] = bool(a["available"])
            d["missing_modules"] = a["missing_modules"]
            rows.append(d)
        return {"metrics": rows, "categories": list(FAMILIES), "suites": SUITES}

    # ------------------------------------------------------------------ uploads
    @api.post("/v1/uploads", status_code=201, tags=["uploads"])
    async def create_upload(
        videos: list[UploadFile] = File(..., description="video files (container sniffed, not trusted)"),
        prompts: UploadFile | None = File(None, description="optional prompts file (.json, .csv or .txt)"),
    ) -> dict[str, Any]:
        """Store videos (and a prompts file) for later jobs; files named ``<key>_synthetic.*`` pair
        with ``<key>.*`` by suffix."""
        return await store_upload(state, videos, prompts)

    @api.get("/v1/uploads/{upload_id}", tags=["uploads"])
    def get_upload(upload_id: str) -> dict[str, Any]:
        up = state.store.get_upload(upload_id) if re.fullmatch(r"[0-9a-f]{32}", upload_id) else None
        if up is None:
            raise ApiError(404, "no such upload")
        return {
            "upload_id": up.id,
            "created": up.created,
            "files": up.files,
            "prompts": up.prompts is not None,
        }

    @api.delete("/v1/uploads/{upload_id}", tags=["uploads"])
    def delete_upload(upload_id: str) -> dict[str, Any]:
        up = state.store.get_upload(upload_id) if re.fullmatch(r"[0-9a-f]{32}", upload_id) else None
        if up is None:
            raise ApiError(404, "no such upload")
        if state.store.upload_in_use(upload_id):
            raise ApiError(409, "upload is used by a queued or running job; cancel the job first")
        shutil.rmtree(settings.upload_dir(upload_id), ignore_errors=True)
        state.store.delete_upload(upload_id)
        return {"upload_id": upload_id, "deleted": True}

    # ------------------------------------------------------------------ jobs
    @api.post("/v1/jobs", status_code=202, response_model=JobAccepted, tags=["jobs"])
    def submit(req: JobRequest) -> dict[str, Any]:
        """Queue a job; answers 202 with its id at once. Poll ``GET /v1/jobs/{id}``."""
        job = state.validate_and_submit(req)
        return {"job_id": job.id, "status": job.status, "links": state.links(job.id)}

    @api.get("/v1/jobs", tags=["jobs"])
    def list_jobs(
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0, le=10**9),
        status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
    ) -> dict[str, Any]:
        jobs = state.store.list_jobs(limit, offset, status)
        return {"jobs": [state.job_view(j) for j in jobs], "counts": state.store.counts()}

    @api.get("/v1/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str) -> dict[str, Any]:
        """Status, progress (videos done / total), errors and, once finished, a summary."""
        return state.job_view(state.get_job_or_404(job_id))

    @api.get("/v1/jobs/{job_id}/results", tags=["results"])
    def job_results(job_id: str) -> dict[str, Any]:
        """``results.json``: aggregates with CIs and provenance (server folders removed)."""
        out = state.finished_out_dir(state.get_job_or_404(job_id))
        return state.redactor.deep(json.loads((out / "results.json").read_text("utf-8")))

    @api.get("/v1/jobs/{job_id}/per_video", tags=["results"], response_model=None)
    def job_per_video(job_id: str, format: Literal["json", "csv"] = "json") -> Response | dict[str, Any]:
        """One row per video x metric output, as JSON (default) or CSV."""
        out = state.finished_out_dir(state.get_job_or_404(job_id))
        rows = _per_video_rows(out / "per_video.csv", state.redactor)
        if format == "csv":
            return PlainTextResponse(_rows_to_csv(rows), media_type="text/csv; charset=utf-8")
        return {"rows": rows}

    @api.get("/v1/jobs/{job_id}/artifacts", tags=["results"])
    def job_artifacts(job_id: str) -> dict[str, Any]:
        """The original toolkit's ``<metric>_results.json`` files, each ``{name, json}``."""
        return {"artifacts": state.artifacts(state.get_job_or_404(job_id))}

    @api.get("/v1/jobs/{job_id}/report", tags=["results"], response_class=HTMLResponse)
    def job_report(job_id: str) -> HTMLResponse:
        """A self-contained HTML report of the job (no scripts, no external resources)."""
        from aigve.server.report import render_report

        job = state.get_job_or_404(job_id)
        out = state.finished_out_dir(job)
        results = state.redactor.deep(json.loads((out / "results.json").read_text("utf-8")))
        rows = _per_video_rows(out / "per_video.csv", state.redactor)
        return HTMLResponse(
            render_report(job.id, results, rows),
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
            },
        )

    @api.delete("/v1/jobs/{job_id}", tags=["jobs"])
    def delete_job(job_id: str) -> JSONResponse:
        """Cancel a queued or running job and delete its files. A finished job is deleted outright."""
        job = state.get_job_or_404(job_id)
        if job.status in FINISHED:
            state.remove_job_files(job.id)
            state.store.delete_job(job.id)
            return JSONResponse({"id": job.id, "status": "deleted"}, status_code=200)
        after = state.store.request_cancel(job.id)
        if after is not None and after.status == "cancelled":
            state.remove_job_files(job.id)
            return JSONResponse({"id": job.id, "status": "cancelled"}, status_code=200)
        return JSONResponse({"id": job.id, "status": "cancelling"}, status_code=202)

    from aigve.server.compat import build_compat_router

    app.include_router(api)
    app.include_router(build_compat_router(state, auth))
    return app


# ---------------------------------------------------------------------------- helpers
def _auth_dependency(settings: ServerSettings) -> Any:
    def require_token(request: Request) -> None:
        if not settings.auth_required:
            return
        if not check_authorization(request.headers.get("authorization"), settings.token):
            raise ApiError(401, "missing or wrong API token: send 'Authorization: Bearer <token>'")

    return require_token


async def store_upload(
    state: ServerState, videos: list[UploadFile], prompts: UploadFile | None
) -> dict[str, Any]:
    """Validate and store an upload; everything is removed again if any file is refused."""
    s = state.settings
    if not videos:
        raise ApiError(422, "no videos in the upload (multipart field 'videos')")
    if len(videos) > s.max_upload_files:
        raise ApiError(413, f"too many files: at most {s.max_upload_files} videos per upload")
    upload_id = uuid.uuid4().hex
    tmp = s.uploads_dir / f".tmp-{upload_id}"
    vdir = tmp / "videos"
    vdir.mkdir(parents=True)
    try:
        files, total = [], 0
        seen: set[str] = set()
        for f in videos:
            name = safe_filename(f.filename)
            if f.size is not None and f.size > s.max_file_bytes:
                raise ApiError(413, f"upload '{name}': larger than {s.max_file_bytes} bytes")
            head = await f.read(64)
            await f.seek(0)
            container = sniff_container(head)
            if container is None:
                raise ApiError(
                    415,
                    f"upload '{name}': not a video container this server reads "
                    "(mp4, mov, mkv, webm, avi, gif) — the file content decides, not its extension",
                )
            target = stored_name(name, container)
            if target.lower() in seen:
                raise ApiError(422, f"upload '{name}': two files with the same name")
            seen.add(target.lower())
            size = await run_in_threadpool(_copy_limited, f, vdir / target, s.max_file_bytes)
            total += size
            files.append({"name": target, "size": size, "container": container})
        prompts_name = None
        if prompts is not None and (prompts.filename or prompts.size):
            pname = safe_filename(prompts.filename or "prompts.txt")
            ext = Path(pname).suffix.lower()
            if ext not in (".json", ".csv", ".txt"):
                raise ApiError(415, "prompts file: use .json, .csv or .txt")
            prompts_name = f"prompts{ext}"
            await run_in_threadpool(_copy_limited, prompts, tmp / prompts_name, s.max_prompts_bytes)
            try:
                (tmp / prompts_name).read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise ApiError(415, "prompts file: not UTF-8 text") from None
        final = s.upload_dir(upload_id)
        tmp.rename(final)
        try:
            ds = await run_in_threadpool(build_dataset, s, {"kind": "upload", "upload_id": upload_id})
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        state.store.create_upload(upload_id, files, prompts_name, total)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n_pairs = sum(1 for e in ds.entries if e.real is not None)
    return {
        "upload_id": upload_id,
        "files": files,
        "prompts": prompts_name is not None,
        "dataset": {
            "entries": len(ds.entries),
            "pairs": n_pairs,
            "extra_reals": len(ds.extra_reals),
            "ids": [e.id for e in ds.entries][:1000],
        },
    }


def _copy_limited(upload: UploadFile, dest: Path, limit: int) -> int:
    size = 0
    upload.file.seek(0)
    with open(dest, "wb") as out:
        while block := upload.file.read(1024 * 1024):
            size += len(block)
            if size > limit:
                raise ApiError(413, f"upload '{dest.name}': larger than {limit} bytes")
            out.write(block)
    return size


def _per_video_rows(path: Path, red: Redactor) -> list[dict[str, Any]]:
    import pandas as pd

    if not path.is_file() or path.stat().st_size == 0:
        return []
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"video_id": str})
    df = df.astype(object).where(pd.notna(df), None)
    return [red.deep(r) for r in df.to_dict(orient="records")]


def _rows_to_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    w = csv.DictWriter(buf, fieldnames=cols or ["video_id"])
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _install_error_handlers(app: FastAPI, state: ServerState) -> None:
    red = state.redactor

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"detail": red.text(exc.message), **exc.extra},
            status_code=exc.status,
            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None,
        )

    @app.exception_handler(AigveError)
    async def aigve_error(request: Request, exc: AigveError) -> JSONResponse:
        return JSONResponse({"detail": red.text(str(exc))}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [
            {
                "loc": [str(x) for x in e.get("loc", ())],
                "msg": red.text(str(e.get("msg", ""))),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errs}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        return JSONResponse({"detail": red.text(detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        rid = uuid.uuid4().hex[:12]
        log.error("request %s %s failed (id %s)", request.method, request.url.path, rid, exc_info=exc)
        return JSONResponse({"detail": "internal server error", "request_id": rid}, status_code=500)


async def _maintenance(state: ServerState) -> None:
    last_cleanup = 0.0
    while True:
        await asyncio.sleep(1.0)
        try:
            if state.pool is not None:
                state.pool.supervise()  # main thread, see lifespan (a few fast store queries)
            if time.time() - last_cleanup > state.settings.cleanup_interval:
                last_cleanup = time.time()
                await run_in_threadpool(state.cleanup)
        except Exception:
            log.warning("maintenance step failed", exc_info=True)


async def _stop_after(seconds: float) -> None:
    import os
    import signal

    await asyncio.sleep(seconds)
    log.warning("--stop-after %.0fs reached: shutting down", seconds)
    os.kill(os.getpid(), signal.SIGINT)
