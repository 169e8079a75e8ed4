"""No silent wrong values on the way out or in (issue 8): NaN, 64-bit range, answers of an unexpected shape,
and the transport log filter's text rule."""

from __future__ import annotations

import decimal
import logging

import pytest

from odapi_async import InvalidParameter
from odapi_async._codec import (
    WireDecodeError,
    decode_dynamic,
    decode_list,
    decode_one,
    query_value,
    wire_value,
)
from odapi_async._util.logfilter import QueryStringFilter, strip_query_strings
from odapi_async.resources._generated.appointments import Appointment


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), -float("inf"), decimal.Decimal("NaN"), decimal.Decimal("-Infinity")],
    ids=repr,
)
def test_not_a_number_is_never_encoded(value) -> None:
    with pytest.raises(InvalidParameter, match="finite"):
        wire_value(value, "float", "PayAmt")
    with pytest.raises(InvalidParameter, match="finite"):
        wire_value({"Splits": [{"SplitAmt": value}]}, "")  # nested, as request(json=...) sends it
    with pytest.raises(InvalidParameter, match="finite"):
        query_value(value, "")


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**70])
def test_integers_past_64_bits_are_never_encoded(value) -> None:
    with pytest.raises(InvalidParameter, match="64-bit"):
        wire_value(value, "int", "PatNum")
    with pytest.raises(InvalidParameter, match="64-bit"):
        query_value([1, value], "")


def test_edges_of_the_range_and_ordinary_values_pass() -> None:
    assert wire_value(2**63 - 1, "int") == 2**63 - 1
    assert wire_value(-(2**63), "int") == -(2**63)
    assert wire_value(12.5, "float") == 12.5
    assert wire_value(True, "bool") == "true"  # a bool is an int, but not a number to range-check


def test_a_list_answered_with_one_object_is_one_row() -> None:
    rows = decode_list(b'{"AptNum": 5, "PatNum": 1}', Appointment)
    assert [(r.AptNum, r.PatNum) for r in rows] == [(5, 1)]
    assert decode_dynamic(b'{"n": 3}') == [{"n": 3}]


def test_one_object_answered_as_a_one_element_list_decodes() -> None:
    assert decode_one(b'[{"AptNum": 5}]', Appointment).AptNum == 5
    with pytest.raises(WireDecodeError, match="array of 2"):
        decode_one(b'[{"AptNum": 5}, {"AptNum": 6}]', Appointment)
    with pytest.raises(WireDecodeError, match="array of 0"):
        decode_one(b"[]", Appointment)


def test_query_strings_are_cut_from_urls_in_text() -> None:
    line = (
        'HTTP Request: GET http://h:30222/api/v1/patients?LName=Smith&Birthdate=1980-02-03 "HTTP/1.1 200 OK"'
    )
    assert strip_query_strings(line) == (
        'HTTP Request: GET http://h:30222/api/v1/patients?[redacted] "HTTP/1.1 200 OK"'
    )
    assert (
        strip_query_strings("GET /api/v1/patients?LName=Smith done") == "GET /api/v1/patients?[redacted] done"
    )
    assert strip_query_strings("What? nothing here") == "What? nothing here"


def test_the_filter_rewrites_arguments_and_keeps_the_record() -> None:
    record = logging.LogRecord(
        "httpx2", logging.INFO, __file__, 1, "HTTP Request: %s %s", ("GET", "http://h/p?FName=Ann"), None
    )
    assert QueryStringFilter().filter(record) is True
    assert record.getMessage() == "HTTP Request: GET http://h/p?[redacted]"


@pytest.mark.parametrize(("kwargs", "name"), [({"Offset": -1}, "Offset"), ({"Limit": 0}, "Limit")])
async def test_paging_arguments_out_of_range_fail_at_the_call(od, mock_api, kwargs, name) -> None:
    with pytest.raises(InvalidParameter, match=name) as caught:
        od.appointments.list(**kwargs)
    assert caught.value.parameter == name
    assert not mock_api.calls


async def test_a_huge_wrong_value_is_not_copied_into_the_message(od, mock_api) -> None:
    with pytest.raises(InvalidParameter) as caught:
        await od.patients.get("x" * 1_000_000)  # type: ignore[arg-type]
    assert len(str(caught.value)) < 300


def test_an_operation_checks_each_number_once_and_still_refuses_a_bad_one(monkeypatch) -> None:
    """``check_arguments`` checks an operation's values; the encoding after it does not check them again."""
    from odapi_async import _codec
    from odapi_async._operation import build_body, build_path, build_query
    from odapi_async.resources._generated.payments import _OP_list, _OP_Partial

    def second_check(value, name=""):
        raise AssertionError(f"{name or 'a value'} was checked a second time")

    monkeypatch.setattr(_codec, "check_sendable", second_check)
    assert build_path(_OP_Partial, {"PayNum": 2**63 - 1}) == f"/payments/{2**63 - 1}/Partial"
    body = build_body(
        _OP_Partial, {"procNumsAndAmounts": [{"ProcNum": 4, "Amount": 1.5}], "PayPlanChargeNum": 7}
    )
    assert body == {"procNumsAndAmounts": [{"ProcNum": 4, "Amount": 1.5}], "PayPlanChargeNum": 7}
    assert build_query(_OP_list, {"PatNum": 12}, paging=True) == {"PatNum": "12"}
    # The one check is still there, with the operation's name in its message.
    with pytest.raises(
        InvalidParameter, match=r"payments\.Partial\(\) parameter 'procNumsAndAmounts' must be a finite"
    ):
        build_body(_OP_Partial, {"procNumsAndAmounts": [{"ProcNum": 4, "Amount": float("nan")}]})
    with pytest.raises(InvalidParameter, match=r"payments\.Partial\(\) parameter 'PayNum' must be within"):
        build_path(_OP_Partial, {"PayNum": 2**63})
    with pytest.raises(InvalidParameter, match=r"payments\.list\(\) parameter 'PatNum' must be within"):
        build_query(_OP_list, {"PatNum": -(2**64)}, paging=True)
