"""Fixtures for tests/video (helpers live in video_media.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.video.video_media import Media


@pytest.fixture
def media(tmp_path: Path) -> Media:
    """Writers for good and bad test videos under this test's tmp_path."""
    return Media(tmp_path)
