"""The original AIGVE toolkit's flags, mapped onto aigve's metrics and options in one place.

Three front doors accept them and all three call this module, so a flag means the same everywhere:

- ``aigve run`` / ``aigve prepare`` (:mod:`aigve.cli.run`): ``--use-cdfvd``, ``--cdfvd-*``, the
  checkpoint paths ``--gstvqa-model`` / ``--simplevqa-model``, ``--use-cpu``, and the refused
  ``--lightvqa-plus-*`` / ``--fvd-model``;
- ``aigve client`` (:mod:`aigve.cli.server`), the original ``scripts/call_aigve_api.py``'s flags,
  sent to the jobs API;
- the server's original endpoints ``/run`` and ``/run_upload`` (:mod:`aigve.server.compat`), whose
  JSON/form fields carry the same names with underscores (checkpoint paths are refused there: a
  server takes its weights from its own registry).

The cd-fvd flags: ``use_cdfvd`` adds ``fvd_videomae`` (``cdfvd_model=videomae``, the default) or
``fvd`` (``i3d``); ``cdfvd_sequence_length`` is the metric's ``frames``. ``cdfvd_resolution`` is *not*
passed on: in cd-fvd it is the size the folder loader pre-resizes (and centre-crops) videos to before
the network's own fixed 224 px resize, a step aigve does not reproduce (frames go straight to the
network's resize, as cd-fvd's array API does), so a value other than 224 gives a note and is not used.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigve.errors import UsageError

log = logging.getLogger("aigve")

CDFVD_MODELS: dict[str, str] = {"videomae": "fvd_videomae", "i3d": "fvd"}  # --cdfvd-model -> metric
DEFAULT_CDFVD_MODEL = "videomae"
CDFVD_NETWORK_SIZE = 224  # both cd-fvd networks resize their input to 224 px

#: the original checkpoint-path flags aigve accepts on the command line -> (metric, option)
CHECKPOINT_FLAGS: dict[str, tuple[str, str]] = {
    "gstvqa_model": ("gstvqa", "weights"),
    "simplevqa_model": ("simplevqa", "weights"),
}
#: every original checkpoint-path field (the server refuses them all: weights come from its registry)
CHECKPOINT_PATH_FIELDS: tuple[str, ...] = (
    "fvd_model",
    "gstvqa_model",
    "simplevqa_model",
    "lightvqa_plus_model",
    "lightvqa_plus_swin",
)
FVD_MODEL_REFUSED = (
    "--fvd-model: the original toolkit's FVD loaded hassony2/kinetics_i3d_pytorch's model_rgb.pth, a "
    "different I3D implementation from the one that defines FVD; aigve's `fvd` uses the StyleGAN-V/TATS "
    "I3D that cd-fvd uses (`aigve weights list fvd` says where its file goes), or pass "
    "--metric-option fvd.weights=PATH for a copy of i3d_pretrained_400.pt"
)


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


# ------------------------------------------------------------------------------------ cd-fvd
@dataclass(frozen=True)
class CdfvdChoice:
    """What the cd-fvd flags ask for: one metric, its options, and notes on what was not used."""

    metric: str
    options: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def apply(self, metrics: Iterable[str], metric_options: dict[str, dict[str, Any]]) -> list[str]:
        """``metrics`` plus this metric (once, at the end); its options merged into ``metric_options``
        (in place; they win over options given for it another way, as the flags are the more explicit)."""
        if self.options:
            metric_options.setdefault(self.metric, {}).update(self.options)
        return list(dict.fromkeys([*metrics, self.metric]))


def cdfvd_options(model: str | None, resolution: int | None, sequence_length: int | None) -> CdfvdChoice:
    """Map the original toolkit's cd-fvd options onto ours (see the module docstring)."""
    m = (model or DEFAULT_CDFVD_MODEL).lower()
    if m not in CDFVD_MODELS:
        raise UsageError(f"cdfvd model '{model}': use {' or '.join(CDFVD_MODELS)}")
    name = CDFVD_MODELS[m]
    opts: dict[str, Any] = {}
    notes: list[str] = []
    if sequence_length:
        opts["frames"] = int(sequence_length)
    if resolution and int(resolution) != CDFVD_NETWORK_SIZE:
        notes.append(
            f"cdfvd_resolution={resolution} not used: cd-fvd pre-resized videos to it before the network's own "
            f"{CDFVD_NETWORK_SIZE} px resize; {name} feeds decoded frames to the network's resize directly"
        )
    return CdfvdChoice(name, opts, tuple(notes))


def cdfvd_from_fields(fields: Mapping[str, Any]) -> CdfvdChoice | None:
    """The cd-fvd choice of a set of original fields (``use_cdfvd``, ``cdfvd_model``,
    ``cdfvd_resolution``, ``cdfvd_sequence_length``, ``cdfvd_all_flavors``); ``None`` without ``use_cdfvd``.

    ``fields`` is a dict (server) or ``vars(args)`` (command line): the one mapping all front doors use.
    """
    if not fields.get("use_cdfvd"):
        return None
    choice = cdfvd_options(
        fields.get("cdfvd_model"), fields.get("cdfvd_resolution"), fields.get("cdfvd_sequence_length")
    )
    if fields.get("cdfvd_all_flavors"):
        note = f"cdfvd_all_flavors: one flavour computed ({choice.metric}, {choice.options})"
        choice = CdfvdChoice(choice.metric, choice.options, (*choice.notes, note))
    return choice


def add_cdfvd_arguments(g: Any) -> None:
    """The ``--use-cdfvd`` / ``--cdfvd-*`` flags (``aigve run``, ``aigve prepare``, ``aigve client``)."""
    g.add_argument("--use-cdfvd", dest="use_cdfvd", action="store_true", help="add the content-debiased FVD")
    g.add_argument(
        "--cdfvd-model",
        dest="cdfvd_model",
        choices=list(CDFVD_MODELS),
        help=f"feature model of --use-cdfvd: videomae (fvd_videomae) or i3d (fvd) (default {DEFAULT_CDFVD_MODEL})",
    )
    g.add_argument(
        "--cdfvd-resolution",
        dest="cdfvd_resolution",
        type=int,
        help="accepted; not used (cd-fvd's loader pre-resize; the networks take 224 px), a note says so",
    )
    g.add_argument(
        "--cdfvd-sequence-length",
        dest="cdfvd_sequence_length",
        type=int,
        help="frames per clip for --use-cdfvd (default: the metric's own)",
    )


# ------------------------------------------------------------------------- checkpoint paths
def refuse_unsupported(fields: Mapping[str, Any]) -> None:
    """``UsageError`` with the reason for the flags aigve cannot honour (Light-VQA+, ``--fvd-model``)."""
    from aigve.metrics.catalog import UNAVAILABLE

    for f in ("lightvqa_plus_model", "lightvqa_plus_swin"):
        if fields.get(f):
            raise UsageError(f"{_flag(f)}: {UNAVAILABLE['lightvqa_plus']}")
    if fields.get("fvd_model"):
        raise UsageError(FVD_MODEL_REFUSED)


def apply_checkpoint_flags(
    fields: Mapping[str, Any], chosen: Iterable[str], metric_options: dict[str, dict[str, Any]]
) -> None:
    """``--gstvqa-model`` / ``--simplevqa-model`` are those metrics' ``weights`` paths (in place). A flag
    for a metric not in ``chosen`` is ignored with a warning (as before); an explicit
    ``--metric-option NAME.weights=...`` already in ``metric_options`` wins over a flag."""
    given = {f: fields[f] for f in CHECKPOINT_FLAGS if fields.get(f)}
    if not given:
        return
    chosen = set(chosen)
    for flag, path in given.items():
        metric, key = CHECKPOINT_FLAGS[flag]
        if metric not in chosen:
            log.warning("%s ignored: %s is not in this run", _flag(flag), metric)
            continue
        metric_options.setdefault(metric, {}).setdefault(key, str(Path(path).expanduser()))


def device_from_fields(fields: Mapping[str, Any]) -> str | None:
    """``use_cpu`` (``--use-cpu``) is device ``cpu``; ``None`` when not set."""
    return "cpu" if fields.get("use_cpu") else None


def add_checkpoint_arguments(g: Any) -> None:
    """The original checkpoint-path flags and ``--use-cpu`` (``aigve run`` / ``aigve prepare``)."""
    g.add_argument("--gstvqa-model", dest="gstvqa_model", metavar="PATH", help="GSTVQA checkpoint (gstvqa)")
    g.add_argument(
        "--simplevqa-model", dest="simplevqa_model", metavar="PATH", help="UGC_BVQA_model.pth (simplevqa)"
    )
    g.add_argument(
        "--lightvqa-plus-model",
        dest="lightvqa_plus_model",
        metavar="PATH",
        help="refused with the reason: Light-VQA+'s model code is unpublished",
    )
    g.add_argument("--lightvqa-plus-swin", dest="lightvqa_plus_swin", metavar="PATH", help="as above")
    g.add_argument("--fvd-model", dest="fvd_model", metavar="PATH", help="refused with the reason (see docs)")
    g.add_argument("--use-cpu", dest="use_cpu", action="store_true", help="same as --device cpu")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Every original flag ``aigve run`` accepts, in their two groups."""
    add_cdfvd_arguments(p.add_argument_group("original AIGVE cd-fvd options"))
    add_checkpoint_arguments(p.add_argument_group("original AIGVE checkpoint flags"))
