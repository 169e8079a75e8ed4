"""Each wire rule of ARCHITECTURE.md, on the decode and the encode side."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import msgspec
import pytest

from odapi_async import BodyTooLarge, DecodeError, InvalidParameter
from odapi_async._codec import MAX_BODY_CHARS, Model, WireDecodeError, decode_list, decode_one, wire_value
from odapi_async.resources import Appointment, Patient, Payment

APPT = {
    "serverDateTime": "2021-05-04 09:32:45",
    "AptNum": 4,
    "PatNum": 20,
    "AptStatus": "Scheduled",
    "Confirmed": 19,
    "confirmed": "Not Called",
    "TimeLocked": "false",
    "IsNewPatient": "True",
    "AptDateTime": "2020-07-31 09:00:00",
    "DateTimeArrived": "0001-01-01 00:00:00",
    "provAbbr": "DOC2",
}


def encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_string_booleans_both_spellings() -> None:
    row = decode_one(encode(APPT), Appointment)
    assert row.TimeLocked is False
    assert row.IsNewPatient is True


def test_dates_and_datetimes() -> None:
    row = decode_one(encode(APPT), Appointment)
    assert row.AptDateTime == dt.datetime(2020, 7, 31, 9, 0)
    assert row.serverDateTime == dt.datetime(2021, 5, 4, 9, 32, 45)
    pat = decode_one(encode({"PatNum": 1, "Birthdate": "1976-05-24"}), Patient)
    assert pat.Birthdate == dt.date(1976, 5, 24)


def test_min_date_means_none() -> None:
    row = decode_one(encode(APPT), Appointment)
    assert row.DateTimeArrived is None
    pat = decode_one(encode({"PatNum": 1, "Birthdate": "0001-01-01"}), Patient)
    assert pat.Birthdate is None
    rows = decode_list(encode([APPT, {**APPT, "DateTimeArrived": "2020-07-31 09:05:00"}]), Appointment)
    assert [r.DateTimeArrived for r in rows] == [None, dt.datetime(2020, 7, 31, 9, 5)]


def test_min_date_rule_touches_date_fields_only() -> None:
    # Text that happens to read "0001-01-01" is text: only fields typed date/datetime become None.
    rows = decode_list(
        encode(
            [
                {
                    **APPT,
                    "Note": "0001-01-01",
                    "ProcDescript": "0001-01-01 00:00:00",
                    "DateTimeSeated": "0001-01-01",
                },
                {
                    **APPT,
                    "AptNum": 5,
                    "DateTimeArrived": "0001-01-01 00:00:01",
                    "SecDateTEntry": "0001-01-02 00:00:00",
                },
            ]
        ),
        Appointment,
    )
    assert rows[0].Note == "0001-01-01" and rows[0].ProcDescript == "0001-01-01 00:00:00"
    assert (
        rows[0].DateTimeArrived is None and rows[0].DateTimeSeated is None
    )  # a bare date in a datetime field too
    assert rows[1].DateTimeArrived == dt.datetime(1, 1, 1, 0, 0, 1)  # only the exact sentinel means "none"
    assert rows[1].SecDateTEntry == dt.datetime(1, 1, 2)
    pat = decode_one(encode({"PatNum": 1, "Birthdate": "0001-01-01 00:00:00", "Zip": "0001-01-01"}), Patient)
    assert pat.Birthdate is None and pat.Zip == "0001-01-01"


def test_min_date_sentinel_built_in_python_is_kept() -> None:
    # The rule is a wire rule: a model built in Python (or converted outside our decoders) keeps what it was given.
    sentinel = dt.datetime(1, 1, 1)
    assert Appointment(DateTimeArrived=sentinel).DateTimeArrived == sentinel
    assert msgspec.convert({"DateTimeArrived": sentinel}, Appointment).DateTimeArrived == sentinel
    with pytest.raises(WireDecodeError):
        decode_list(b"[{", Appointment)  # a decode that fails midway leaves the rule switched off
    assert Appointment(DateTimeArrived=sentinel).DateTimeArrived == sentinel
    assert decode_one(encode(APPT), Appointment).DateTimeArrived is None


def test_the_rule_is_on_only_in_the_thread_that_decodes() -> None:
    import threading

    from odapi_async._codec import _wire_rules

    sentinel = dt.datetime(1, 1, 1)
    built = []
    with _wire_rules():  # as while a page decodes in this thread
        assert Appointment(DateTimeArrived=sentinel).DateTimeArrived is None
        other = threading.Thread(target=lambda: built.append(Appointment(DateTimeArrived=sentinel)))
        other.start()
        other.join(10)
    assert [row.DateTimeArrived for row in built] == [sentinel]  # another thread building a model meanwhile
    assert Appointment(DateTimeArrived=sentinel).DateTimeArrived == sentinel


Inner: Any = msgspec.defstruct("Inner", [("When", dt.date | None, None), ("Text", str, "")], bases=(Model,))
Outer: Any = msgspec.defstruct(
    "Outer",
    [
        ("Day", dt.date | None, None),
        ("Stamp", dt.datetime | None, None),
        ("Items", list[Inner], []),
        ("Days", list[dt.date], []),
    ],
    bases=(Model,),
)


def test_min_date_rule_in_nested_models_and_lists() -> None:
    raw = encode(
        [
            {
                "Day": "0001-01-01",
                "Stamp": "0001-01-01 00:00:00",
                "Items": [{"When": "0001-01-01", "Text": "0001-01-01"}, {"When": "2024-02-29"}],
                "Days": ["0001-01-01", "2024-02-29"],
            }
        ]
    )
    (row,) = decode_list(raw, Outer)
    assert row.Day is None and row.Stamp is None
    assert [(i.When, i.Text) for i in row.Items] == [(None, "0001-01-01"), (dt.date(2024, 2, 29), "")]
    # Only fields typed date/datetime read the sentinel as "none": a list of dates keeps its items as sent.
    assert row.Days == [dt.date(1, 1, 1), dt.date(2024, 2, 29)]
    assert decode_one(encode({"Items": [{"When": "0001-01-01"}]}), Outer).Items[0].When is None


def test_a_model_s_own_post_init_still_runs() -> None:
    seen = []
    Mine: Any = msgspec.defstruct(
        "Mine",
        [("Day", dt.date | None, None)],
        bases=(Model,),
        namespace={"__post_init__": lambda self: seen.append(self.Day)},
    )
    assert decode_one(encode({"Day": "0001-01-01"}), Mine).Day is None
    assert Mine(Day=dt.date(1, 1, 1)).Day == dt.date(1, 1, 1)
    assert seen == [None, dt.date(1, 1, 1)]  # after the rule when decoding; alone when built in Python
    # Inherited: by a subclass with more date fields, and by a date model under a base without dates.
    More: Any = msgspec.defstruct("More", [("Stamp", dt.datetime | None, None)], bases=(Mine,))
    row = decode_one(encode({"Day": "0001-01-01", "Stamp": "0001-01-01 00:00:00"}), More)
    assert (row.Day, row.Stamp) == (None, None) and seen[-1] is None
    Plain: Any = msgspec.defstruct(
        "Plain",
        [("N", int, 0)],
        bases=(Model,),
        namespace={"__post_init__": lambda self: seen.append(self.N)},
    )
    Dated: Any = msgspec.defstruct("Dated", [("Day", dt.date | None, None)], bases=(Plain,))
    assert decode_one(encode({"N": 7, "Day": "0001-01-01"}), Dated).Day is None and seen[-1] == 7


def test_unknown_enum_value_is_kept_as_text() -> None:
    row = decode_one(encode({**APPT, "AptStatus": "SomethingNew"}), Appointment)
    assert row.AptStatus == "SomethingNew"


def test_unknown_fields_are_tolerated() -> None:
    row = decode_one(encode({**APPT, "BrandNewField": {"x": 1}}), Appointment)
    assert row.AptNum == 4


def test_numbers_sent_as_strings() -> None:
    pay = decode_one(encode({"PayNum": "12", "PayAmt": "339.50"}), Payment)
    assert pay.PayNum == 12 and pay.PayAmt == 339.5
    pay = decode_one(encode({"PayNum": 12, "PayAmt": 339.5}), Payment)
    assert pay.PayAmt == 339.5


def test_number_where_text_expected_is_read_as_text() -> None:
    # The docs' own example sends a ZIP code as a bare number.
    pat = decode_one(encode({"PatNum": 16, "Zip": 90011, "Birthdate": "0001-01-01"}), Patient)
    assert pat.Zip == "90011" and pat.Birthdate is None


def test_unreadable_answer_raises_decode_error_with_snippet() -> None:
    with pytest.raises(WireDecodeError):
        decode_list(b"<html>Service Unavailable</html>", Appointment)
    with pytest.raises(WireDecodeError):
        decode_one(encode({"AptNum": "not-a-number"}), Appointment)


def test_wire_values() -> None:
    assert wire_value(True, "bool") == "true"
    assert wire_value(False, "bool") == "false"
    assert wire_value(dt.date(2024, 1, 2), "date") == "2024-01-02"
    assert wire_value(dt.datetime(2024, 1, 2, 3, 4, 5), "datetime") == "2024-01-02 03:04:05"
    assert wire_value(dt.date(2024, 1, 2), "datetime") == "2024-01-02 00:00:00"
    assert wire_value(None, "date") == "0001-01-01"
    assert wire_value(None, "datetime") == "0001-01-01 00:00:00"


async def test_query_params_are_wire_encoded(od, mock_api) -> None:
    route = mock_api.get("/appointments").mock(return_value=httpx.Response(200, json=[]))
    await od.appointments.list(PatNum=48, DateTStamp=dt.datetime(2024, 1, 2, 3, 4, 5)).collect()
    params = route.calls.last.request.url.params
    assert params["PatNum"] == "48"
    assert params["DateTStamp"] == "2024-01-02 03:04:05"
    assert "DateTimeFormatString" not in params and "DateFormatString" not in params


async def test_put_sends_only_set_fields_and_no_derived(od, mock_api) -> None:
    route = mock_api.put("/appointments/18").mock(return_value=httpx.Response(200, json=APPT))
    await od.appointments.update(18, Note="hello", IsHygiene=True, provAbbr="X", confirmed="Called")
    body = json.loads(route.calls.last.request.content)
    assert body == {"Note": "hello", "IsHygiene": "true"}
    headers = route.calls.last.request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"].startswith("ODFHIR ")


async def test_body_too_large_is_refused_before_sending(od, mock_api) -> None:
    route = mock_api.post("/commlogs").mock(return_value=httpx.Response(201, json={}))
    with pytest.raises(BodyTooLarge, match="at most 16,777,216"):
        await od.commlogs.create(PatNum=1, Note="x" * (MAX_BODY_CHARS + 1))
    assert route.call_count == 0


async def test_unknown_filter_name_lists_the_valid_ones(od, mock_api) -> None:
    route = mock_api.get("/appointments").mock(return_value=httpx.Response(200, json=[]))
    with pytest.raises(InvalidParameter) as err:
        od.appointments.list(PatNumber=48)
    assert "'PatNumber'" in str(err.value) and "PatNum" in str(err.value) and "DateTStamp" in str(err.value)
    assert err.value.parameter == "PatNumber"
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"PatNum": "48"}, "'PatNum' must be int"),
        ({"PatNum": True}, "'PatNum' must be int"),
        ({"DateTStamp": "yesterday"}, "'DateTStamp' must be a naive datetime"),
        ({"AptStatus": "Sheduled"}, "must be one of"),
    ],
)
async def test_wrong_filter_type_or_value(od, mock_api, kwargs, fragment) -> None:
    route = mock_api.get("/appointments").mock(return_value=httpx.Response(200, json=[]))
    with pytest.raises(InvalidParameter, match=fragment):
        od.appointments.list(**kwargs)
    assert route.call_count == 0


async def test_missing_required_body_parameter(od, mock_api) -> None:
    with pytest.raises(InvalidParameter, match="missing required"):
        await od.claimpayments.Batch()


async def test_body_unknown_field(od, mock_api) -> None:
    with pytest.raises(InvalidParameter, match="unknown body parameter 'Nite'"):
        await od.appointments.update(18, Nite="typo")


async def test_decode_error_from_session_has_context(od, mock_api) -> None:
    mock_api.get("/appointments/4").mock(return_value=httpx.Response(200, text="<html>oops</html>"))
    with pytest.raises(DecodeError) as err:
        await od.appointments.get(4)
    assert err.value.snippet.startswith("<html>")
    assert err.value.path == "/appointments/4"


async def test_aware_datetime_is_refused(od, mock_api) -> None:
    route = mock_api.get("/appointments").mock(return_value=httpx.Response(200, json=[]))
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    with pytest.raises(InvalidParameter, match="naive datetime"):
        od.appointments.list(DateTStamp=aware)
    assert route.call_count == 0


def test_int_enum_for_a_number_travels_as_its_number() -> None:
    import enum

    class Clinic(enum.IntEnum):
        MAIN = 3

    assert wire_value(Clinic.MAIN, "int") == 3
    assert wire_value(Clinic.MAIN, "enum") == "MAIN"


async def test_query_values_are_percent_encoded(od, mock_api) -> None:
    route = mock_api.get("/patients").mock(return_value=httpx.Response(200, json=[]))
    await od.patients.list(LName="O'Brien & Sons+1 /x", Limit=5).first_page()
    request = route.calls.last.request
    assert request.url.params["LName"] == "O'Brien & Sons+1 /x"
    raw = request.url.raw_path.decode()
    assert "%26" in raw and "%2B" in raw and "%20" in raw and " " not in raw
