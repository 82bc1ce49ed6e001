"""Screenshots go to docs/ui only when asked, so a test run leaves the tree clean."""

from __future__ import annotations

import pytest

from tests.web.conftest import DOCS_SHOTS, UPDATE_SHOTS, shots_dir


def test_screenshots_go_to_a_temp_dir_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UPDATE_SHOTS, raising=False)
    assert shots_dir() != DOCS_SHOTS
    assert DOCS_SHOTS not in shots_dir().parents
    monkeypatch.setenv(UPDATE_SHOTS, "0")
    assert shots_dir() != DOCS_SHOTS
    monkeypatch.setenv(UPDATE_SHOTS, "1")
    assert shots_dir() == DOCS_SHOTS
