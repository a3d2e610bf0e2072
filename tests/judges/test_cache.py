"""The judges' response cache: keys, persistence, concurrent writers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from aigve.judges.cache import ResponseCache, image_digest, request_key


def test_key_uses_image_digests_not_bytes_and_changes_with_every_part() -> None:
    img = np.zeros((4, 5, 3), dtype=np.uint8)
    ident = {"backend": "endpoint", "model": "m", "host": "h:1"}
    msgs = [{"image": image_digest(img)}, {"text": "q"}]
    k = request_key(ident, msgs, {"temperature": 0})
    assert len(k) == 64 and image_digest(img).startswith("sha256:")
    other = img.copy()
    other[0, 0, 0] = 1
    changed = [
        request_key({**ident, "model": "m2"}, msgs, {"temperature": 0}),
        request_key({**ident, "host": "h:2"}, msgs, {"temperature": 0}),
        request_key(ident, [{"image": image_digest(other)}, {"text": "q"}], {"temperature": 0}),
        request_key(
            ident, [{"image": image_digest(img.reshape(5, 4, 3))}, {"text": "q"}], {"temperature": 0}
        ),
        request_key(ident, [msgs[0], {"text": "q2"}], {"temperature": 0}),
        request_key(ident, msgs, {"temperature": 0, "max_tokens": 5}),
    ]
    assert len({k, *changed}) == 7
    assert request_key(dict(reversed(list(ident.items()))), msgs, {"temperature": 0}) == k


def test_persistence_and_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.sqlite"
    cache = ResponseCache(path)
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(50):
                cache.put(f"{t}-{i}", "chat", f"reply {t} {i}", t, i, extra={"p": i / 50})
                assert cache.get(f"{t}-{i}")["text"] == f"reply {t} {i}"  # type: ignore[index]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(cache) == 300
    cache.close()
    again = ResponseCache(path)
    hit = again.get("3-7")
    assert hit == {"text": "reply 3 7", "prompt_tokens": 3, "completion_tokens": 7, "extra": {"p": 7 / 50}}
    assert again.get("missing") is None
    assert again._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
