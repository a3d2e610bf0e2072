"""Loading checkpoints: safe state-dict reading and :func:`load_into`, the one way a backbone loads weights.

:func:`load_state_dict` is restricted to safetensors and ``torch.load(weights_only=True)``: no arbitrary
unpickling. :func:`load_into` does the whole sequence every backbone needs: resolve (and hash-check) the
file, log the resolution warnings, build the network (on the meta device where asked, so no random init
runs for parameters that are overwritten right away), read the state dict (with the optional container key
and a state transform), load it strictly, and turn any failure into a ``WeightsError`` that names the file
and the fix that works.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aigve.errors import WeightsError
from aigve.weights.places import option_hint
from aigve.weights.resolve import ResolvedWeights, resolve_weights
from aigve.weights.spec import get_weight_spec

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

log = logging.getLogger(__name__)

M = TypeVar("M", bound="nn.Module")

_AUTO_KEYS = ("state_dict", "model", "module", "model_state", "params")


def load_state_dict(
    path: str | os.PathLike[str],
    *,
    map_location: str | torch.device = "cpu",
    key: str | None = None,
) -> dict[str, torch.Tensor]:
    """Load a flat ``{name: tensor}`` state dict without unpickling arbitrary objects.

    ``.safetensors`` files go through ``safetensors``; anything else through
    ``torch.load(weights_only=True)``. ``key`` unwraps a container (``"state_dict"``, ``"model"``,
    ... or a dotted path like ``"ema.model"``); ``key="auto"`` takes the first of
    ``state_dict/model/module/model_state/params`` that is present. No unwrapping happens unless asked.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found; check the path")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(p), device=str(map_location))
        except Exception as e:
            raise WeightsError(f"{p}: not a readable safetensors file ({e}); download it again") from e
    else:
        try:
            obj = torch.load(p, map_location=map_location, weights_only=True)
        except Exception as e:
            raise WeightsError(
                f"{p}: cannot be loaded with torch.load(weights_only=True) ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}). aigve does not unpickle arbitrary objects: "
                f"convert it once, in an environment you trust, to safetensors (load it, then "
                f"safetensors.torch.save_file(state_dict, '{p.with_suffix('.safetensors').name}')) and pass that file"
            ) from e
    if key is not None:
        obj = _unwrap(obj, key, p)
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{p}: expected a state dict (mapping of tensors), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(map(str, bad[:5]))
        hint = "pass key='auto' or key=<container>" if key is None else "choose another key"
        raise WeightsError(f"{p}: not a flat state dict (non-tensor entries: {shown}); {hint}")
    return dict(obj)


def _unwrap(obj: Any, key: str, path: Path) -> Any:
    if key == "auto":
        if isinstance(obj, Mapping):
            for k in _AUTO_KEYS:
                if isinstance(obj.get(k), Mapping):
                    return obj[k]
        return obj
    for part in key.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            keys = ", ".join(map(str, list(obj)[:10])) if isinstance(obj, Mapping) else type(obj).__name__
            raise WeightsError(f"{path}: no '{key}' entry in the checkpoint (top-level: {keys})")
        obj = obj[part]
    return obj


# --------------------------------------------------------------------------------------------
# the one load sequence
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedWeights(Generic[M]):
    """A network with its checkpoint loaded strictly (eval mode, CPU), and where the weights came from."""

    module: M
    resolved: ResolvedWeights = field(repr=False)

    @property
    def sha256(self) -> str:
        """sha256 of the checkpoint file (what the feature cache keys and the provenance record)."""
        return self.resolved.sha256

    @property
    def path(self) -> Path:
        """The checkpoint file that was loaded."""
        return self.resolved.path

    @property
    def warnings(self) -> list[str]:
        """The resolution warnings (already logged), e.g. an explicit file that differs from the registry."""
        return list(self.resolved.warnings)


def fetch_hint(name: str, size: str | None = None) -> str:
    """``on a machine with internet access `aigve weights fetch NAME` downloads FILE [(size)] into the cache``."""
    filename = get_weight_spec(name).filename
    about = f" ({size})" if size else ""
    return f"on a machine with internet access `aigve weights fetch {name}` downloads {filename}{about} into the cache"


def resolve_for_backbone(
    name: str,
    explicit_path: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    note: str | None = None,
    missing_hint: str | None = None,
) -> ResolvedWeights:
    """:func:`resolve_weights` for a backbone: the resolution warnings are logged, and an error says more.

    A ``WeightsError`` is raised again as ``"<context>: <message> (<missing_hint>) (<note>)"``:
    ``context`` says who needs the file; ``missing_hint`` (default: :func:`fetch_hint` when the registry
    has a URL) is added when no explicit path was given and the message does not already name
    ``aigve weights fetch``; ``note`` is always added (e.g. which metric option takes the file).
    """
    try:
        resolved = resolve_weights(name, explicit_path=explicit_path)
    except WeightsError as exc:
        msg = str(exc)
        if context:
            msg = f"{context}: {msg}"
        if explicit_path is None and "aigve weights fetch" not in msg:
            hint = missing_hint
            if hint is None and get_weight_spec(name).urls:
                hint = fetch_hint(name)
            if hint:
                msg += f" ({hint})"
        if note:
            msg += f" ({note})"
        raise WeightsError(msg) from exc
    for warning in resolved.warnings:
        log.warning("%s", warning)
    return resolved


def load_into(
    build: Callable[[], M],
    name: str,
    explicit_path: str | os.PathLike[str] | None = None,
    *,
    key: str | None = None,
    transform_state: Callable[[dict[str, torch.Tensor], M], Mapping[str, torch.Tensor]] | None = None,
    meta: bool = False,
    what: str | None = None,
    fix: str | None = None,
    context: str | None = None,
    note: str | None = None,
    missing_hint: str | None = None,
    resolved: ResolvedWeights | None = None,
) -> LoadedWeights[M]:
    """Resolve the checkpoint ``name`` (or ``explicit_path``), build the network and load it strictly.

    - ``build()`` makes the network; with ``meta=True`` inside ``torch.device("meta")`` and the state dict
      is then assigned (``load_state_dict(assign=True)``: the tensors keep the file's dtype), else the
      values are copied into the freshly built parameters.
    - ``key`` unwraps a container in the file (see :func:`load_state_dict`; ``"auto"`` for the usual ones);
      ``transform_state(state, module)`` rewrites the state dict before loading (drop a prefix, cast,
      add missing buffers). A ``RuntimeError`` from it or from the strict load becomes
      ``WeightsError("<file>: not <what> (<first line>) — <fix>")``; by default ``what`` is
      ``a '<name>' checkpoint (<filename>)`` and ``fix`` names the file and the ``--metric-option``
      that takes it.
    - ``context``, ``note``, ``missing_hint``: extend resolution errors, see :func:`resolve_for_backbone`.
    - ``resolved``: an already resolved file (resolution and its warnings are skipped).

    Returns the module in eval mode on CPU with the file's sha256, path and warnings.
    """
    import torch

    if resolved is None:
        resolved = resolve_for_backbone(
            name, explicit_path, context=context, note=note, missing_hint=missing_hint
        )
    spec = resolved.spec
    state = load_state_dict(resolved.path, key=key)
    if meta:
        with torch.device("meta"):  # no random init of parameters that are overwritten right away
            module = build()
    else:
        module = build()
    try:
        if transform_state is not None:
            state = dict(transform_state(state, module))
        module.load_state_dict(state, strict=True, assign=meta)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if what is None:
            what = f"a '{spec.name}' checkpoint ({spec.filename})"
        if fix is None:
            fetch = f", or `aigve weights fetch {spec.name}`" if spec.urls else ""
            fix = f"pass {spec.filename} ({option_hint(spec)}{fetch})"
        raise WeightsError(f"{resolved.path}: not {what} ({first}) — {fix}") from exc
    return LoadedWeights(module=module.eval(), resolved=resolved)
