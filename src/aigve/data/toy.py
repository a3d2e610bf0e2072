"""The ``toy`` dataset: the original AIGVE toy set (11 LaVie videos of one beach prompt in 11 styles,
512x512, 16 frames at 8 fps; MIT License, from the public AIGVE_Tool repository).

Where the files come from, in order:

1. ``$AIGVE_TOY_DIR`` — a local copy (``annotations/evaluate.json`` + ``evaluate/*.mp4``); used as is;
2. the cache, ``<cache>/datasets/toy`` (``$AIGVE_CACHE_DIR`` or ``~/.cache/aigve``);
3. a download of the missing files into the cache from the upstream raw URLs
   (``https://raw.githubusercontent.com/ShaneXiangH/AIGVE_Tool/<commit>/aigve/data/toy/<file>``, base
   overridable with ``$AIGVE_TOY_BASE_URL``).

Every file's sha256 is checked against ``TOY_FILES`` (a local copy too); any mismatch is an error naming the
file. Downloads go to a temporary file in the cache folder and are renamed into place once verified.

Note: in this set ``video_path_gt`` names the same file as ``video_path_pd`` (there are no separate real
videos), so distribution metrics compare the set with itself; and the upstream prompt of the "pixel art"
entry ends with the file name ("...pixel art-0.mp4") — kept as shipped.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from aigve.data.annotation import read_annotation
from aigve.data.dataset import Dataset
from aigve.errors import DatasetError
from aigve.fsutil import as_if_opened
from aigve.paths import file_sha256

TOY_REPO = "ShaneXiangH/AIGVE_Tool"
TOY_COMMIT = "8916406b8783030c1e7145279eebdc4cf29264c4"
TOY_UPSTREAM_DIR = "aigve/data/toy"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{TOY_REPO}/{TOY_COMMIT}/{TOY_UPSTREAM_DIR}"
ENV_DIR = "AIGVE_TOY_DIR"
ENV_BASE_URL = "AIGVE_TOY_BASE_URL"

# relative path inside the toy folder -> sha256 (from the upstream commit above)
TOY_FILES: dict[str, str] = {
    "annotations/evaluate.json": ("735a10bde5893a477682bc5a9e2c131d09a90bdd71f360fdff7ceced3ec9ffc6"),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand by Hokusai, in the style of Ukiyo-0.mp4": (
        "e06a3d3d814548065e2f9e28b3d1510423a32662a1ccaf06be9fe761e0920d36"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, Claude Monet style-0.mp4": (
        "768bf930b60551a621cde0e7e142eafdb125e033fead559bc0857e7e993bd5d2"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, Van Gogh style-0.mp4": (
        "1f404eba495c83ee0e49cf733b6aa37e898346be25584d7362ea411a2f672078"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, animated style-0.mp4": (
        "28d4c14cfa27aaf1f308177d88793696e577e9901c8b6e4e332a70d5bf82d2ad"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, black and white-0.mp4": (
        "0d20ff5c08dd7b3703691c69913513bd4947899b87fd933e1ea1364110eae410"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, chalk drawing-0.mp4": (
        "caaaa32cdc04ed8508d15a7c2e24005f087d78205b965bde3cea27067d9ca2d5"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, in cyberpunk style-0.mp4": (
        "36468921eb8e93c9a30d757826cb14682d6239912a62f34431e06db2c829f433"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, oil painting-0.mp4": (
        "84aeaaf2dfd9343488e1d203951aae8bf4e8da689746ba0648c34328e013e9bf"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, pixel art-0.mp4": (
        "5b902d77eb51a6592f8a9b7bea816e594aa7d840779fcc9fe338cf87b99dee25"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, surrealism style-0.mp4": (
        "67671f0f05d9662aca20e36024d9e79e27bcf8bcef1b5fa3ae93968470d87f63"
    ),
    "evaluate/A beautiful coastal beach in spring, waves lapping on sand, watercolor painting-0.mp4": (
        "9891869cc52b7b24eebd2db61ccb6b5fe67fe26b32451f9814a600696efb8055"
    ),
}


def toy_base_url() -> str:
    """Base URL the toy files are downloaded from (``$AIGVE_TOY_BASE_URL`` or the upstream commit)."""
    return (os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")


def file_url(base_url: str, rel: str) -> str:
    """``base_url/<rel>`` with every path segment URL-quoted (names contain spaces and commas)."""
    return base_url.rstrip("/") + "/" + urllib.parse.quote(rel, safe="/")


def _problems(root: Path, files: Mapping[str, str]) -> dict[str, str]:
    """Files of ``files`` missing under ``root`` or with a wrong sha256 -> reason."""
    out: dict[str, str] = {}
    for rel, want in files.items():
        p = root / rel
        if not p.is_file():
            out[rel] = "missing"
            continue
        got = file_sha256(p)
        if got != want:
            out[rel] = f"sha256 mismatch (expected {want}, got {got})"
    return out


def verify_toy_dir(root: str | Path, files: Mapping[str, str] = TOY_FILES) -> Path:
    """Check a local toy copy: every file present with the right sha256, else ``DatasetError``."""
    root = Path(root)
    bad = _problems(root, files)
    if bad:
        lines = "\n".join(f"  {root / rel}: {why}" for rel, why in sorted(bad.items()))
        raise DatasetError(
            f"toy dataset copy at {root} is not the upstream one:\n{lines}\n"
            f"restore those files (from {TOY_REPO} commit {TOY_COMMIT}, folder {TOY_UPSTREAM_DIR}) "
            f"or unset {ENV_DIR} to download them"
        )
    return root


def _download(url: str, dest: Path, want: str, timeout: float) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name[:40]}.", suffix=".part", dir=dest.parent)
    as_if_opened(fd)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        req = urllib.request.Request(url, headers={"User-Agent": "aigve"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                h.update(block)
                out.write(block)
        got = h.hexdigest()
        if got != want:
            raise DatasetError(f"sha256 mismatch (expected {want}, got {got})")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_toy(
    cache_dir: str | Path | None = None,
    *,
    timeout: float = 30.0,
    files: Mapping[str, str] = TOY_FILES,
) -> Path:
    """The folder holding a verified toy copy (see the module docstring for where it comes from).

    Raises ``DatasetError`` naming every file that is missing, corrupt or could not be fetched.
    """
    local = os.environ.get(ENV_DIR)
    if local:
        return verify_toy_dir(Path(local).expanduser(), files)
    from aigve.data.builtin import datasets_cache_dir

    root = datasets_cache_dir(cache_dir) / "toy"
    todo = _problems(root, files)
    if not todo:
        return root
    base = toy_base_url()
    failed: dict[str, str] = {}
    for rel in sorted(todo):
        url = file_url(base, rel)
        try:
            _download(url, root / rel, files[rel], timeout)
        except DatasetError as exc:
            failed[rel] = f"{url}: {exc}"
        except urllib.error.HTTPError as exc:
            failed[rel] = f"{url}: HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            failed[rel] = f"{url}: {exc.reason}"
        except (OSError, TimeoutError) as exc:
            failed[rel] = f"{url}: {exc}"
    if failed:
        lines = "\n".join(f"  {rel} — {why}" for rel, why in sorted(failed.items()))
        raise DatasetError(
            f"could not fetch {len(failed)} of {len(files)} toy dataset file(s) into {root}:\n{lines}\n"
            f"check the network, or set {ENV_DIR} to a local copy (a folder with annotations/evaluate.json "
            "and evaluate/*.mp4)"
        )
    return root


def load_toy(cache_dir: str | Path | None = None, *, timeout: float = 30.0) -> Dataset:
    """The toy dataset (fetched and verified by ``ensure_toy``)."""
    root = ensure_toy(cache_dir, timeout=timeout)
    ds = read_annotation(root / "annotations" / "evaluate.json", root / "evaluate")
    ds.name = "toy"
    ds.source = f"builtin:toy:{root}"
    ds.metainfo = {
        **ds.metainfo,
        "name": "toy",
        "upstream": f"https://github.com/{TOY_REPO}/tree/{TOY_COMMIT}/{TOY_UPSTREAM_DIR}",
        "license": "MIT (AIGVE_Tool)",
        "note": "video_path_gt names the same file as video_path_pd: no separate real videos",
    }
    return ds
