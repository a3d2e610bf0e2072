"""Property-based requests generated from the server's OpenAPI schema: no answer may be a 5xx.

Each operation gets a few derandomized examples (positive and negative generation modes) sent to
the real server with the token; schemathesis' pytest plugin is not used (its collection hook does
not work with this pytest), the strategies are driven by hypothesis directly.
"""

from __future__ import annotations

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.server.conftest import ServerProc  # noqa: E402


def test_no_server_errors(server: ServerProc) -> None:
    raw = httpx.get(server.url + "/openapi.json", headers=server.headers).json()
    schema = schemathesis.openapi.from_dict(raw)
    schema.config.update(base_url=server.url)
    failures: list[str] = []
    seen: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        seen.append(f"{op.method.upper()} {op.path}")

        @given(case=op.as_strategy())
        @settings(
            max_examples=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: object) -> None:
            response = case.call(headers=server.headers, timeout=60)  # type: ignore[attr-defined]
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:300]}")  # type: ignore[attr-defined]

        run()
    assert "POST /v1/jobs" in seen and "POST /run_upload" in seen and "GET /v1/jobs/{job_id}" in seen
    assert not failures, "\n".join(failures)
