"""Wire forms of Decimal, floats, nested objects, and the request() escape hatch's query and errors."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from odapi_async import DecodeError
from odapi_async._codec import encode_body, query_value, wire_value


def test_decimal_goes_out_as_a_json_number() -> None:
    assert json.loads(encode_body({"AdjAmt": wire_value(Decimal("25.10"), "float")})) == {"AdjAmt": 25.1}
    assert encode_body({"AdjAmt": Decimal("25.10")}) == b'{"AdjAmt":25.10}'


def test_numbers_in_a_query_are_positional() -> None:
    assert query_value(Decimal("1E+2"), "float") == "100"
    assert query_value(Decimal("0.50"), "float") == "0.50"
    assert query_value(0.00001, "float") == "0.00001"
    assert query_value(12.5, "float") == "12.5"
    assert query_value([Decimal("1E+1"), 2], "list") == "10,2"


def test_objects_inside_lists_get_wire_values() -> None:
    # payments.Partial takes a list of objects; their booleans and dates follow the wire rules too.
    import datetime as dt

    got = wire_value([{"ProcNum": 4, "IsOk": True, "Day": dt.date(2024, 1, 2)}], "list")
    assert got == [{"ProcNum": 4, "IsOk": "true", "Day": "2024-01-02"}]


async def test_create_sends_decimal_amount_as_number(od, mock_api) -> None:
    route = mock_api.post("/adjustments").mock(return_value=httpx.Response(201, json={"AdjNum": 3}))
    await od.adjustments.create(PatNum=1, AdjType=2, AdjAmt=Decimal("12.34"), AdjDate="2024-01-02")
    assert b'"AdjAmt":12.34' in route.calls.last.request.content


async def test_request_keeps_a_query_string_written_in_the_path(od, mock_api) -> None:
    route = mock_api.get("/patients/Simple").mock(return_value=httpx.Response(200, json=[]))
    await od.request("GET", "patients/Simple?LName=Smith&FName=", params={"Limit": 5})
    params = route.calls.last.request.url.params
    assert params["LName"] == "Smith" and params["FName"] == "" and params["Limit"] == "5"


async def test_request_raises_decode_error_on_a_non_json_answer(od, mock_api) -> None:
    mock_api.get("/odd").mock(return_value=httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(DecodeError) as err:
        await od.request("GET", "/odd")
    assert err.value.path == "/odd" and "proxy login" in err.value.snippet
