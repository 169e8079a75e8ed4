"""Type checkers see the spec too: a misspelt filter, a wrong type or a missing field fails mypy on the user's line."""

from __future__ import annotations

import textwrap

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = textwrap.dedent(
    """
    from odapi_async import OpenDental

    async def main() -> None:
        async with OpenDental("d", "c") as od:
            appt = await od.appointments.get(1)
            reveal_type(appt.AptDateTime)
            rows = await od.appointments.list(PatNum=48).collect()
            reveal_type(rows)
            od.appointments.list(PatNumber=48)
            od.appointments.list(PatNum="48")
            await od.commlogs.create(PatNum=1)
    """
)


def test_mypy_checks_calls_against_the_spec(tmp_path) -> None:
    source = tmp_path / "user_code.py"
    source.write_text(SNIPPET)
    out, _, status = mypy_api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(source)])
    assert status == 1
    assert 'Revealed type is "datetime.datetime | None"' in out
    assert "list[odapi_async.resources._generated.appointments.Appointment]" in out
    assert 'Unexpected keyword argument "PatNumber"' in out and 'did you mean "PatNum"' in out
    assert 'Argument "PatNum" to "list" of "Appointments" has incompatible type "str"; expected "int"' in out
    assert 'Missing named argument "Note" for "create" of "Commlogs"' in out
    assert out.count("error:") == 3
