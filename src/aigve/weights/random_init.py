"""Seeded random weights in the real architectures, for benchmarks and tests where a checkpoint cannot be had.

Speed and memory depend on a network's shapes, not on its weight values, so ``benchmarks/gpu_check.py`` (and the
precision tests) build each backbone's network with its ordinary random init, save the state dict as a
safetensors file, and give that file to the backbone as its ``weights`` option: the backbone then loads it through
the normal loader (:func:`aigve.weights.load.load_into`, strict, hashed), exactly as it loads a real checkpoint.
Numbers computed this way are *not* the standard metrics (the weights are noise); only their speed and their
agreement across devices and precisions mean anything.

Plain random init shrinks activations layer after layer in deep batch-normalised networks (the running
statistics say mean 0, variance 1 whatever the layer gives), so an Inception's features come out ~1e-7 and
underflow in fp16. The batch-norm layers are therefore calibrated once on a random input batch (their running
statistics set to that batch's): activations stay O(1), as with trained weights.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: backbone -> (module, network class, backbone options besides ``weights``): networks built without arguments
#: the input batch the batch-norm statistics are calibrated on, per backbone (the network's own input layout)
_CALIBRATION_INPUT: dict[str, tuple[tuple[int, ...], str]] = {
    "fid_inception": ((8, 3, 299, 299), "unit"),  # [0, 1] images; the network normalises them
    "efficientnet_lite0": ((8, 3, 224, 224), "normal"),  # ImageNet-normalised images
    "i3d_kinetics400": ((2, 3, 16, 224, 224), "signed"),  # [-1, 1] clips
}
_NETS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "fid_inception": ("aigve.backbones.nets.fid_inception", "FIDInceptionV3", {}),
    "i3d_kinetics400": ("aigve.backbones.nets.i3d", "InceptionI3d", {}),
    "efficientnet_lite0": ("aigve.backbones.nets.efficientnet_lite0", "EfficientNetLite0", {}),
}
#: OpenCLIP architecture used for the ``clip`` backbone (its tokenizer ships with open_clip: no download)
CLIP_ARCH = "ViT-B-32"


def random_backbones() -> list[str]:
    """The backbones :func:`random_weights_options` can give random weights to."""
    return [*_NETS, "clip"]


def _save(state: dict[str, Any], path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    # contiguous copies: safetensors refuses shared or strided storage
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(path))
    return path


def _builder(backbone: str) -> Callable[[], Any]:
    module, cls, _ = _NETS[backbone]
    return getattr(importlib.import_module(module), cls)


def random_weights_file(backbone: str, directory: str | Path, seed: int = 0, small: bool = False) -> Path:
    """``<directory>/<backbone>-random-<seed>.safetensors``: the backbone's network with seeded random init
    (written once; an existing file is reused). ``small``: batch-norm calibration on a smaller batch (smoke
    tests on a CPU; the file name says ``-small``)."""
    import torch

    from aigve.errors import UsageError

    path = Path(directory) / f"{backbone}-random-{seed}{'-small' if small else ''}.safetensors"
    if path.is_file():
        return path
    torch.manual_seed(seed)
    if backbone == "clip":
        import open_clip

        net = open_clip.create_model(CLIP_ARCH, pretrained=None)
    elif backbone in _NETS:
        net = _builder(backbone)()
        _calibrate_batch_norm(net, backbone, small)
    else:
        raise UsageError(f"no random-weights builder for backbone '{backbone}'; known: {random_backbones()}")
    return _save(net.state_dict(), path)


def _calibrate_batch_norm(net: Any, backbone: str, small: bool = False) -> None:
    """Set every batch-norm layer's running statistics to those of one random input batch."""
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    shape, kind = _CALIBRATION_INPUT[backbone]
    if small:  # two samples; I3D: one clip of 10 frames of 200 px (its head pool needs >= 9 x 193 x 193)
        shape = (2, *shape[1:]) if backbone != "i3d_kinetics400" else (1, 3, 10, 200, 200)
    x = torch.rand(shape) if kind == "unit" else torch.randn(shape)
    if kind == "signed":
        x = x.clamp(-1.0, 1.0)
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, exactly that batch's statistics
    net.train()
    with torch.no_grad():
        net(x)
    for m in bns:
        m.momentum = 0.1
    net.eval()


def random_weights_options(
    backbone: str, directory: str | Path, seed: int = 0, small: bool = False
) -> dict[str, Any]:
    """Backbone options that load random weights through the normal loader (``--backbone-option`` /
    ``backbone_options={backbone: ...}``; for ``clip`` give them as the clip metrics' own options, since their
    default ``model`` option would win)."""
    opts: dict[str, Any] = {"weights": str(random_weights_file(backbone, directory, seed, small))}
    if backbone == "clip":
        opts["model"] = f"open_clip:{CLIP_ARCH}"
    else:
        opts.update(_NETS[backbone][2])
    return opts
