"""Name -> extractor class registry. Extractor modules register themselves on import."""

from __future__ import annotations

import importlib
from typing import Any

from aigve.backbones.base import Extractor
from aigve.errors import UsageError

_REGISTRY: dict[str, type[Extractor]] = {}

# name -> module that defines it; imported lazily so that heavy dependencies load only when used
_LAZY: dict[str, str] = {
    "frame_absdiff": "aigve.backbones.classic",
    "optical_flow": "aigve.backbones.classic",
    "niqe_features": "aigve.backbones.classic",
    "efficientnet_lite0": "aigve.backbones.efficientnet",
    "i3d_kinetics400": "aigve.backbones.i3d",
    "videomae_v2": "aigve.backbones.videomae",
    "fid_inception": "aigve.backbones.inception",
    "clip": "aigve.backbones.clip",
    "blip": "aigve.backbones.blip",
    "dover": "aigve.backbones.dover_views",
    "simplevqa_spatial": "aigve.backbones.vqa_features",
    "slowfast_r50": "aigve.backbones.vqa_features",
    "vgg16_meanstd": "aigve.backbones.vgg_multilayer",
}


def register_extractor(cls: type[Extractor]) -> type[Extractor]:
    _REGISTRY[cls.name] = cls
    return cls


def add_lazy(name: str, module: str) -> None:
    """Declare where an extractor lives without importing it (used by metric modules and plugins)."""
    _LAZY.setdefault(name, module)


def get_extractor_class(name: str) -> type[Extractor]:
    if name not in _REGISTRY and name in _LAZY:
        importlib.import_module(_LAZY[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(set(_REGISTRY) | set(_LAZY)))
        raise UsageError(f"unknown backbone '{name}'; known: {known}") from None


def build_extractor(name: str, **kwargs: Any) -> Extractor:
    return get_extractor_class(name)(**kwargs)


def known_extractors() -> list[str]:
    return sorted(set(_REGISTRY) | set(_LAZY))
