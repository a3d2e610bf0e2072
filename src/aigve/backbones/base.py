"""The two kinds of backbone every model (neural or classic) is one of.

- An **extractor** turns the sampled frames of one video into a 2-D float array ``[K, D]``:
  ``kind="frames"`` gives one row per input frame (K = T), ``kind="clip"`` gives rows per clip (e.g. one
  I3D feature per 16-frame window), ``kind="pairs"`` one row per consecutive frame pair.
- A **scorer** (``kind="scorer"``) is a model stage that reads one video's sampled frames *or another
  backbone's features of them* (``input="features"``, naming that extractor in :meth:`Scorer.upstream`)
  together with the entry's texts (its prompt; for judges, the questions they derive from it), and gives a
  2-D float array ``[K, len(columns)]``: CLIP/BLIP image-text scores, a VQA model's quality head, a
  vision-language judge. Scorers are batched across videos (``score`` takes several at once).

Backbones are built once per run by the engine, shared by every metric that names them, and their
``identity()`` (name, options, weights hash, version) is part of the cache key and the provenance of every
score computed from them. A scorer's cache key adds its upstream extractor's identity and a hash of every
text it read, so a changed prompt recomputes only that video. Metrics never load models: they ask for a
backbone's output by name (``FeatureRequest``) and reduce it.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.device import autocast, check_precision, resolve_device
from aigve.errors import UsageError
from aigve.types import DeclaredFrames

ExtractorKind = Literal["frames", "clip", "pairs"]
BackboneKind = Literal["frames", "clip", "pairs", "scorer"]


#: the methods that run a backbone's network: each runs under the backbone's precision (``_in_precision``)
_NETWORK_METHODS = ("extract", "extract_many", "extract_windows", "score")


def _in_precision(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(self: Backbone, *args: Any, **kwargs: Any) -> Any:
        with autocast(self.device, self.precision if self.neural else "fp32"):
            return fn(self, *args, **kwargs)

    run._aigve_precision = True  # type: ignore[attr-defined]
    return run


class Backbone(ABC):
    """What every backbone shares: device, batch size, precision, options, one-time loading and an identity.

    ``load()`` is called once before the first use: heavy imports and weight loading go there (not in
    ``__init__``) so that listing metrics stays cheap.

    What a backbone states, and what this base does with it:

    - :attr:`known_options`: the option names it accepts; ``__init__`` rejects any other with one
      :class:`~aigve.errors.UsageError` naming the backbone and the known options (``None``: the backbone
      checks its options itself).
    - :meth:`_load_network`: builds its network and returns ``(network, weights sha256)``; the base
      ``load()`` calls it once (not when a network is already set, e.g. a test's tiny build), keeps the
      network as ``self.model`` (a ``torch.nn.Module`` on the device in eval mode, a model handle as it
      is) and the hash for :meth:`weights_sha256`, which loads on demand. Backbones without weights do not implement it (their hash is None); those that load
      otherwise (through an upstream extractor, several files) override ``load``/``weights_sha256``.

    Precision (``--precision``): every subclass's ``extract``/``extract_many``/``score`` runs under
    :func:`aigve.device.autocast` in :attr:`precision` (set by the engine with :meth:`set_precision`), so no
    backbone handles it itself; backbones without a network (``neural = False``) always run in full
    precision and their identity never names one. A neural backbone's identity names a precision other than
    fp32, so its cache entries and provenance are apart from the fp32 ones.
    """

    name: ClassVar[str]
    kind: ClassVar[BackboneKind] = "frames"
    version: ClassVar[str] = "1"
    extra: ClassVar[str | None] = None  # pip extra providing its dependencies
    #: smallest frame side (pixels) the backbone handles; ``aigve check`` reports frames below it
    min_side: ClassVar[int] = 1
    min_side_reason: ClassVar[str] = ""  # why, in a few words (shown by ``aigve check``)
    #: the option naming this backbone's checkpoint file ("weights"), for backbones whose ``__init__`` takes
    #: it through ``**options``; the engine names ``--backbone-option <name>.weights=PATH`` in weights errors
    weights_option: ClassVar[str | None] = None
    #: the side (pixels) the network resizes every frame to, None if it runs at the native size (classic
    #: extractors, vgg16_meanstd) or reads another backbone's features; the engine warns per video when a
    #: video's shorter frame side is far below it (frames upscaled many times: scores that mean little)
    input_side: ClassVar[int | None] = None
    #: runs a network whose matmuls/convolutions ``--precision`` applies to (False: classic, pixel maths)
    neural: ClassVar[bool] = True
    #: the option names ``__init__`` accepts (any other is a usage error); None: not checked here
    known_options: ClassVar[tuple[str, ...] | None] = None
    precision: str = "fp32"  # per instance: set_precision()
    #: the network :meth:`_load_network` built (None until loaded), and the hash of its weights
    model: Any = None
    _sha256: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _NETWORK_METHODS:
            fn = cls.__dict__.get(name)
            if not callable(fn) or getattr(fn, "__isabstractmethod__", False):
                continue
            if not getattr(fn, "_aigve_precision", False):
                setattr(cls, name, _in_precision(fn))

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        self.check_options(options)
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.options = dict(options)
        self._loaded = False
        self.precision = "fp32"

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """:class:`~aigve.errors.UsageError` for an option not in :attr:`known_options` (``__init__`` calls
        this; a backbone that reads its options before ``Backbone.__init__`` may call it first)."""
        unknown = sorted(set(options) - set(options if cls.known_options is None else cls.known_options))
        if unknown:
            known = ", ".join(cls.known_options or ()) or "none"
            raise UsageError(f"backbone '{cls.name}' has no option(s) {unknown}; known: {known}")

    def set_precision(self, precision: str | None) -> None:
        """``fp32`` (default), ``bf16`` or ``fp16`` for the network's forward passes (no effect on backbones
        with ``neural = False``)."""
        self.precision = check_precision(precision)

    @property
    def effective_precision(self) -> str:
        """The precision the outputs are computed in: :attr:`precision`, or fp32 without a network."""
        return self.precision if self.neural else "fp32"

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        """Load weights / import heavy modules. Idempotent. The default builds the network with
        :meth:`_load_network` (when the backbone has one and no network is set yet)."""
        if self._has_network() and self.model is None:
            model, self._sha256 = self._load_network()
            is_module = isinstance(model, torch.nn.Module)
            self.model = model.to(self.device).eval() if is_module else model
        self._loaded = True

    def _load_network(self) -> tuple[Any, str | None]:
        """Build this backbone's network from its weights: ``(network, sha256 of the weights)``. A
        ``torch.nn.Module`` may be on the CPU: ``load`` moves it to the device and sets eval mode; any other
        network (a model handle) is kept as it is."""
        raise NotImplementedError

    @classmethod
    def _has_network(cls) -> bool:
        return cls._load_network is not Backbone._load_network

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    # -- which frames it reads -------------------------------------------------------------
    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """The rows of its input clip (``num_frames`` sampled frames at ``fps``) this backbone reads, as
        *windows*: each window is the rows one unit of its work reads, in order of the output rows they give
        (an extractor's rows for window ``i`` follow those of window ``i - 1``). A backbone that chooses its
        own frames inside the clip (DOVER's fragments, ViCLIP's 8 middle frames, SimpleVQA's second-long
        clips) declares them here, so that:

        - a streamed video holds only the frames of windows still to run, never the whole clip
          (:mod:`aigve.engine.feed`): memory stays bounded whatever the video's length;
        - it is handed a :class:`~aigve.types.DeclaredFrames` in every run, streamed or not, so a row it
          reads without declaring it fails at once instead of being silently missing from a stream.

        One window (the backbone's whole frame choice) suits a backbone that reads a bounded number of
        frames together; several, one per output row, suit one whose rows come from local groups of frames
        (an extractor only: it then implements :meth:`Extractor.extract_windows`). ``None`` (the default):
        it reads the clip as it is given (per-frame and pair extractors are streamed by their ``kind``).
        May raise :class:`~aigve.errors.MetricInputError` for a clip it cannot handle (too short)."""
        return None

    def windows_per_call(self, height: int, width: int) -> int:
        """How many consecutive windows one call of :meth:`Extractor.extract_windows` takes (its batch)."""
        return 1

    # -- identity --------------------------------------------------------------------------
    def weights_sha256(self) -> str | None:
        """sha256 of the weights in use (None for classic extractors without weights); a backbone with a
        :meth:`_load_network` loads it to know."""
        if self._sha256 is None and self._has_network():
            self.ensure_loaded()
        return self._sha256

    def identity(self) -> dict[str, Any]:
        """Everything that changes the output: part of the cache key and the provenance (the precision
        only when it is not fp32, so fp32 entries keep the keys they always had)."""
        ident = {
            "extractor": self.name,
            "version": self.version,
            "options": {k: self.options[k] for k in sorted(self.options)},
            "weights_sha256": self.weights_sha256(),
        }
        if self.effective_precision != "fp32":
            ident["precision"] = self.effective_precision
        return ident


class Extractor(Backbone):
    """Frames -> features. Subclasses set ``name``/``kind``/``version`` and implement ``extract``."""

    kind: ClassVar[BackboneKind] = "frames"

    # -- work ------------------------------------------------------------------------------
    @abstractmethod
    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """``frames``: uint8 ``[T, H, W, 3]`` RGB -> float ``[K, D]`` features (numpy, on CPU)."""

    def extract_many(self, clips: list[np.ndarray], fps: list[float | None]) -> list[np.ndarray]:
        """Features of several videos at once. The engine calls this for ``kind="clip"`` extractors
        with the clips of several consecutive videos, so one forward pass can serve many; the
        default simply loops over ``extract``. Results must equal ``extract`` on each clip."""
        return [self.extract(c, f) for c, f in zip(clips, fps, strict=True)]

    def extract_windows(self, frames: DeclaredFrames, fps: float | None, lo: int, hi: int) -> np.ndarray:
        """The output rows of windows ``lo .. hi - 1`` of :meth:`frame_windows` (``frames`` holds at least
        their rows). An extractor with several windows implements this and its ``extract`` is
        :func:`run_windows`; the default serves an extractor with one window: its ``extract``."""
        if (lo, hi) != (0, 1):
            raise NotImplementedError(f"{self.name} declares several frame windows but no extract_windows")
        return self.extract(frames, fps)  # type: ignore[arg-type]

    def frames_per_call(self, height: int, width: int) -> int:
        """How many frames of ``height x width`` one forward pass of ``extract`` takes (``batched``'s
        ``batch_size``). The engine's streaming feed hands a long video's frames to ``extract`` in groups of
        this size, the groups ``extract`` forms on the whole clip, so the rows are the same; an extractor
        that chunks otherwise says how here."""
        return self.batch_size

    def batched(self, frames: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Apply ``fn`` to chunks of ``batch_size`` frames and stack the results."""
        outs = [fn(frames[i : i + self.batch_size]) for i in range(0, len(frames), self.batch_size)]
        if not outs:
            raise ValueError("no frames to extract features from")
        return np.concatenate(outs, axis=0)


def checked_frames(name: str, frames: Any, error: type[Exception] = UsageError, min_frames: int = 1) -> Any:
    """``frames`` as an array (or the :class:`DeclaredFrames` view it is, checked without reading a row) if
    they are uint8 ``[T, H, W, 3]`` with at least ``min_frames`` rows; else ``error`` naming ``name``. (Typed
    ``Any``: callers index both kinds alike.)"""
    if not isinstance(frames, DeclaredFrames):
        frames = np.asarray(frames)
    shape = tuple(frames.shape)
    if len(shape) != 4 or shape[-1] != 3 or frames.dtype != np.uint8 or shape[0] < min_frames:
        raise error(f"{name} needs uint8 [T,H,W,3] frames (T >= {min_frames}), got {frames.dtype} {shape}")
    return frames


def window_groups(
    backbone: Backbone, windows: Sequence[Sequence[int]], height: int, width: int
) -> list[range]:
    """``windows`` cut into the consecutive groups one :meth:`Extractor.extract_windows` call takes."""
    step = max(1, int(backbone.windows_per_call(height, width)))
    return [range(lo, min(lo + step, len(windows))) for lo in range(0, len(windows), step)]


def declared(backbone: Backbone, frames: Any, fps: float | None) -> Any:
    """``frames`` as ``backbone`` may read them: a :class:`DeclaredFrames` view of the rows its
    :meth:`Backbone.frame_windows` declare (all windows), or ``frames`` itself when it declares none."""
    windows = backbone.frame_windows(len(frames), fps)
    if windows is None:
        return frames
    return DeclaredFrames.whole(frames, {int(r) for w in windows for r in w}, backbone.name)


def run_windows(extractor: Extractor, frames: Any, fps: float | None) -> np.ndarray:
    """An extractor on a whole clip through its :meth:`Backbone.frame_windows`: each group of windows
    (:meth:`Backbone.windows_per_call`) sees only its declared rows, exactly as a streamed video's feed
    hands them over, and the rows are concatenated in window order. Plain ``extract`` for an extractor
    that declares no windows."""
    windows = extractor.frame_windows(len(frames), fps)
    if windows is None:
        return np.asarray(extractor.extract(frames, fps))
    if not windows:
        raise ValueError(f"{extractor.name}: no frames to extract features from")
    h, w = (int(x) for x in np.shape(frames)[1:3])
    outs = []
    for group in window_groups(extractor, windows, h, w):
        rows = {int(r) for i in group for r in windows[i]}
        view = DeclaredFrames.whole(frames, rows, extractor.name)
        outs.append(np.asarray(extractor.extract_windows(view, fps, group.start, group.stop)))
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)


def extract_stacked_by_shape(
    clips: list[np.ndarray], extract_videos: Callable[[np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """For clip extractors: stack clips of equal shape, run ``extract_videos([B, T, H, W, 3]) -> [B, D]``
    once per shape, and return one ``[1, D]`` row per clip in the input order."""
    out: list[np.ndarray] = [np.empty((0, 0))] * len(clips)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(clips):
        groups.setdefault(tuple(np.shape(c)), []).append(i)
    for idx in groups.values():
        feats = extract_videos(np.stack([np.asarray(clips[i]) for i in idx]))
        for j, i in enumerate(idx):
            out[i] = feats[j : j + 1]
    return out


@dataclass(frozen=True)
class ScorerInput:
    """One video's input to a scorer: ``data`` is uint8 frames ``[T, H, W, 3]`` (``input="frames"``) or the
    upstream extractor's ``[K, D]`` features of them (``input="features"``); ``texts`` maps each text the
    scorer declares (e.g. ``"prompt"``) to the entry's value. ``fps`` is the sampled frames' rate for
    ``input="frames"`` and None for features (they may come from the cache, without decoding)."""

    video_id: str
    data: np.ndarray
    fps: float | None = None
    texts: Mapping[str, str] = field(default_factory=dict)
    #: every upstream's features by input name (:meth:`Scorer.upstreams`); ``data`` is the first one's
    features: Mapping[str, np.ndarray] = field(default_factory=dict)


class Scorer(Backbone):
    """A model stage on (frames or upstream features, texts) of one video -> ``[K, len(columns)]`` floats.

    Subclasses set ``name``/``version``, ``input``, ``texts`` (the entry texts they read), ``columns`` (what
    each output column means) and implement :meth:`score`, batched across videos. For ``input="features"``
    :meth:`upstream` names the extractor (and its options) whose output is read; the engine computes that
    once for every metric that wants it and calls :meth:`bind_upstream` with the built extractor, so a
    scorer can reuse the model the extractor loaded (one CLIP in memory for images and prompts).
    """

    kind: ClassVar[BackboneKind] = "scorer"
    input: ClassVar[Literal["frames", "features"]] = "frames"
    texts: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[str, ...]] = ()

    def upstream(self) -> tuple[str, dict[str, Any]] | None:
        """``(extractor name, extractor options)`` whose features this scorer reads (``input="features"``)."""
        return None

    def upstreams(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Input name -> ``(extractor name, options)`` for scorers that read several extractors' features
        (SimpleVQA's head reads the spatial and the motion branch); default: :meth:`upstream` as ``"features"``."""
        up = self.upstream()
        return {"features": up} if up is not None else {}

    def bind_upstream(self, extractor: Extractor, input_name: str = "features") -> None:
        """Called by the engine before ``load`` with each built upstream extractor (default: kept)."""
        self.upstream_extractors = {**getattr(self, "upstream_extractors", {}), input_name: extractor}
        if input_name == next(iter(self.upstreams()), input_name):
            self.upstream_extractor = extractor

    @abstractmethod
    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        """One ``[K, len(columns)]`` float array per item, in order; must equal scoring each item alone."""

    def details(self, video_id: str) -> dict[str, Any] | None:
        """JSON-able detail of the last :meth:`score` of ``video_id`` (a judge's per-question answers and raw
        replies, or why it failed), kept beside the video's values in the per-video results; None: none."""
        return None

    def usage(self) -> dict[str, Any] | None:
        """What this scorer spent in the run (a judge's requests and tokens), for the provenance; None: n/a."""
        return None

    def absorb_usage(self, spent: dict[str, Any]) -> None:
        """Add what another copy of this scorer spent (a distributed run's worker: the counts of ``usage``) to
        this one's, so the provenance shows the whole run's. No-op for scorers without usage."""

    def column(self, out: np.ndarray, name: str) -> np.ndarray:
        """The column called ``name`` of one ``score`` output (metrics read outputs by name)."""
        return np.asarray(out)[:, self.columns.index(name)]


class SharedModelScorer(Scorer):
    """A scorer that runs on the model its one upstream extractor loaded (image-text scoring: the extractor
    embeds the frames, the scorer the prompt, with the same weights in memory once).

    Subclasses set ``extractor_class``; the scorer takes the extractor's options, reads its features, and
    uses the built extractor the engine binds (or builds one when used on its own). ``handle`` is the
    extractor's loaded model handle; the weights hash is the extractor's.
    """

    input: ClassVar[Literal["frames", "features"]] = "features"
    extractor_class: ClassVar[type[Extractor]]

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        self._extractor: Extractor | None = None
        super().__init__(device, batch_size, **options)

    def upstream(self) -> tuple[str, dict[str, Any]]:
        return self.extractor_class.name, dict(self.options)

    def bind_upstream(self, extractor: Extractor, input_name: str = "features") -> None:
        super().bind_upstream(extractor, input_name)
        if not isinstance(extractor, self.extractor_class):
            raise TypeError(
                f"{self.name} reads the {self.extractor_class.name} extractor, got {type(extractor).__name__}"
            )
        self._extractor = extractor

    def load(self) -> None:
        if self._extractor is None:  # used on its own: build the image side it reads
            self._extractor = self.extractor_class(self.device, self.batch_size, **self.options)
        self._extractor.ensure_loaded()
        self._loaded = True

    @property
    def handle(self) -> Any:
        """The upstream extractor's loaded model handle."""
        self.ensure_loaded()
        assert self._extractor is not None
        return self._extractor.handle  # type: ignore[attr-defined]

    def weights_sha256(self) -> str | None:
        self.ensure_loaded()
        assert self._extractor is not None
        return self._extractor.weights_sha256()


def column(out: np.ndarray, columns: Sequence[str], name: str) -> np.ndarray:
    """Column ``name`` of a scorer output whose columns are ``columns`` (for metrics, which see arrays)."""
    return np.asarray(out)[:, list(columns).index(name)]
