"""Files of a built-in dataset fetched over HTTP(S) (or ``file://``), resumably, and verified.

A :class:`RemoteManifest` lists each file's path, size (when known) and git blob SHA-1 — the id git gives a
file's content (``sha1(b"blob <size>\\0" + bytes)``), read from the upstream repository's tree, so the
hash of every file of a public git repository is known without downloading it.

A download goes to ``<file>.part`` beside its destination and asks the server for the missing tail
(``Range: bytes=<have>-``) when a part is already there, so an interrupted fetch continues where it
stopped; a server that ignores the range sends the whole file again, which is then written from the start.
The finished part is hashed and renamed into place only when it matches; a corrupt one is removed and named
in the error with the expected and actual hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigve.errors import DatasetError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its path inside the dataset folder, size in bytes (None when the upstream
    tree did not say) and git blob SHA-1."""

    path: str
    git_sha1: str
    size: int | None = None


@dataclass(frozen=True)
class RemoteManifest:
    """A dataset's files and where they come from (``base_url/<path>``)."""

    name: str
    base_url: str
    files: tuple[RemoteFile, ...]
    license: str = ""
    source: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def known_size(self) -> int:
        """Sum of the sizes the manifest records (files without a size count 0)."""
        return sum(f.size or 0 for f in self.files)

    @property
    def sizes_complete(self) -> bool:
        return all(f.size is not None for f in self.files)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RemoteManifest:
        return cls(
            name=d["name"],
            base_url=d["base_url"],
            files=tuple(RemoteFile(f["path"], f["git_blob_sha1"], f.get("size")) for f in d["files"]),
            license=d.get("license", ""),
            source=d.get("source", ""),
            notes=d.get("notes", ""),
            extra={
                k: v
                for k, v in d.items()
                if k not in {"name", "base_url", "files", "license", "source", "notes"}
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> RemoteManifest:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base_url": self.base_url,
            "license": self.license,
            "source": self.source,
            "notes": self.notes,
            **self.extra,
            "files": [{"path": f.path, "size": f.size, "git_blob_sha1": f.git_sha1} for f in self.files],
        }


def git_blob_sha1(path: str | Path) -> str:
    """git's object id of a file's content: SHA-1 of ``b"blob <size>\\0"`` followed by the bytes."""
    p = Path(path)
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\0" % p.stat().st_size)
    with open(p, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def file_url(base_url: str, rel: str) -> str:
    """``base_url/<rel>`` with each path segment URL-quoted."""
    return base_url.rstrip("/") + "/" + urllib.parse.quote(rel, safe="/")


def problems(root: Path, files: Iterable[RemoteFile], *, check_hash: bool = True) -> dict[str, str]:
    """Files missing under ``root`` or not matching the manifest (size, then git blob SHA-1) -> reason."""
    out: dict[str, str] = {}
    for f in files:
        p = root / f.path
        if not p.is_file():
            out[f.path] = "missing"
            continue
        size = p.stat().st_size
        if f.size is not None and size != f.size:
            out[f.path] = f"size {size} bytes, expected {f.size}"
            continue
        if check_hash:
            got = git_blob_sha1(p)
            if got != f.git_sha1:
                out[f.path] = f"git blob SHA-1 {got}, expected {f.git_sha1}"
    return out


ProgressFn = Callable[[str, int, int | None], None]


def download_file(
    url: str,
    dest: Path,
    f: RemoteFile,
    *,
    timeout: float = 60.0,
    progress: ProgressFn | None = None,
) -> None:
    """Fetch ``url`` into ``dest`` through ``dest.part`` (continuing a part left by an earlier attempt),
    verify it against ``f`` and rename it into place. ``DatasetError`` for a corrupt file (the part is
    removed, so the next attempt starts afresh); network errors propagate (the part is kept for resuming).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if f.size is not None and have > f.size:  # not a prefix of this file
        part.unlink()
        have = 0
    if f.size is None or have < f.size:
        headers = {"User-Agent": "aigve"}
        if have:
            headers["Range"] = f"bytes={have}-"
        req = urllib.request.Request(url, headers=headers)
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not have:  # 416: nothing left to send; the part is verified below
                raise
            resp = None
        if resp is not None:
            with resp:
                status = getattr(resp, "status", None) or 200
                mode = "ab" if have and status == 206 else "wb"
                done = have if mode == "ab" else 0
                with open(part, mode) as out:
                    while block := resp.read(_CHUNK):
                        out.write(block)
                        done += len(block)
                        if f.size is not None and done > f.size:
                            break
                        if progress is not None:
                            progress(f.path, done, f.size)
                    out.flush()
                    os.fsync(out.fileno())
    got_size = part.stat().st_size
    got = git_blob_sha1(part)
    if got != f.git_sha1 or (f.size is not None and got_size != f.size):
        part.unlink(missing_ok=True)
        size_note = (
            f", {got_size} bytes (expected {f.size})" if f.size is not None and got_size != f.size else ""
        )
        raise DatasetError(
            f"{url}: downloaded file is corrupt — git blob SHA-1 {got}, expected {f.git_sha1}{size_note}; "
            "the partial file was removed, run the command again to download it afresh"
        )
    os.replace(part, dest)


def ensure_files(
    manifest: RemoteManifest,
    root: Path,
    base_url: str | None = None,
    *,
    timeout: float = 60.0,
    progress: ProgressFn | None = None,
    offline_fix: str = "",
) -> Path:
    """Make ``root`` hold every file of ``manifest``, verified: download what is missing or wrong from
    ``base_url`` (default the manifest's), resuming partial downloads. ``DatasetError`` naming every file
    that could not be fetched, with ``offline_fix`` (what to download and where to put it)."""
    base = (base_url or manifest.base_url).rstrip("/")
    todo = problems(root, manifest.files)
    if not todo:
        return root
    failed: dict[str, str] = {}
    by_path = {f.path: f for f in manifest.files}
    for rel in sorted(todo):
        f = by_path[rel]
        url = file_url(base, rel)
        try:
            download_file(url, root / rel, f, timeout=timeout, progress=progress)
        except DatasetError as exc:
            failed[rel] = str(exc)
        except urllib.error.HTTPError as exc:
            failed[rel] = f"{url}: HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            failed[rel] = f"{url}: {exc.reason}"
        except (OSError, TimeoutError, ValueError) as exc:
            failed[rel] = f"{url}: {exc}"
    if failed:
        lines = "\n".join(f"  {rel} — {why}" for rel, why in sorted(failed.items()))
        raise DatasetError(
            f"could not fetch {len(failed)} of {len(manifest.files)} file(s) of {manifest.name} into {root}:\n"
            f"{lines}\n{offline_fix}".rstrip()
        )
    return root
