"""Every registered backbone's ``identity()`` (part of every cache key) is the same dict it always was.

``identities.json`` is a snapshot of each backbone's identity with default options, taken before the
backbone boilerplate moved into :class:`aigve.backbones.base.Backbone`; the weights hash is left out (it
needs the real checkpoint), so nothing is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aigve.backbones.registry import build_extractor, get_extractor_class, known_extractors
from aigve.errors import UsageError

SNAPSHOT = json.loads((Path(__file__).with_name("identities.json")).read_text())


def test_every_backbone_is_in_the_snapshot() -> None:
    # the package's own backbones (tests register stand-ins of their own)
    builtin = [n for n in known_extractors() if get_extractor_class(n).__module__.startswith("aigve.")]
    assert sorted(SNAPSHOT) == sorted(builtin)


@pytest.mark.parametrize("name", sorted(SNAPSHOT))
def test_identity_unchanged(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_extractor_class(name), "weights_sha256", lambda self: "not loaded")
    ident: dict[str, Any] = build_extractor(name).identity()
    assert ident.pop("weights_sha256") == "not loaded"
    assert json.loads(json.dumps(ident, default=str)) == SNAPSHOT[name]


@pytest.mark.parametrize(
    "name", [n for n in sorted(SNAPSHOT) if get_extractor_class(n).known_options is not None]
)
def test_unknown_option_is_one_usage_error(name: str) -> None:
    """Every backbone that declares its options rejects another with the same message (Backbone.__init__)."""
    known = get_extractor_class(name).known_options
    assert known is not None
    with pytest.raises(UsageError) as err:
        build_extractor(name, not_an_option=1)
    assert str(err.value) == (
        f"backbone '{name}' has no option(s) ['not_an_option']; known: {', '.join(known) or 'none'}"
    )
