"""``aigve.client.Client``: a small httpx client for the aigve server's jobs API.

>>> from aigve.client import Client  # doctest: +SKIP
>>> with Client("http://127.0.0.1:2200", token="...") as c:  # doctest: +SKIP
...     up = c.upload(["4056.mp4", "4056_synthetic.mp4"])
...     job = c.submit({"upload_id": up["upload_id"]}, metrics=["flicker", "motion"])
...     c.wait(job)["summary"]["metrics"]["flicker"]["value"]
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from aigve.errors import AigveError, MissingDependencyError

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".gif")
FINISHED = ("succeeded", "failed", "cancelled")


class ApiClientError(AigveError):
    """The server answered with an error status; ``status`` and ``detail`` are the server's."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"server answered {status}: {detail}")


class ServerUnreachableError(AigveError):
    """No aigve server answers at ``base_url`` (connection refused, unknown host, connect timeout)."""

    def __init__(self, base_url: str, reason: str) -> None:
        self.base_url = base_url
        self.reason = reason
        super().__init__(
            f"no aigve server answers at {base_url} ({reason}): start one with `aigve serve`, or point "
            "the client at the one that runs (Client(base_url=...); `aigve client --base-url URL`)"
        )


def _reason(exc: BaseException) -> str:
    """``Connection refused`` from ``[Errno 111] Connection refused`` (the short, readable part)."""
    text = str(exc) or type(exc).__name__
    return text.split("] ", 1)[1] if text.startswith("[Errno") and "] " in text else text


class Client:
    """Talks to ``aigve serve``. ``token`` defaults to ``$AIGVE_API_TOKEN``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:2200",
        token: str | None = None,
        timeout: float = 120.0,
        transport: Any = None,
    ) -> None:
        try:
            import httpx
        except ImportError:
            raise MissingDependencyError("aigve.client", "server", "httpx") from None
        token = token if token is not None else os.environ.get("AIGVE_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    # ------------------------------------------------------------------ plumbing
    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/")

    def _request(self, method: str, url: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, url, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServerUnreachableError(self.base_url, _reason(exc)) from None
        except httpx.TransportError as exc:  # it answered before, then the connection broke
            raise AigveError(
                f"lost the connection to the aigve server at {self.base_url} during {method} {url}: "
                f"{type(exc).__name__}: {_reason(exc)}"
            ) from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text[:500]
            raise ApiClientError(r.status_code, detail)
        return r

    # ------------------------------------------------------------------ API
    def health(self) -> dict[str, Any]:
        return self._request("GET", "/healthz").json()

    def metrics(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/metrics").json()["metrics"]

    def upload(self, videos: Sequence[str | Path], prompts: str | Path | None = None) -> dict[str, Any]:
        """Upload video files (and a prompts file); returns ``{upload_id, files, dataset, ...}``."""
        with ExitStack() as stack:
            files: list[tuple[str, tuple[str, Any, str]]] = []
            for v in videos:
                p = Path(v)
                files.append(
                    ("videos", (p.name, stack.enter_context(open(p, "rb")), "application/octet-stream"))
                )
            if prompts is not None:
                pp = Path(prompts)
                files.append(("prompts", (pp.name, stack.enter_context(open(pp, "rb")), "text/plain")))
            return self._request("POST", "/v1/uploads", files=files).json()

    def submit(
        self,
        dataset: dict[str, Any] | str,
        metrics: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        **options: Any,
    ) -> str:
        """Queue a job; ``dataset`` is ``{"upload_id": ...}``, ``{"path": ...}`` or an upload id.
        ``options``: suite, metric_options, max_len, max_seconds, fps, device, batch_size, bootstrap, seed."""
        if isinstance(dataset, str):
            dataset = {"upload_id": dataset}
        body: dict[str, Any] = {"dataset": dataset, **{k: v for k, v in options.items() if v is not None}}
        if metrics:
            body["metrics"] = list(metrics)
        if categories:
            body["categories"] = list(categories)
        return self._request("POST", "/v1/jobs", json=body).json()["job_id"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def wait(
        self,
        job_id: str,
        poll: float = 0.5,
        timeout: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job has finished; returns its final state (``status`` tells how it ended)."""
        t_end = None if timeout is None else time.monotonic() + timeout
        while True:
            j = self.job(job_id)
            if on_progress is not None:
                on_progress(j)
            if j["status"] in FINISHED:
                return j
            if t_end is not None and time.monotonic() > t_end:
                raise TimeoutError(f"job {job_id} still {j['status']} after {timeout} s")
            time.sleep(poll)

    def results(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}/results").json()

    def per_video(self, job_id: str, format: str = "json") -> Any:
        r = self._request("GET", f"/v1/jobs/{job_id}/per_video", params={"format": format})
        return r.text if format == "csv" else r.json()["rows"]

    def report(self, job_id: str) -> str:
        return self._request("GET", f"/v1/jobs/{job_id}/report").text

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/v1/jobs/{job_id}/artifacts").json()["artifacts"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/v1/jobs/{job_id}").json()

    def save(self, job_id: str, save_dir: str | Path) -> list[Path]:
        """Write the job's ``<metric>_results.json`` artifacts, ``results.json``, ``per_video.csv`` and
        ``report.html`` into ``save_dir``; returns the paths."""
        d = Path(save_dir)
        d.mkdir(parents=True, exist_ok=True)
        saved = []
        for art in self.artifacts(job_id):
            p = d / Path(str(art["name"])).name
            p.write_text(json.dumps(art["json"], indent=2) + "\n", encoding="utf-8")
            saved.append(p)
        p = d / "results.json"
        p.write_text(json.dumps(self.results(job_id), indent=2) + "\n", encoding="utf-8")
        saved.append(p)
        p = d / "per_video.csv"
        p.write_text(self.per_video(job_id, "csv"), encoding="utf-8")
        saved.append(p)
        p = d / "report.html"
        p.write_text(self.report(job_id), encoding="utf-8")
        saved.append(p)
        return saved


def video_files(upload_dir: str | Path | None, upload_files: Sequence[str] | None) -> list[Path]:
    """The files ``aigve client`` uploads: ``--upload-files`` then the videos of ``--upload-dir``."""
    out: list[Path] = [Path(f) for f in upload_files or []]
    if upload_dir:
        d = Path(upload_dir)
        out.extend(sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS))
    return list(dict.fromkeys(out))
