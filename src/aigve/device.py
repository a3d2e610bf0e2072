"""Device and precision handling in one place: every model goes through ``resolve_device`` and runs under
``autocast`` (``--precision``)."""

from __future__ import annotations

import contextlib

import torch

from aigve.errors import UsageError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" picks CUDA when available, else CPU; "cuda"/"cuda:N" must exist."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(
                f"--device {name} was asked for, but CUDA is not available here; use --device cpu"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    if name == "cpu":
        return torch.device("cpu")
    raise UsageError(f"unknown device '{device}': use cpu, cuda, cuda:N or auto")


def device_summary() -> dict[str, object]:
    return {
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_device_count": torch.cuda.device_count(),
    }


#: ``--precision`` names -> the dtype the neural backbones' matmuls and convolutions run in (autocast)
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str | None) -> str:
    """``fp32`` (default), ``bf16`` or ``fp16``; anything else is a usage error."""
    name = (precision or "fp32").strip().lower()
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}': use {', '.join(PRECISIONS)}")
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The one place reduced precision is switched on: ``torch.autocast`` on ``device`` in ``precision``
    (nothing for fp32). Autocast runs matmuls and convolutions in the low dtype and keeps reductions,
    norms and softmax in fp32; the backbones turn their outputs to fp32 before they leave the network."""
    name = check_precision(precision)
    if name == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[name])


def check_decode_device(name: str | None) -> str:
    """``cpu`` (default), ``cuda`` or ``cuda:N`` for ``--decode-device``. A GPU that turns out unusable is not an
    error: each video it cannot decode is decoded on the CPU with a warning (aigve.video.gpu_decode)."""
    dev = (name or "cpu").strip().lower()
    if dev == "cpu" or dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit()):
        return dev
    raise UsageError(f"unknown decode device '{name}': use cpu, cuda or cuda:N")
