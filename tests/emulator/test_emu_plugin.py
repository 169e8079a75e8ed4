"""The pytest plugin's fixtures (skipped unless odapi_async is installed: the plugin is a pytest11 entry point)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


async def test_od_session_fixture(od_session, od_emulator):
    await od_session.patients.create(LName="Plugin", FName="Pat", Birthdate="1990-01-02")
    names = [p.LName async for p in od_session.patients.list(LName="Plugin")]
    assert names == ["Plugin"]
    assert od_emulator.stats()["listeners"]["local"]["requests"] >= 2
