"""The original AIGVE server's endpoints (``/help``, ``/run``, ``/run_upload``) on top of the job queue.

They accept the original field names and answer ``{cmd, returncode, stdout, stderr, artifacts}``
with the ``<metric>_results.json`` files as ``{name, json}``. Differences, by design:

- no subprocess and no raw CLI: ``extra_args`` is refused (422), checkpoint-path fields too;
- ``input_dir`` must lie under a ``--data-root``; ``stage_dataset``/``out_json``/``link`` are accepted
  but the server never writes to client-chosen paths (each job has its own folder);
- ``/run_upload`` takes any number of videos and pairs them by suffix (``<key>_synthetic.mp4`` with
  ``<key>.mp4``); a folder without suffixed names is all generated videos;
- ``max_seconds`` wins over ``max_len`` (as before); ``fps`` is the frame rate assumed where the
  container declares none (the original assumed it always); ``pad`` is accepted and ignored;
- ``use_cdfvd``, ``cdfvd_model``, ``cdfvd_resolution``, ``cdfvd_sequence_length`` and ``use_cpu`` are
  mapped by :mod:`aigve.cli.legacy`, exactly as the same flags on the command line (``cdfvd_resolution``
  is a note, not an option); ``cdfvd_all_flavors`` is accepted, one flavour is computed.

Each request becomes an ordinary job (visible in ``/v1/jobs``) and the endpoint waits for it.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any, cast

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from aigve.cli import legacy
from aigve.errors import UsageError
from aigve.server.security import ApiError


class RunRequest(BaseModel):
    """``POST /run``: the original ``PrepareAnnotationsRequest`` fields (all optional)."""

    model_config = ConfigDict(extra="allow")
    input_dir: str | None = Field(None, max_length=4096, description="folder under a data root")
    out_json: str | None = Field(None, max_length=4096, description="accepted, not written (per-job folders)")
    generated_suffixes: str | None = Field("synthetic,generated", max_length=512)
    stage_dataset: str | None = Field(
        None, max_length=4096, description="accepted, not written (per-job folders)"
    )
    link: bool | None = False
    compute: bool | None = False
    metrics: str | None = Field(None, max_length=4096)
    categories: str | None = Field("", max_length=1024)
    list_metrics: bool | None = False
    max_len: int | None = Field(64, ge=1, le=100000)
    max_seconds: float | None = Field(None, gt=0, le=86400)
    fps: float | None = Field(25.0, gt=0, le=10000)
    pad: bool | None = False
    use_cpu: bool | None = False
    fvd_model: str | None = None
    gstvqa_model: str | None = None
    simplevqa_model: str | None = None
    lightvqa_plus_model: str | None = None
    lightvqa_plus_swin: str | None = None
    extra_args: list[str] | None = Field(None, description="refused: raw CLI tokens are not passed through")
    use_cdfvd: bool | None = False
    cdfvd_model: str | None = Field("videomae", max_length=32)
    cdfvd_resolution: int | None = Field(128, ge=16, le=1024)
    cdfvd_sequence_length: int | None = Field(16, ge=1, le=1024)
    cdfvd_all_flavors: bool | None = True


def _csv(s: str | None) -> list[str]:
    return [x.strip() for x in (s or "").split(",") if x.strip()]


def _path_ok(value: str | None, what: str) -> None:
    """Fields the server ignores still may not carry traversal or odd bytes."""
    if value is None:
        return
    if "\x00" in value or any(p == ".." for p in value.replace("\\", "/").split("/")):
        raise ApiError(422, f"{what}: '..' and NUL are not allowed in paths")


def compat_job(fields: dict[str, Any], dataset: dict[str, Any]) -> tuple[Any, list[str]]:
    """Original fields -> a ``JobRequest`` plus notes about what was ignored or changed."""
    from aigve.server.app import DatasetSpec, JobRequest

    notes: list[str] = []
    if fields.get("extra_args"):
        raise ApiError(
            422,
            "extra_args is not supported: raw command-line tokens are never passed through; "
            "use the named fields (metrics, categories, max_seconds, fps, ...)",
        )
    for f in legacy.CHECKPOINT_PATH_FIELDS:
        if fields.get(f):
            raise ApiError(
                422, f"{f}: checkpoint paths are not accepted; weights come from the server's registry"
            )
    for f in ("stage_dataset", "out_json"):
        _path_ok(fields.get(f), f)
        if fields.get(f):
            notes.append(f"{f} ignored: every job is staged in its own folder on the server")
    if fields.get("link"):
        notes.append("link ignored: nothing is copied, videos are read in place")
    metrics = _csv(fields.get("metrics"))
    if [m.lower() for m in metrics] == ["all"]:
        metrics = []
        notes.append("metrics=all ignored: name metrics or categories (see GET /v1/metrics)")
    categories = _csv(fields.get("categories"))
    metric_options: dict[str, dict[str, Any]] = {}
    try:
        cd = legacy.cdfvd_from_fields(fields)
    except UsageError:
        raise ApiError(422, "cdfvd_model: use videomae or i3d") from None
    if cd is not None:
        metrics = cd.apply(metrics, metric_options)
        notes.extend(cd.notes)
    if not metrics and not categories:
        raise ApiError(422, "no metrics chosen: give metrics and/or categories (see GET /v1/metrics)")
    from aigve.metrics.catalog import select_metrics

    select_metrics(metrics or None, categories or None)  # UsageError (422) for unknown names
    max_seconds = fields.get("max_seconds")
    max_len = None if max_seconds is not None else fields.get("max_len")
    if fields.get("pad"):
        notes.append("pad ignored: each metric samples the frames it needs")
    suffixes = _csv(fields.get("generated_suffixes")) or None
    req = JobRequest(
        dataset=DatasetSpec(**dataset, generated_suffixes=suffixes),
        metrics=metrics or None,
        categories=categories or None,
        metric_options=metric_options or None,
        max_len=max_len,
        max_seconds=max_seconds,
        fps=fields.get("fps"),
        device=legacy.device_from_fields(fields),
        suite=None,
        batch_size=32,
        bootstrap=None,
        seed=0,
    )
    return req, notes


async def run_compat(state: Any, fields: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """Submit the job, wait for it, answer in the original shape."""
    t0 = time.perf_counter()
    try:
        req, notes = compat_job(fields, dataset)
    except UsageError as exc:
        raise ApiError(422, str(exc)) from None
    unknown = sorted(k for k in fields if k not in RunRequest.model_fields and k != "videos")
    if unknown:
        notes.append(f"fields not used by this server: {', '.join(unknown)}")
    if not fields.get("compute", True):
        return await run_in_threadpool(_prepare_only, state, req, notes, t0)
    job = await run_in_threadpool(state.validate_and_submit, req, "compat", notes)
    deadline = time.time() + state.settings.compat_timeout
    while True:
        job = await run_in_threadpool(state.store.get_job, job.id)
        if job is None:
            raise ApiError(410, "the job was deleted while running")
        if job.status in ("succeeded", "failed", "cancelled"):
            break
        if time.time() > deadline:
            raise ApiError(504, "the job is still running; poll it at /v1/jobs/{id}", job_id=job.id)
        await asyncio.sleep(0.25)
    return _response(state, job, notes, t0)


def _response(state: Any, job: Any, notes: list[str], t0: float) -> dict[str, Any]:
    out: list[str] = [
        f"aigve {job.id}: {job.params.get('n_videos')} video(s), metrics {', '.join(job.params['metrics'])}"
    ]
    err: list[str] = []
    artifacts: list[dict[str, Any]] = []
    if job.status == "succeeded":
        s = job.summary or {}
        for name, m in (s.get("metrics") or {}).items():
            val = m.get("value")
            out.append(f"{name}: {'error' if m.get('error') else val}")
            if m.get("error"):
                err.append(f"{name}: {m['error']}")
        err.extend(str(e) for e in s.get("errors") or [])
        artifacts = state.artifacts(job)
        rc = int(s.get("exit_code", 0))
    elif job.status == "cancelled":
        err.append("cancelled")
        rc = 130
    else:
        err.append(job.error or "failed")
        rc = 1
    out.extend(f"note: {n}" for n in notes)
    return {
        "cmd": f"aigve job {job.id}",
        "returncode": rc,
        "stdout": "\n".join(out) + "\n",
        "stderr": ("\n".join(err) + "\n") if err else "",
        "artifacts": artifacts,
        "duration_ms": round((time.perf_counter() - t0) * 1000.0, 1),
        "job_id": job.id,
        "status": job.status,
    }


def _prepare_only(state: Any, req: Any, notes: list[str], t0: float) -> dict[str, Any]:
    """``compute=false``: pair and describe the data; the annotation comes back as an artifact."""
    import tempfile
    from pathlib import Path

    from aigve.data.annotation import write_annotation
    from aigve.server.datasets import build_dataset

    spec = state.job_params(req)["dataset"]
    ds = build_dataset(state.settings, spec)
    with tempfile.TemporaryDirectory() as tmp:
        ann = write_annotation(ds, Path(tmp) / "evaluate.json", ds.root)
        data = json.loads(Path(ann).read_text("utf-8"))
    n_pairs = sum(1 for e in ds.entries if e.real is not None)
    out = [
        f"paired {len(ds.entries)} generated video(s): {n_pairs} with a real one, "
        f"{len(ds.extra_reals)} extra real video(s)"
    ]
    out.extend(f"note: {n}" for n in notes)
    return {
        "cmd": "aigve prepare",
        "returncode": 0,
        "stdout": "\n".join(out) + "\n",
        "stderr": "",
        "artifacts": [{"name": "evaluate.json", "json": state.redactor.deep(data)}],
        "duration_ms": round((time.perf_counter() - t0) * 1000.0, 1),
    }


def help_text() -> str:
    from aigve.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    run = cast(Any, sub).choices["run"]
    fields = ", ".join(RunRequest.model_fields)
    return (
        run.format_help()
        + "\nPOST /run (JSON) and /run_upload (multipart: videos=<files>, same fields as form fields) accept:\n  "
        + fields
        + "\nextra_args and checkpoint paths are refused; input_dir must be under a data root.\n"
        + "Prefer the jobs API: POST /v1/uploads, POST /v1/jobs, GET /v1/jobs/{id}.\n"
    )


def build_compat_router(state: Any, auth: Any) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)], tags=["compat"])

    @router.get("/help")
    def compat_help() -> dict[str, Any]:
        """The CLI help, in the original ``{cmd, returncode, stdout, stderr}`` shape."""
        return {
            "cmd": "aigve run --help",
            "returncode": 0,
            "stdout": help_text(),
            "stderr": "",
            "artifacts": [],
        }

    @router.post("/run")
    async def compat_run(req: RunRequest) -> dict[str, Any]:
        """Evaluate a folder under a data root (original field names); waits for the job."""
        fields = req.model_dump()
        fields.update(req.model_extra or {})
        if fields.get("list_metrics"):
            return _list_metrics(time.perf_counter())
        if not req.input_dir:
            raise ApiError(422, "input_dir is required unless list_metrics is true")
        return await run_compat(state, fields, {"path": req.input_dir})

    @router.post("/run_upload")
    async def compat_run_upload(
        videos: list[UploadFile] = File(..., description="any number of videos, paired by suffix"),
        generated_suffixes: str = Form("synthetic,generated", max_length=512),
        stage_dataset: str | None = Form(None, max_length=4096),
        link: bool = Form(False),
        compute: bool = Form(True),
        metrics: str = Form("", max_length=4096),
        categories: str = Form("distribution_based", max_length=1024),
        max_len: int = Form(64, ge=1, le=100000),
        max_seconds: float | None = Form(None, gt=0, le=86400),
        fps: float = Form(25.0, gt=0, le=10000),
        pad: bool = Form(False),
        use_cpu: bool = Form(False),
        use_cdfvd: bool = Form(False),
        cdfvd_model: str = Form("videomae", max_length=32),
        cdfvd_resolution: int = Form(128, ge=16, le=1024),
        cdfvd_sequence_length: int = Form(16, ge=1, le=1024),
        cdfvd_all_flavors: bool = Form(True),
        extra_args: str | None = Form(None, description="refused"),
        prompts: UploadFile | None = File(None, description="optional prompts file"),
    ) -> dict[str, Any]:
        """Upload videos and evaluate them (original form fields); waits for the job."""
        from aigve.server.app import store_upload

        fields = {
            "generated_suffixes": generated_suffixes,
            "stage_dataset": stage_dataset,
            "link": link,
            "compute": compute,
            "metrics": metrics,
            "categories": categories,
            "max_len": max_len,
            "max_seconds": max_seconds,
            "fps": fps,
            "pad": pad,
            "use_cpu": use_cpu,
            "use_cdfvd": use_cdfvd,
            "cdfvd_model": cdfvd_model,
            "cdfvd_resolution": cdfvd_resolution,
            "cdfvd_sequence_length": cdfvd_sequence_length,
            "cdfvd_all_flavors": cdfvd_all_flavors,
            "extra_args": [extra_args] if extra_args else None,
        }
        compat_job(fields, {"upload_id": "0" * 32})  # refuse bad fields before storing anything
        up = await store_upload(state, videos, prompts)
        return await run_compat(state, fields, {"upload_id": up["upload_id"]})

    return router


def _list_metrics(t0: float) -> dict[str, Any]:
    from aigve.metrics.catalog import all_specs

    buf = io.StringIO()
    for s in all_specs():
        buf.write(f"{s.family:20s} {s.name}\n")
    return {
        "cmd": "aigve list-metrics",
        "returncode": 0,
        "stdout": buf.getvalue(),
        "stderr": "",
        "artifacts": [],
        "duration_ms": round((time.perf_counter() - t0) * 1000.0, 1),
    }
