"""Feeding decoded frames to extractors: a long video streamed through them chunk by chunk, and the frames
of several short videos batched into one forward pass.

**Streaming** (a video whose decoded window would be large, see ``RunConfig.stream_above_mib``): the
video is read as :class:`~aigve.video.FrameStream` chunks and each request gets a *feed* that keeps only
what its extractor still needs, so peak memory does not grow with the video's length:

- ``kind="frames"``: the sampled rows of each chunk are handed to ``extract`` in groups of
  :meth:`~aigve.backbones.base.Extractor.frames_per_call` frames, the groups ``extract`` would form on the
  whole clip, so every forward pass sees the same frames and the rows are the same. Held: one group.
- ``kind="pairs"``: the same, with the last frame of one group carried into the next (an overlap of one
  frame): the pairs are the same. Held: one group plus one frame.
- a backbone that declares its frame windows (:meth:`~aigve.backbones.base.Backbone.frame_windows`: the
  frames it chooses inside the clip, DOVER's fragments, ViCLIP's 8 middle frames, SimpleVQA's one-second
  clips): only the rows of windows not yet run are held, and an extractor runs each group of windows as soon
  as the stream has passed it. Held: one group for local windows, a one-window backbone's whole choice
  (bounded by its own count, not by the video's length).
- other ``kind="clip"`` extractors and scorers that read frames: the sampled frames are kept and handed over
  at the end (a clip model reads its frames together). Held: the sampled rows, at most ``n`` for a sampler
  with ``n`` (FVD's 16 frames).

A sampler's rows may depend on the number of frames (``uniform``), which is known only at the end: the
rows are chosen from what the container declares, and in the rare case the decode disagrees (a cut or
mis-declared file) the video is read a second time with the true count, so the rows are always those of
the whole-window path.

**Across videos**: :func:`extract_frames_across` concatenates the sampled frames of several videos of one
frame size and calls ``extract`` once, so ``--batch-size`` frames fill each forward pass whatever the
videos' lengths; the rows are split back per video.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

from aigve.backbones.base import Backbone, Extractor, window_groups
from aigve.types import DeclaredFrames
from aigve.video.decode import FrameChunk

T = TypeVar("T")


class _Picker:
    """The sampled rows (non-decreasing, repeats allowed) that fall in each chunk, in order."""

    def __init__(self, rows: list[int]) -> None:
        if any(b < a for a, b in zip(rows, rows[1:], strict=False)):
            raise ValueError("a streamed sampler's rows must be in order")
        self.rows = np.asarray(rows, dtype=np.int64)
        self.pos = 0

    def take(self, chunk: FrameChunk) -> np.ndarray:
        """Positions in ``chunk.frames`` of the rows it holds (in order, repeats kept)."""
        end = int(np.searchsorted(self.rows, chunk.stop, side="left"))
        sel = self.rows[self.pos : end] - chunk.start
        self.pos = end
        return sel


class Feed:
    """What one request's extractor gets of a streamed video. ``add`` each chunk, then ``finish``."""

    def __init__(self, extractor: Extractor | None, rows: list[int], fps: float) -> None:
        self.extractor = extractor
        self.rows = rows
        self.fps = fps
        self._picker = _Picker(rows)

    @property
    def used_rows(self) -> list[int]:
        """The rows handed over so far (all of ``rows`` once the stream had them all)."""
        return [int(r) for r in self._picker.rows[: self._picker.pos]]

    def fits(self, rows: list[int]) -> bool:
        """Whether what was handed over is what ``rows`` (the sampler's rows for the length the stream
        turned out to have) would have handed over; if not, the video is read again."""
        return rows == self.used_rows

    def add(self, chunk: FrameChunk) -> None:
        sel = self._picker.take(chunk)
        if sel.size:
            self._add(chunk.frames, sel)

    def _add(self, frames: np.ndarray, sel: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> np.ndarray:
        raise NotImplementedError


class _FramesFeed(Feed):
    """``kind="frames"``: the sampled frames gathered in one buffer of ``frames_per_call`` frames, extracted
    each time it is full (the forward passes ``extract`` makes on the whole clip)."""

    overlap = 0  # frames of one group that start the next

    def __init__(self, extractor: Extractor, rows: list[int], fps: float) -> None:
        super().__init__(extractor, rows, fps)
        self._buf: np.ndarray | None = None
        self._n = 0
        self._out: list[np.ndarray] = []

    def _add(self, frames: np.ndarray, sel: np.ndarray) -> None:
        if self._buf is None:
            assert self.extractor is not None
            group = max(1, int(self.extractor.frames_per_call(*frames.shape[1:3]))) + self.overlap
            self._buf = np.empty((group, *frames.shape[1:]), dtype=frames.dtype)
        for row in sel:
            self._buf[self._n] = frames[row]
            self._n += 1
            if self._n == len(self._buf):
                self._run()

    def _run(self) -> None:
        assert self.extractor is not None and self._buf is not None
        self._out.append(np.asarray(self.extractor.extract(self._buf[: self._n], self.fps)))
        if self.overlap:
            self._buf[: self.overlap] = self._buf[self._n - self.overlap : self._n]
        self._n = self.overlap

    def finish(self) -> np.ndarray:
        if not self._n and not self._out:
            raise ValueError("no frames to extract features from")
        if self._n > self.overlap or not self._out:  # new frames left, or (pairs) a one-frame clip
            self._run()
        self._buf = None
        return self._out[0] if len(self._out) == 1 else np.concatenate(self._out)


class _PairsFeed(_FramesFeed):
    """``kind="pairs"``: groups of ``frames_per_call`` pairs, each group starting at the previous one's last
    frame (one frame of overlap). A single frame in all gives ``extract`` of that frame (no pairs)."""

    overlap = 1


class _KeepFeed(Feed):
    """``kind="clip"`` and frame scorers: the sampled frames, kept until the end."""

    def __init__(self, extractor: Extractor | None, rows: list[int], fps: float) -> None:
        super().__init__(extractor, rows, fps)
        self._kept: list[np.ndarray] = []

    def _add(self, frames: np.ndarray, sel: np.ndarray) -> None:
        self._kept.append(frames[sel])

    def frames(self) -> np.ndarray:
        return self._kept[0] if len(self._kept) == 1 else np.concatenate(self._kept)

    def finish(self) -> np.ndarray:
        frames = self.frames()
        if self.extractor is None:
            return frames
        return np.asarray(self.extractor.extract(frames, self.fps))


class _WindowsFeed(Feed):
    """A backbone that declares its frame windows (:meth:`~aigve.backbones.base.Backbone.frame_windows`): of
    the sampled frames only the rows of windows still to run are held (copied out of the chunk). An extractor
    runs each group of windows (:func:`~aigve.backbones.base.window_groups`, the groups
    :func:`~aigve.backbones.base.run_windows` forms on a whole clip) as soon as the stream has passed the
    group's last row, on a :class:`~aigve.types.DeclaredFrames` of exactly the rows ``run_windows`` would
    give it, so the rows are the same; a scorer gets its declared rows at the end. Held: the rows of the
    groups not yet run that the stream has passed (one group for local windows; a one-window backbone's
    whole choice, e.g. DOVER's 128 frames)."""

    def __init__(self, backbone: Backbone, rows: list[int], fps: float, windows: list[Any]) -> None:
        super().__init__(backbone if isinstance(backbone, Extractor) else None, rows, fps)
        self.backbone = backbone
        self.windows = [tuple(int(r) for r in w) for w in windows]
        self.length = len(rows)
        if not self.windows:
            raise ValueError(f"{backbone.name}: no frames to extract features from")
        self._held: dict[int, np.ndarray] = {}  # sampled position -> its frame
        self._need = {r for w in self.windows for r in w}
        self._groups: list[range] | None = None  # known once a frame's size is (groups may depend on it)
        self._last: dict[int, int] = {}  # sampled position -> the last group that reads it
        self._ends: list[int] = []  # per group: its last row
        self._next = 0
        self._out: list[np.ndarray] = []
        #: most frames held at once (for tests and benchmarks)
        self.peak_held = 0

    def fits(self, rows: list[int]) -> bool:
        # the windows were chosen for the planned length: it must be the true one, not only the rows so far
        return rows == self.rows == self.used_rows

    def add(self, chunk: FrameChunk) -> None:
        first = self._picker.pos
        sel = self._picker.take(chunk)
        if not sel.size:
            return
        if self._groups is None:
            self._plan(*chunk.frames.shape[1:3])
        for j, at in enumerate(sel):
            if first + j in self._need:
                self._held[first + j] = np.array(chunk.frames[at])  # a copy: the chunk is not kept alive
        self.peak_held = max(self.peak_held, len(self._held))
        if self.extractor is not None:
            self._run_ready(first + len(sel))

    def _plan(self, height: int, width: int) -> None:
        self._groups = window_groups(self.backbone, self.windows, int(height), int(width))
        for g, group in enumerate(self._groups):
            rows = [r for i in group for r in self.windows[i]]
            self._ends.append(max(rows))
            for r in rows:
                self._last[r] = g

    def _run_ready(self, passed: int) -> None:
        assert self._groups is not None and self.extractor is not None
        while self._next < len(self._groups) and self._ends[self._next] < passed:
            group = self._groups[self._next]
            rows = sorted({r for i in group for r in self.windows[i]})
            view = DeclaredFrames.kept(
                np.stack([self._held[r] for r in rows]), rows, self.length, self.backbone.name
            )
            self._out.append(
                np.asarray(self.extractor.extract_windows(view, self.fps, group.start, group.stop))
            )
            for r in rows:
                if self._last[r] == self._next:
                    del self._held[r]
            self._next += 1

    def finish(self) -> Any:
        if self.extractor is None:  # a scorer: its declared rows
            rows = sorted(self._held)
            if not rows:
                raise ValueError("no frames to score")
            return DeclaredFrames.kept(
                np.stack([self._held[r] for r in rows]), rows, self.length, self.backbone.name
            )
        self._run_ready(self.length)
        assert self._groups is not None
        if self._next < len(self._groups):
            raise ValueError(f"{self.backbone.name}: the stream ended before its frame windows did")
        return self._out[0] if len(self._out) == 1 else np.concatenate(self._out)


def make_feed(backbone: Backbone, rows: list[int], fps: float) -> Feed:
    """The feed for ``backbone`` on ``rows``: an extractor's by its kind and frame windows; a scorer reading
    frames keeps them (only its declared rows if it declares windows). May raise what ``frame_windows``
    raises for a clip of ``len(rows)`` frames."""
    windows = backbone.frame_windows(len(rows), fps)
    if windows is not None:
        return _WindowsFeed(backbone, rows, fps, windows)
    extractor = backbone if isinstance(backbone, Extractor) else None
    if extractor is None or extractor.kind == "clip":
        return _KeepFeed(extractor, rows, fps)
    if extractor.kind == "pairs":
        return _PairsFeed(extractor, rows, fps)
    return _FramesFeed(extractor, rows, fps)


def extract_frames_across(
    extractor: Extractor, clips: list[np.ndarray], fps: list[float | None]
) -> list[np.ndarray]:
    """One ``kind="frames"`` extractor on the sampled frames of several videos: the frames of videos of one
    size (and frame rate) are concatenated and extracted in one call, whose ``batched`` forward passes are
    then full; returns each video's ``[T_i, D]`` rows, in order."""
    out: list[np.ndarray | None] = [None] * len(clips)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, c in enumerate(clips):
        groups.setdefault((tuple(np.shape(c)[1:]), fps[i]), []).append(i)
    for (_, rate), idx in groups.items():
        block = clips[idx[0]] if len(idx) == 1 else np.concatenate([clips[i] for i in idx])
        feats = np.asarray(extractor.extract(block, rate))
        if feats.ndim != 2 or feats.shape[0] != len(block):
            raise ValueError(f"{extractor.name} returned {feats.shape} rows for {len(block)} frames")
        start = 0
        for i in idx:
            n = len(clips[i])
            out[i] = feats[start : start + n]
            start += n
    return [o for o in out if o is not None]


def prefetched(items: Iterable[T], depth: int, name: str = "aigve-prefetch") -> Iterator[T]:
    """``items`` produced on a background thread, at most ``depth`` ahead of the consumer (0: inline).
    An exception in the producer is raised in the consumer at its position."""
    if depth <= 0:
        yield from items
        return
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))
        finally:
            close: Callable[[], None] | None = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(0.05)
