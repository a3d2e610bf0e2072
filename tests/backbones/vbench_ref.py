"""Access to VBench's own code for reference tests, without installing ``vbench`` (it pins transformers 4.33).

Set ``AIGVE_VBENCH_SRC`` to a folder that holds the ``vbench`` package of the ``vbench`` 0.1.5 wheel
(``pip download vbench==0.1.5 --no-deps`` and unzip it; its scoring code equals Vchitect/VBench commit 45e79ec),
and optionally ``AIGVE_VBENCH_DEPS`` to a ``pip install --target`` folder with the few extra modules the
vendored files import (``omegaconf``, ``decord``; ``pkg_resources`` is stubbed with ``packaging`` when missing). ``vbench`` and ``vbench.third_party`` are registered as
bare namespace packages, so ``vbench/__init__.py`` (which imports every dimension and its dependencies) never
runs; ``vbench.utils`` is replaced by a stub when its own imports (decord) are missing. Tests that need the
reference call :func:`vbench_module` and are skipped when it is not available; golden values recorded from it
run everywhere.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import pytest

VBENCH_COMMIT = "45e79ec"  # Vchitect/VBench HEAD whose vendored code equals the 0.1.5 wheel's


def vbench_root() -> Path | None:
    src = os.environ.get("AIGVE_VBENCH_SRC")
    if not src or not (Path(src) / "vbench" / "third_party").is_dir():
        return None
    return Path(src)


def _vbench_cache() -> None:
    """VBench's tokenizers read ``$VBENCH_CACHE_DIR/ViCLIP/bpe_simple_vocab_16e6.txt.gz`` (and download it when
    missing): point it at a temporary folder holding open_clip's copy of that file."""
    if os.environ.get("VBENCH_CACHE_DIR"):
        return
    import shutil
    import tempfile

    import open_clip

    cache = Path(tempfile.mkdtemp(prefix="vbench-cache-"))
    (cache / "ViCLIP").mkdir()
    shutil.copy(Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz", cache / "ViCLIP")
    os.environ["VBENCH_CACHE_DIR"] = str(cache)


def _register(root: Path) -> None:
    _vbench_cache()
    deps = os.environ.get("AIGVE_VBENCH_DEPS")
    if deps and deps not in sys.path:
        sys.path.append(deps)
    namespaces = (
        ("vbench", "vbench"),
        ("vbench.third_party", "vbench/third_party"),
        # its __init__ imports the training datasets, which need numpy < 2; the transforms do not
        ("vbench.third_party.umt.datasets", "vbench/third_party/umt/datasets"),
    )
    for name, sub in namespaces:
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [str(root / sub)]
            sys.modules[name] = mod
    if "vbench.utils" not in sys.modules:
        try:
            importlib.import_module("vbench.utils")
        except ImportError:  # decord missing: the dimensions only need load_dimension_info at run level
            stub = types.ModuleType("vbench.utils")
            stub.load_dimension_info = lambda *a, **k: ([], {})  # type: ignore[attr-defined]
            sys.modules["vbench.utils"] = stub
    if "pkg_resources" not in sys.modules:
        try:
            importlib.import_module("pkg_resources")
        except ImportError:  # ViCLIP's text tower only reads pkg_resources.packaging.version
            import packaging.version

            stub = types.ModuleType("pkg_resources")
            stub.packaging = packaging  # type: ignore[attr-defined]
            # pytest's monkeypatch.syspath_prepend calls this when pkg_resources is imported
            stub.fixup_namespace_packages = lambda *_a, **_k: None  # type: ignore[attr-defined]
            sys.modules["pkg_resources"] = stub
    if "clip" not in sys.modules:
        try:
            importlib.import_module("clip")
        except ImportError:  # temporal_style / overall_consistency import openai-clip without using it
            sys.modules["clip"] = types.ModuleType("clip")
    if "omegaconf" not in sys.modules:
        try:
            importlib.import_module("omegaconf")
        except ImportError:  # only used to read a yaml config, which the tests bypass
            stub = types.ModuleType("omegaconf")
            stub.OmegaConf = None  # type: ignore[attr-defined]
            sys.modules["omegaconf"] = stub


def vbench_module(name: str) -> types.ModuleType:
    """Import ``vbench.<name>`` from ``AIGVE_VBENCH_SRC``; skip the test when it is not set."""
    root = vbench_root()
    if root is None:
        pytest.skip(
            "VBench reference code not available: set AIGVE_VBENCH_SRC (see tests/backbones/vbench_ref.py)"
        )
    _register(root)
    return importlib.import_module(f"vbench.{name}")
