"""A small self-contained HTML report of one job (no scripts, no external resources).

Built from the job's ``results.json`` and per-video rows (already redacted by the caller); every
value is HTML-escaped.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        a = abs(v)
        return f"{v:.3e}" if a != 0 and (a >= 1e4 or a < 1e-3) else f"{v:.4f}"
    return escape(str(v))


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2330}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccd;padding:.25rem .6rem;text-align:left}
th{background:#eef1f7}td.num{text-align:right;font-variant-numeric:tabular-nums}.err{color:#a11}.warn{color:#8a5a00}
"""


def render_report(job_id: str, results: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """HTML for ``GET /v1/jobs/{id}/report``. Errors are counted as everywhere else
    (:func:`aigve.results.summary.count_errors`)."""
    from aigve.results.summary import MIN_CI_N, ci_caveat_text, count_errors

    metrics = results.get("metrics") or {}
    counts = count_errors(
        int(results.get("n_videos") or 0),
        {name: agg.get("error") for name, agg in metrics.items()},
        [e for e in results.get("errors") or [] if isinstance(e, dict)],
        ((r.get("video_id"), r.get("metric"), r.get("error")) for r in rows),
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>aigve report {escape(job_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>aigve report — {escape(str(results.get('dataset', '')))}</h1>",
        f"<p>job <code>{escape(job_id)}</code>: {escape(counts.headline())}.</p>",
        "<h2>Metrics</h2><table id='aggregates'><thead><tr><th>metric</th><th>output</th><th>value</th>"
        "<th>95% CI</th><th>n</th><th>better</th><th>errors</th></tr></thead><tbody>",
    ]
    for name, agg in metrics.items():
        outputs = agg.get("outputs") or {}
        caveat = None
        for out_name, ov in outputs.items():
            ci = ov.get("ci95") if not agg.get("error") else None
            hib = ov.get("higher_is_better")
            n = int(ov.get("n") or 0)
            cav = (ov.get("ci_caveat") or (ci_caveat_text(n) if n < MIN_CI_N else None)) if ci else None
            caveat = caveat or cav
            parts.append(
                f"<tr><td>{escape(name)}</td><td>{escape(out_name)}</td><td class='num'>{_fmt(ov.get('value'))}</td>"
                f"<td>{'[' + _fmt(ci[0]) + ', ' + _fmt(ci[1]) + ']' if ci else ''}"
                f"{f' ⚠ n&lt;{MIN_CI_N}' if cav else ''}</td>"
                f"<td class='num'>{_fmt(ov.get('n'))}</td><td>{'↑' if hib else ('↓' if hib is False else '·')}</td>"
                f"<td class='num'>{escape(counts.metric_cell(name))}</td></tr>"
            )
        if agg.get("error"):
            parts.append(
                f"<tr><td>{escape(name)}</td><td colspan='6' class='err'>could not run: {escape(str(agg['error']))}</td></tr>"
            )
        if caveat:
            parts.append(
                f"<tr><td>{escape(name)}</td><td colspan='6' class='warn'>⚠ 95% CI: {escape(str(caveat))}</td></tr>"
            )
        for w in agg.get("warnings") or []:  # e.g. a stand-in backbone: the number is not the standard one
            parts.append(
                f"<tr><td>{escape(name)}</td><td colspan='6' class='warn'>⚠ {escape(str(w))}</td></tr>"
            )
        if agg.get("backbone"):
            parts.append(
                f"<tr><td>{escape(name)}</td><td colspan='6'>backbone: {escape(str(agg['backbone']))}</td></tr>"
            )
    parts.append("</tbody></table>")
    parts.append(
        "<h2>Per video</h2><table id='per-video'><thead><tr><th>video</th><th>metric</th><th>output</th>"
        "<th>value</th><th>error</th><th>warning</th></tr></thead><tbody>"
    )
    for r in rows:
        parts.append(
            f"<tr><td>{escape(str(r.get('video_id')))}</td><td>{escape(str(r.get('metric')))}</td>"
            f"<td>{escape(str(r.get('output')))}</td><td class='num'>{_fmt(r.get('value'))}</td>"
            f"<td class='err'>{escape(str(r.get('error') or ''))}</td>"
            f"<td class='warn'>{escape(str(r.get('warning') or ''))}</td></tr>"
        )
    parts.append("</tbody></table>")
    video_warnings = results.get("video_warnings") or []
    if video_warnings:
        parts.append("<h2>Videos scored despite a decoding problem</h2><ul>")
        parts.extend(
            f"<li class='warn'>{escape(str(w.get('warning') if isinstance(w, dict) else w))}</li>"
            for w in video_warnings
        )
        parts.append("</ul>")
    errors = results.get("errors") or []
    if errors:
        parts.append("<h2>Errors</h2><ul>")
        parts.extend(
            f"<li class='err'>{escape(str(e.get('error') if isinstance(e, dict) else e))}</li>"
            for e in errors
        )
        parts.append("</ul>")
    parts.append("</body></html>")
    return "".join(parts)
