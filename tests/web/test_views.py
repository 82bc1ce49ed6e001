"""The page's views without a browser: doctor's checks are reused for a while, not run on every view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_memory.config import Settings
from agent_memory.models import Check
from agent_memory.web import views

pytestmark = pytest.mark.anyio


async def test_doctor_runs_once_per_period_unless_asked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[Settings] = []

    def doctor(settings: Settings, **_: Any) -> list[Check]:
        runs.append(settings)
        return [Check(name="sqlite", status="ok", detail=f"run {len(runs)}")]

    monkeypatch.setattr(views, "doctor", doctor)
    monkeypatch.setattr(views, "_DOCTOR", {})
    settings = Settings(data_dir=tmp_path)
    first, age = await views.doctor_checks(settings)
    assert [c.detail for c in first] == ["run 1"] and age < 5
    assert [c.detail for c in (await views.doctor_checks(settings))[0]] == ["run 1"]
    assert [c.detail for c in (await views.doctor_checks(settings, fresh=True))[0]] == ["run 2"]
    other = Settings(data_dir=tmp_path / "other")
    assert [c.detail for c in (await views.doctor_checks(other))[0]] == ["run 3"]  # per database
    monkeypatch.setattr(views, "DOCTOR_SECONDS", -1.0)  # past the period
    assert [c.detail for c in (await views.doctor_checks(settings))[0]] == ["run 4"]
