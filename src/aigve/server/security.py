"""Security helpers: token check, paths held to the data roots, upload names and content, redaction.

Nothing here imports FastAPI at module level except the ASGI body-size middleware, so the path and
redaction rules can be tested on their own.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

# ---------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answered with ``status`` and a message that is safe to show (no paths, no traces)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


# ---------------------------------------------------------------------------- token


def check_authorization(header: str | None, token: str | None) -> bool:
    """True when ``header`` carries ``token``: ``Bearer <token>``, or HTTP Basic with the token as the
    password (any user name), which is what a URL ``http://user:<token>@host`` or ``~/.netrc`` makes
    ``requests`` send — so clients that cannot set a header (the original ``call_aigve_api.py``) work."""
    if not token or not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "bearer":
        return hmac.compare_digest(value.encode(), token.encode())
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        _, sep, password = decoded.partition(":")
        return bool(sep) and hmac.compare_digest(password.encode(), token.encode())
    return False


# ---------------------------------------------------------------------------- paths


def _has_dotdot(raw: str) -> bool:
    parts = re.split(r"[\\/]+", raw)
    return any(p == ".." for p in parts)


def resolve_under_roots(raw: str, roots: Sequence[Path], what: str = "path") -> Path:
    """Resolve a client-given path against the data roots.

    A relative path is taken under each root in turn (the first that exists wins); an absolute one must
    lie inside a root. ``..`` components are refused outright, and the fully resolved path (symlinks
    followed) must still be inside the root, so a symlink cannot escape. Raises ``ApiError`` 403/404/422
    whose message never shows the server's folders.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(422, f"{what}: empty path")
    if "\x00" in raw or len(raw) > 4096:
        raise ApiError(422, f"{what}: invalid path")
    if _has_dotdot(raw):
        raise ApiError(422, f"{what}: '..' is not allowed in paths")
    if not roots:
        raise ApiError(
            403,
            f"{what}: this server accepts no server-side paths (it has no --data-root); upload the videos",
        )
    p = Path(raw)
    candidates: list[tuple[Path, Path]] = []
    if p.is_absolute():
        for root in roots:
            try:
                rel = Path(os.path.normpath(p)).relative_to(root)
            except ValueError:
                continue
            candidates.append((root, root / rel))
        if not candidates:
            raise ApiError(
                403, f"{what}: outside the server's data roots; give a path relative to a data root"
            )
    else:
        candidates = [(root, root / p) for root in roots]
    for root, cand in candidates:
        if not cand.exists() and not cand.is_symlink():
            continue
        real = cand.resolve()
        if not is_within(real, root):
            raise ApiError(403, f"{what}: resolves outside the server's data roots (symlink?)")
        return real
    raise ApiError(404, f"{what}: '{_display(raw)}' not found under the data roots")


def is_within(path: Path, root: Path) -> bool:
    """``path`` (already resolved) is ``root`` or inside it."""
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def check_files_within(paths: Iterable[Path], roots: Sequence[Path], what: str = "dataset") -> None:
    """Every file a dataset names, symlinks resolved, must be inside one of ``roots`` (403 otherwise)."""
    for p in paths:
        real = Path(p).resolve()
        if not any(is_within(real, r) for r in roots):
            raise ApiError(
                403, f"{what}: '{Path(p).name}' resolves outside the server's data roots; move it inside one"
            )


def _display(raw: str) -> str:
    s = "".join(ch for ch in raw if ch.isprintable())
    return s if len(s) <= 200 else s[:200] + "…"


# ---------------------------------------------------------------------------- upload names and content

_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def safe_filename(name: str | None) -> str:
    """The base name of an uploaded file, refused (422) when empty, hidden, too long or odd."""
    if not name:
        raise ApiError(422, "an uploaded file has no file name")
    base = PureWindowsPath(PurePosixPath(name).name).name.strip()
    if base in ("", ".", "..") or base.startswith(".") or _BAD_NAME.search(base):
        raise ApiError(422, f"upload '{_display(name)}': not an acceptable file name")
    if len(base.encode()) > 200:
        raise ApiError(422, f"upload '{_display(name)[:60]}…': file name longer than 200 bytes")
    return base


# container -> extension used when the file is stored
CONTAINER_EXT = {
    "mp4": ".mp4",
    "mov": ".mov",
    "matroska": ".mkv",
    "webm": ".webm",
    "avi": ".avi",
    "gif": ".gif",
}
_EXT_CONTAINER = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".gif": "gif",
}
_ISO_ATOMS = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}


def sniff_container(head: bytes) -> str | None:
    """The container a file's first bytes announce (``mp4``, ``mov``, ``matroska``/``webm``, ``avi``,
    ``gif``), or ``None``. Extensions are not trusted: this is what decides whether a file is a video."""
    if len(head) >= 12 and head[4:8] in _ISO_ATOMS:
        if head[4:8] == b"ftyp" and head[8:10] == b"qt":
            return "mov"
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head[:64] else "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def stored_name(filename: str, container: str) -> str:
    """Keep the client's stem; keep its extension when it agrees with the sniffed container, else use
    the container's own (pairing works on stems, so this never breaks a pair)."""
    p = Path(filename)
    ext = p.suffix.lower()
    if _EXT_CONTAINER.get(ext) == container or (container == "matroska" and ext == ".webm"):
        return p.name
    if container == "webm" and ext == ".mkv":
        return p.name
    return p.stem + CONTAINER_EXT[container]


# ---------------------------------------------------------------------------- redaction

_ABS_PATH = re.compile(r"(?<![\w.:/-])/(?:[^/\s\"'<>]+/)+")
_TRACE = re.compile(r"Traceback \(most recent call last\):.*", re.DOTALL)


class Redactor:
    """Removes server folders from text shown to clients.

    Known folders become short tags (a data root -> ``data:``, a job folder -> nothing, the state
    folder -> ``server:``, the weights cache -> ``<server weights cache>``), so a message still says
    where on the server a file belongs; what follows a tag stays (it is relative to that folder). Any
    other absolute directory prefix is dropped (file names are kept).
    """

    def __init__(
        self,
        replacements: Sequence[tuple[Path | str, str]],
        patterns: Sequence[tuple[re.Pattern[str], str]] = (),
    ) -> None:
        self._patterns = list(patterns)
        pairs: list[tuple[str, str]] = []
        for path, tag in replacements:
            s = str(path).rstrip("/")
            if s:
                pairs.append((s + "/", tag))
                pairs.append((s, tag.rstrip("/") or "."))
        self._pairs = sorted(pairs, key=lambda t: len(t[0]), reverse=True)
        self._tags = tuple(sorted({t for _, t in pairs if t and t != "."}, key=len, reverse=True))

    def text(self, s: str) -> str:
        for src, dst in self._pairs:
            s = s.replace(src, dst)
        for pat, dst in self._patterns:
            s = pat.sub(dst, s)
        s = _TRACE.sub("(details in the server log)", s)

        def drop(m: re.Match[str]) -> str:
            # "<server weights cache>/hf/x/": the folders after a tag are relative to it, keep them
            return m.group(0) if self._tags and s.endswith(self._tags, 0, m.start()) else ""

        return _ABS_PATH.sub(drop, s)

    def deep(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {k: self.deep(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.deep(v) for v in obj]
        return obj


# ---------------------------------------------------------------------------- request size (ASGI)


def _body_too_large(limit: int) -> Exception:
    """An HTTPException (413): FastAPI re-raises those from body parsing instead of turning them into 400."""
    from starlette.exceptions import HTTPException

    return HTTPException(413, f"request body larger than the server's limit ({limit} bytes)")


class BodyLimitMiddleware:
    """Answers 413 as soon as a request body exceeds ``limit`` bytes (Content-Length or streamed),
    before it is parsed or written anywhere."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    if int(v) > self.limit:
                        await _send_413(send, self.limit)
                        return
                except ValueError:
                    await _send_json(send, 400, {"detail": "invalid Content-Length"})
                    return
        seen = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _body_too_large(self.limit)
            return msg

        async def tracking_send(msg: dict[str, Any]) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 413 and not started:
                await _send_413(send, self.limit)
                return
            raise


async def _send_413(send: Any, limit: int) -> None:
    await _send_json(send, 413, {"detail": f"request body larger than the server's limit ({limit} bytes)"})


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    import json

    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
