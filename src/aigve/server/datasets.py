"""From a job's dataset description to an ``aigve.data.Dataset``, with every file held to its roots.

A job names its data in one of two ways (``params["dataset"]``):

- ``{"kind": "upload", "upload_id": ...}``: the videos of an upload. When any file name carries a
  generated-suffix token (``4056_synthetic.mp4``) the folder is paired by suffix, as
  ``aigve prepare`` does (unpaired real videos join the real set); otherwise every video is a
  generated one. The upload's prompts file, if any, sets the prompts.
- ``{"kind": "path", "path": ...}``: a folder, annotation JSON or manifest under a ``--data-root``
  (a plain folder is paired by suffix the same way). Every file the dataset names must resolve
  inside a data root (no symlink or ``..`` escape through an annotation either).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aigve.data.dataset import Dataset, is_video, list_videos
from aigve.data.pairing import DEFAULT_SUFFIXES, split_generated
from aigve.server.security import ApiError, Redactor, check_files_within, resolve_under_roots
from aigve.server.settings import ServerSettings

_ID_DIRS = re.compile(r"(?:upload|job):[0-9a-f]{32}/(?:videos/|out/)?")


#: what the weights folders read as in messages to clients ("put it at <server weights cache>/x.pth")
WEIGHTS_CACHE_TAG = "<server weights cache>"
WEIGHTS_DIR_TAG = "<server $AIGVE_WEIGHTS_DIR>"


def redactor(settings: ServerSettings) -> Redactor:
    """What the API applies to every message and result it returns: upload and job folders vanish
    (file names stay), data roots become ``data:``, the weights folders (``$AIGVE_CACHE_DIR/weights``,
    ``$AIGVE_WEIGHTS_DIR``) a ``<server …>`` placeholder, so a "put the
    file at …" message still says where; other server folders a short tag or nothing."""
    from aigve import weights as W

    pairs: list[tuple[Path | str, str]] = [
        (settings.uploads_dir, "upload:"),
        (settings.jobs_dir, "job:"),
        (W.cache_dir(), f"{WEIGHTS_CACHE_TAG}/"),
    ]
    env_weights = os.environ.get(W.ENV_WEIGHTS_DIR)
    if env_weights:
        pairs.append((Path(env_weights).expanduser(), f"{WEIGHTS_DIR_TAG}/"))
    if settings.cache_dir is not None:
        pairs.append((settings.cache_dir, "cache:"))
    pairs.append((settings.state_dir, "server:"))
    pairs.extend((root, "data:") for root in settings.data_roots)
    # the same folders as the OS may spell them (symlinked /tmp and the like)
    for p, tag in list(pairs):
        if isinstance(p, str) and "://" in p:  # a URL cache: no local spelling
            continue
        rp = Path(p).resolve()
        if str(rp) != str(p):
            pairs.append((rp, tag))
    return Redactor(pairs, [(_ID_DIRS, "")])


def has_suffixed(folder: Path, suffixes: Sequence[str]) -> bool:
    """True when some video in ``folder`` is named like a generated one (``<key>_<suffix>.<ext>``)."""
    return any(split_generated(p.stem, suffixes) is not None for p in list_videos(folder))


def folder_dataset(folder: Path, suffixes: Sequence[str], prompts: Path | None) -> Dataset:
    """A plain folder: paired by suffix when it holds suffixed files, else all generated."""
    from aigve.data.folders import from_folders

    if has_suffixed(folder, suffixes):
        return from_folders(folder, folder, prompts, generated_suffixes=tuple(suffixes))
    return from_folders(folder, None, prompts, generated_suffixes=tuple(suffixes))


def upload_videos_dir(settings: ServerSettings, upload_id: str) -> Path:
    return settings.upload_dir(upload_id) / "videos"


def build_dataset(settings: ServerSettings, spec: dict[str, Any]) -> Dataset:
    """The dataset of a job (raises ``ApiError`` for paths outside the roots, ``AigveError`` otherwise)."""
    suffixes = tuple(spec.get("generated_suffixes") or DEFAULT_SUFFIXES)
    kind = spec.get("kind")
    if kind == "upload":
        updir = settings.upload_dir(str(spec["upload_id"]))
        vdir = updir / "videos"
        if not vdir.is_dir():
            raise ApiError(404, f"upload '{spec['upload_id']}' not found (expired or deleted?)")
        prompts = next((p for p in sorted(updir.glob("prompts.*")) if p.is_file()), None)
        ds = folder_dataset(vdir, suffixes, prompts)
        roots = [updir.resolve()]
    elif kind == "path":
        from aigve.data.load import load_dataset

        target = resolve_under_roots(str(spec["path"]), settings.data_roots, "dataset path")
        prompts = None
        if spec.get("prompts"):
            prompts = resolve_under_roots(str(spec["prompts"]), settings.data_roots, "prompts path")
        if target.is_dir() and not (target / "annotations").is_dir():
            ds = folder_dataset(target, suffixes, prompts)
        elif target.is_file() and is_video(target):
            raise ApiError(
                422, "dataset path: give a folder, an annotation JSON or a manifest, not one video"
            )
        else:
            ds = load_dataset(target, prompts=prompts)
        roots = list(settings.data_roots)
    else:
        raise ApiError(422, "dataset: give an upload_id or a path")
    files: list[Path] = []
    for e in ds.entries:
        files.append(e.generated)
        if e.real is not None:
            files.append(e.real)
    files.extend(ds.extra_reals)
    check_files_within(files, roots)
    return ds
