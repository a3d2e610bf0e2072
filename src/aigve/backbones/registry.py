"""Name -> backbone class registry (feature extractors and scorers).

Convention: backbone ``x`` lives in ``aigve.backbones.<module>``, where ``<module>`` is ``x`` itself or
the longest ``_``-separated prefix of ``x`` that is a module of this package (``fid_inception`` ->
``fid_inception.py``, ``i3d_kinetics400`` -> ``i3d.py``, ``clip_text`` -> ``clip.py``). Modules register
their classes on import, so only the module a run needs is imported. The few backbones that share a
module under another name are listed in ``_ELSEWHERE``; plugins declare theirs with :func:`add_lazy`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pkgutil
from typing import Any

from aigve.backbones.base import Backbone
from aigve.errors import UsageError, did_you_mean

_REGISTRY: dict[str, type[Backbone]] = {}

_PACKAGE = "aigve.backbones"
# backbones whose module is not named after them: small extractors that share a module
_ELSEWHERE: dict[str, str] = {
    "frame_absdiff": f"{_PACKAGE}.classic",
    "optical_flow": f"{_PACKAGE}.classic",
    "niqe_features": f"{_PACKAGE}.classic",
    "blur_effect_frames": f"{_PACKAGE}.classic",
    "slowfast_r50": f"{_PACKAGE}.simplevqa",  # SimpleVQA's motion branch
}
_NOT_BACKBONES = {"base", "registry"}  # helper modules of this package


def register_extractor(cls: type[Backbone]) -> type[Backbone]:
    """Class decorator for extractors and scorers (the name is ``cls.name``)."""
    _REGISTRY[cls.name] = cls
    return cls


register_backbone = register_extractor


def add_lazy(name: str, module: str) -> None:
    """Declare where a backbone lives without importing it (plugins whose module breaks the convention)."""
    _ELSEWHERE.setdefault(name, module)


def module_for(name: str) -> str | None:
    """The module that defines backbone ``name`` by the naming convention (None when there is none)."""
    if name in _ELSEWHERE:
        return _ELSEWHERE[name]
    parts = name.split("_")
    for k in range(len(parts), 0, -1):
        mod = "_".join(parts[:k])
        if mod in _NOT_BACKBONES or not mod.isidentifier():
            continue
        full = f"{_PACKAGE}.{mod}"
        if importlib.util.find_spec(full) is not None:
            return full
    return None


def get_extractor_class(name: str) -> type[Backbone]:
    if name not in _REGISTRY:
        mod = module_for(name)
        if mod is not None:
            importlib.import_module(mod)
    try:
        return _REGISTRY[name]
    except KeyError:
        known = known_extractors()
        raise UsageError(
            f"unknown backbone '{name}'{did_you_mean(name, known)}; known: {', '.join(known)}"
        ) from None


get_backbone_class = get_extractor_class


def build_extractor(name: str, **kwargs: Any) -> Backbone:
    return get_extractor_class(name)(**kwargs)


build_backbone = build_extractor


def known_extractors() -> list[str]:
    """Every registered backbone name (imports each backbone module of the package once)."""
    import aigve.backbones as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.ispkg and info.name not in _NOT_BACKBONES:
            _try_import(f"{_PACKAGE}.{info.name}")
    for mod in set(_ELSEWHERE.values()):
        _try_import(mod)
    return sorted(_REGISTRY)


def _try_import(module: str) -> None:
    with contextlib.suppress(ImportError):  # an optional dependency is missing: not listed
        importlib.import_module(module)
