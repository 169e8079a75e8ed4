"""Type checkers see the spec too: a misspelt filter, a wrong type or a missing field fails mypy on the user's line.

The async session and the blocking one (``odapi_async.blocking``) are checked in one mypy run (it is slow).
"""

from __future__ import annotations

import textwrap

import pytest

mypy_api = pytest.importorskip("mypy.api")

ASYNC_SNIPPET = textwrap.dedent(
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

BLOCKING_SNIPPET = textwrap.dedent(
    """
    from odapi_async.blocking import BlockingPaginator, OpenDental
    from odapi_async.events import SubscriptionSpec
    from odapi_async.resources import Appointment, Commlog, Patient, PatientsSimpleRow

    def main(specs: list[SubscriptionSpec]) -> None:
        with OpenDental("d", "c") as od:
            patient: Patient = od.patients.get(1)
            reveal_type(od.patients.get(1))
            listing: BlockingPaginator[Appointment] = od.appointments.list(PatNum=48)
            reveal_type(listing.collect())
            reveal_type(listing.first())
            reveal_type(listing.take(5))
            for appt in listing:
                reveal_type(appt.AptDateTime)
            for page in od.patients.Simple().pages():
                reveal_type(page)
            note: Commlog = od.commlogs.update(3, Note="called back")
            reveal_type(od.subscriptions.ensure(specs, prune=False))
            reveal_type(od.allergies.delete(1))
            wrong: PatientsSimpleRow = od.patients.get(1)
            od.patients.get("1")
            od.appointments.list(PatNumber=48)
            od.commlogs.create(PatNum=1)
            od.subscriptions.ensure(specs, prune="no")
    """
)


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory) -> dict[str, list[str]]:
    """mypy --strict's lines on each snippet, by snippet name."""
    folder = tmp_path_factory.mktemp("typing")
    (folder / "async_user.py").write_text(ASYNC_SNIPPET)
    (folder / "blocking_user.py").write_text(BLOCKING_SNIPPET)
    out, _, status = mypy_api.run(
        [
            "--strict",
            "--cache-dir",
            str(folder / "cache"),
            str(folder / "async_user.py"),
            str(folder / "blocking_user.py"),
        ]
    )
    assert status == 1, out
    lines: dict[str, list[str]] = {"async_user": [], "blocking_user": []}
    for line in out.splitlines():
        for name, found in lines.items():
            if f"{name}.py:" in line:
                found.append(line)
    return lines


@pytest.mark.slow("the module's mypy run is set up with the first test (11 s under load)")
def test_mypy_checks_calls_against_the_spec(mypy_output) -> None:
    out = "\n".join(mypy_output["async_user"])
    assert 'Revealed type is "datetime.datetime | None"' in out
    assert "list[odapi_async.resources._generated.appointments.Appointment]" in out
    assert 'Unexpected keyword argument "PatNumber"' in out and 'did you mean "PatNum"' in out
    assert 'Argument "PatNum" to "list" of "Appointments" has incompatible type "str"; expected "int"' in out
    assert 'Missing named argument "Note" for "create" of "Commlogs"' in out
    assert out.count("error:") == 3


def revealed(lines: list[str], line_no: int) -> str:
    """The type mypy revealed on a line of the blocking snippet."""
    for line in lines:
        if f"blocking_user.py:{line_no}: note: Revealed type is " in line:
            return line.split("Revealed type is ", 1)[1].strip('"')
    raise AssertionError(f"nothing revealed on line {line_no}:\n" + "\n".join(lines))


@pytest.mark.slow("the module's mypy run is set up here when run alone (11 s under load)")
def test_blocking_calls_are_typed_per_resource(mypy_output) -> None:
    lines = mypy_output["blocking_user"]
    source = BLOCKING_SNIPPET.splitlines()

    def at(text: str) -> int:  # the 1-based line of the snippet that holds text
        return next(i for i, line in enumerate(source, 1) if text in line)

    gen = "odapi_async.resources._generated"
    assert revealed(lines, at("reveal_type(od.patients.get(1))")) == f"{gen}.patients.Patient"
    assert revealed(lines, at("listing.collect()")) == f"list[{gen}.appointments.Appointment]"
    assert revealed(lines, at("listing.first()")) == f"{gen}.appointments.Appointment | None"
    assert revealed(lines, at("listing.take(5)")) == (
        f"odapi_async._blocking_loop.BlockingPaginator[{gen}.appointments.Appointment]"
    )
    assert revealed(lines, at("appt.AptDateTime")) == "datetime.datetime | None"
    assert revealed(lines, at("reveal_type(page)")) == f"list[{gen}.patients.PatientsSimpleRow]"
    assert revealed(lines, at("subscriptions.ensure(specs, prune=False)")) == (
        "odapi_async.resources._subscriptions.EnsureResult"
    )
    assert revealed(lines, at("allergies.delete(1)")) == "None"

    errors = [line for line in lines if ": error: " in line]
    expected = {
        at("wrong: PatientsSimpleRow"): 'Incompatible types in assignment (expression has type "Patient", '
        'variable has type "PatientsSimpleRow")',
        at('od.patients.get("1")'): 'Argument 1 to "get" of "BlockingPatients" has incompatible type "str"; '
        'expected "int"',
        at("PatNumber=48"): 'Unexpected keyword argument "PatNumber" for "list" of "BlockingAppointments"; '
        'did you mean "PatNum"?',
        at(
            "od.commlogs.create(PatNum=1)"
        ): 'Missing named argument "Note" for "create" of "BlockingCommlogs"',
        at(
            'prune="no"'
        ): 'Argument "prune" to "ensure" of "BlockingSubscriptionsExtras" has incompatible type "str"; '
        'expected "bool"',
    }
    for line_no, message in expected.items():
        assert any(f"blocking_user.py:{line_no}: error: {message}" in line for line in errors), (
            f"line {line_no}: {message}\n" + "\n".join(lines)
        )
    assert len(errors) == len(expected), "\n".join(errors)


# ----------------------------------------------------------------------------------------------------
# Folded in from tests/ergonomics/test_typing_ergonomics.py: mypy sees enum parameters as Literal (a misspelt value fails) and request(cast_to=...) as the type asked for.


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
