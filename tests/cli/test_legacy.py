"""The original toolkit's flags mean the same through every front door: ``aigve run`` (command line),
``aigve client`` (jobs API) and the server's original ``/run`` endpoints (``compat_job``).

The bug this guards: ``--cdfvd-resolution`` was passed on as ``fvd_videomae``'s ``resolution`` option by
the client (``FVDVideoMAE(resolution=256)`` refuses it, so the job failed) while the command line
recorded it as a note. It is a note everywhere now, and the mapped options build a working metric.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from aigve.cli.legacy import cdfvd_options
from aigve.cli.main import build_parser
from aigve.cli.run import merge_run_options
from aigve.cli.server import client_job
from aigve.metrics.catalog import get_metric_class

FLAGS = [("videomae", 256, 8), ("videomae", 224, None), ("i3d", 128, 24), (None, None, None)]


def _argv(model: str | None, resolution: int | None, length: int | None) -> list[str]:
    argv = ["--use-cdfvd"]
    if model:
        argv += ["--cdfvd-model", model]
    if resolution:
        argv += ["--cdfvd-resolution", str(resolution)]
    if length:
        argv += ["--cdfvd-sequence-length", str(length)]
    return argv


def via_cli(caplog: pytest.LogCaptureFixture, *flags: Any) -> tuple[list[str], dict, list[str]]:
    args = build_parser().parse_args(["run", "x", "--out", "o", "--metrics", "flicker", *_argv(*flags)])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aigve"):
        o = merge_run_options(args)
    return o["metrics"], o["metric_options"], [r.getMessage() for r in caplog.records]


def via_client(*flags: Any) -> tuple[list[str], dict, list[str]]:
    args = build_parser().parse_args(["client", "--metrics", "flicker", *_argv(*flags)])
    metrics, _, options, notes = client_job(args)
    return metrics, options.get("metric_options") or {}, notes


def via_compat(
    model: str | None, resolution: int | None, length: int | None
) -> tuple[list[str], dict, list[str]]:
    pytest.importorskip("fastapi")
    from aigve.server.compat import compat_job

    fields = {"metrics": "flicker", "use_cdfvd": True, "cdfvd_model": model}
    fields |= {"cdfvd_resolution": resolution, "cdfvd_sequence_length": length}
    req, notes = compat_job(fields, {"path": "x"})
    return req.metrics, req.metric_options or {}, notes


@pytest.mark.parametrize("flags", FLAGS)
def test_cdfvd_flags_give_the_same_metric_options_and_notes_everywhere(
    flags: tuple[Any, ...], caplog: pytest.LogCaptureFixture
) -> None:
    choice = cdfvd_options(*flags)
    expected = (["flicker", choice.metric], {choice.metric: choice.options} if choice.options else {})
    cli, client, compat = via_cli(caplog, *flags), via_client(*flags), via_compat(*flags)
    assert cli[:2] == client[:2] == compat[:2] == expected
    assert cli[2] == client[2] == compat[2] == list(choice.notes)
    get_metric_class(choice.metric)(**choice.options)  # the options build the metric (no model is loaded)


def test_cdfvd_resolution_is_a_note_not_an_option(caplog: pytest.LogCaptureFixture) -> None:
    """The original client's ``--use-cdfvd --cdfvd-model videomae --cdfvd-resolution 256``."""
    for metrics, options, notes in (
        via_cli(caplog, "videomae", 256, None),
        via_client("videomae", 256, None),
        via_compat("videomae", 256, None),
    ):
        assert metrics == ["flicker", "fvd_videomae"] and options == {}
        assert len(notes) == 1 and notes[0].startswith("cdfvd_resolution=256 not used: cd-fvd pre-resized")


def test_unknown_cdfvd_model_is_refused_on_every_path() -> None:
    from aigve.errors import UsageError

    with pytest.raises(UsageError, match="use videomae or i3d"):
        cdfvd_options("vit", None, None)
    with pytest.raises(SystemExit):  # argparse choices on the command line and in the client
        build_parser().parse_args(["client", "--use-cdfvd", "--cdfvd-model", "vit"])
    pytest.importorskip("fastapi")
    from aigve.server.compat import compat_job
    from aigve.server.security import ApiError

    with pytest.raises(ApiError) as e:
        compat_job({"metrics": "flicker", "use_cdfvd": True, "cdfvd_model": "vit"}, {"path": "x"})
    assert e.value.status == 422
