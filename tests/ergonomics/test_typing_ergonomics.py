"""mypy sees enum parameters as Literal (a misspelt value fails) and request(cast_to=...) as the type asked for."""

from __future__ import annotations

import textwrap

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = textwrap.dedent(
    """
    from odapi_async import OpenDental
    from odapi_async.resources import Patient

    async def main(od: OpenDental) -> None:
        od.appointments.list(AptStatus="Scheduled")
        od.appointments.list(AptStatus="Sheduled")
        one = await od.request("GET", "/patients/1", cast_to=Patient)
        many = await od.request("GET", "/patients", cast_to=list[Patient])
        anything = await od.request("GET", "/patients/1")
        raw = await od.with_raw_response.request("GET", "/patients/1")
        first = await od.appointments.list().first()
        reveal_type(one)
        reveal_type(many)
        reveal_type(anything)
        reveal_type(raw.status_code)
        reveal_type(first)
    """
)


@pytest.mark.slow("runs mypy on a user's file (17 s under load)")
def test_mypy_rejects_a_misspelt_enum_and_types_cast_to(tmp_path) -> None:
    source = tmp_path / "user_code.py"
    source.write_text(SNIPPET)
    out, _, status = mypy_api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(source)])
    assert status == 1
    assert out.count("error:") == 1, out
    assert (
        'Argument "AptStatus" to "list" of "Appointments" has incompatible type "Literal[\'Sheduled\']"'
        in out
    )
    assert 'Revealed type is "odapi_async.resources._generated.patients.Patient"' in out
    assert 'Revealed type is "list[odapi_async.resources._generated.patients.Patient]"' in out
    assert 'Revealed type is "Any"' in out
    assert 'Revealed type is "int"' in out
    assert 'Revealed type is "odapi_async.resources._generated.appointments.Appointment | None"' in out
