"""Honest answers over real sockets (issue 8): a hand-written misbehaving server and the emulator.

Huge error pages, empty 200s, lists answered with one object, pages echoing the request headers, NaN and 2**70
refused before sending, and no query string (patient names) in the transport's log records.
"""

from __future__ import annotations

import logging
import traceback

import pytest
from emulators import emulator_fixture

import odapi_async
from odapi_async import DecodeError, Hub, InvalidParameter, OpenDental, ServerError
from odapi_async._util.logfilter import QueryStringFilter
from odapi_async.emulator import Emulator
from rogue import Request, RogueServer, answer, json_answer
from support import CUST_KEY, DEV_KEY

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")

EMU_DEV = "dev-hardening"
EMU_KEYS = {"cust-h": "full"}


def against(server: RogueServer) -> OpenDental:
    return OpenDental(
        DEV_KEY, CUST_KEY, endpoints={"local": server.url}, modes=("local",), max_retries=0, hub=Hub()
    )


emu = emulator_fixture(seed=11, patients=60, developer_key=EMU_DEV, customer_keys=EMU_KEYS)


def emulated(emu: Emulator) -> OpenDental:
    return OpenDental(EMU_DEV, "cust-h", endpoints=emu.endpoints, modes=("local",), hub=Hub())


def served(emu: Emulator) -> int:
    return int(emu.stats()["listeners"]["local"]["requests"])


# --------------------------------------------------------------------------------- a misbehaving server


@module_loop
async def test_a_200_kb_error_page_is_quoted_not_copied() -> None:
    page = "<html><body>" + "<p>Bad gateway, details follow</p>" * 6000 + "</body></html>"
    async with RogueServer(lambda r: answer(502, page, "text/html")) as server:
        async with against(server) as od:
            with pytest.raises(ServerError) as caught:
                await od.patients.get(1)
    assert len(page) > 200_000
    assert len(str(caught.value)) < 2300
    assert caught.value.explanation == page  # the whole page stays on the exception


@module_loop
async def test_an_empty_200_is_not_a_row_nor_the_end_of_a_stream() -> None:
    async with RogueServer(lambda r: answer(200, b"")) as server:
        async with against(server) as od:
            with pytest.raises(DecodeError, match="empty body"):
                await od.patients.get(1)
            with pytest.raises(DecodeError, match="empty body"):
                await od.appointments.list().collect()


@module_loop
async def test_a_list_answered_with_one_object_yields_one_row() -> None:
    provider = {"ProvNum": 3, "Abbr": "DOC1", "LName": "Lee", "IsHidden": "false"}
    async with RogueServer(lambda r: json_answer(provider)) as server:
        async with against(server) as od:
            rows = await od.providers.list().collect()
    assert [(p.ProvNum, p.Abbr) for p in rows] == [(3, "DOC1")]
    assert len(server.requests) == 1  # one row, short of any cap: no further page asked


@module_loop
async def test_a_get_answered_with_a_one_element_list_decodes() -> None:
    async with RogueServer(lambda r: json_answer([{"PatNum": 7, "LName": "Ng"}])) as server:
        async with against(server) as od:
            patient = await od.patients.get(7)
    assert (patient.PatNum, patient.LName) == (7, "Ng")


def echo_headers(request: Request) -> bytes:
    lines = "".join(f"<li>{name}: {value}</li>" for name, value in request.headers.items())
    return answer(200, f"<html><h1>Debug</h1><ul>{lines}</ul></html>", "text/html")


@module_loop
async def test_a_page_echoing_the_headers_leaves_no_key_in_the_error() -> None:
    async with RogueServer(echo_headers) as server:
        async with against(server) as od:
            with pytest.raises(DecodeError) as caught:
                await od.patients.get(1)
            with pytest.raises(DecodeError) as through_request:
                await od.request("GET", "/patients/1")
    assert "ODFHIR" in server.requests[0].headers["authorization"]  # the echo did carry the key
    error = caught.value
    # What a traceback shown with its locals prints for the SDK's own frames (this test's frame holds the
    # server, which recorded the keys it was sent).
    sdk_frames = [
        f for f, _ in traceback.walk_tb(error.__traceback__) if "odapi_async" in f.f_code.co_filename
    ]
    assert sdk_frames
    shown = " ".join(repr(value) for frame in sdk_frames for value in frame.f_locals.values())
    for text in (str(error), repr(error), error.snippet, error.body, shown, str(through_request.value)):
        assert "s3cr3t" not in text
    assert "ODFHIR ***" in error.body


def sdk_locals(error: BaseException) -> str:
    """What a traceback shown with its locals prints for the SDK's own frames."""
    frames = [f for f, _ in traceback.walk_tb(error.__traceback__) if "odapi_async" in f.f_code.co_filename]
    assert frames
    return " ".join(repr(value) for frame in frames for value in frame.f_locals.values())


@module_loop
async def test_request_traceback_locals_hold_no_echoed_key() -> None:
    async with RogueServer(echo_headers) as server:
        async with against(server) as od:
            with pytest.raises(DecodeError) as caught:
                await od.request("GET", "/patients/1")
    assert "s3cr3t" not in sdk_locals(caught.value)


# ----------------------------------------------------------------------------------------- the emulator


@module_loop
async def test_nan_and_infinities_are_refused_before_sending(emu) -> None:
    before = served(emu)
    async with emulated(emu) as od:
        with pytest.raises(InvalidParameter, match="PayAmt.*finite"):
            await od.payments.create(PatNum=1, PayAmt=float("nan"), PayDate="2024-01-02")
        with pytest.raises(InvalidParameter, match="finite"):
            await od.request("POST", "/payments", json={"PatNum": 1, "PayAmt": float("inf")})
        assert (await od.patients.get(1)).PatNum == 1  # the session is fine; the check is per value
    assert served(emu) == before + 1  # only the get reached the server


@module_loop
async def test_ids_past_64_bits_are_refused_before_sending(emu) -> None:
    before = served(emu)
    async with emulated(emu) as od:
        with pytest.raises(InvalidParameter, match="PatNum.*64-bit"):
            await od.patients.get(2**70)
        with pytest.raises(InvalidParameter, match="64-bit"):
            od.appointments.list(PatNum=2**63)
        with pytest.raises(InvalidParameter, match="64-bit"):
            await od.request("GET", "/patients", params={"PatNum": -(2**64)})
    assert served(emu) == before


@module_loop
async def test_patient_names_stay_out_of_the_transport_logs(emu, caplog) -> None:
    assert any(isinstance(f, QueryStringFilter) for f in logging.getLogger("httpx2").filters)
    async with emulated(emu) as od:
        with (
            caplog.at_level(logging.DEBUG, logger="httpx2"),
            caplog.at_level(logging.DEBUG, logger="httpcore2"),
        ):
            await od.patients.list(LName="Zebulonski", Birthdate="1980-02-03", Limit=5).first_page()
        redacted = caplog.text
        caplog.clear()
        odapi_async.redact_transport_logs(False)  # documented way to keep full URLs
        try:
            with caplog.at_level(logging.INFO, logger="httpx2"):
                await od.patients.list(LName="Zebulonski", Limit=5).first_page()
        finally:
            odapi_async.redact_transport_logs(True)
        kept = caplog.text
    assert "HTTP Request: GET" in redacted and "/patients?[redacted]" in redacted
    assert "Zebulonski" not in redacted and "1980-02-03" not in redacted
    assert "Zebulonski" in kept  # the same records carry the name when the filter is off


@module_loop
async def test_untyped_answers_get_the_same_shape_repairs() -> None:
    # deposits has no documented answer model: rows arrive as plain dicts.
    async with RogueServer(lambda r: json_answer({"DepositNum": 4, "Amount": 12.5})) as server:
        async with against(server) as od:
            assert await od.deposits.list().collect() == [{"DepositNum": 4, "Amount": 12.5}]
    async with RogueServer(lambda r: json_answer([{"DepositNum": 4}])) as server:
        async with against(server) as od:
            assert await od.deposits.get(4) == {"DepositNum": 4}
