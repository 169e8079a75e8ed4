"""Keys never reach a message, a chained exception, or a traceback shown with its local variables."""

from __future__ import annotations

import traceback

import httpcore2
import httpx
import httpx2
import pytest

from odapi_async import ConfigurationError, OpenDental, TransportError, Unauthorized
from support import CUST_KEY, DEV_KEY


def everything_printed(exc: BaseException) -> str:
    """What a crash reporter could show: messages, reprs, the chain, and every frame's locals.

    The first frame (the test's own, whose locals hold the keys on purpose) is left out.
    """
    parts = [str(exc), repr(exc)]
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None
    parts += traceback.TracebackException(type(exc), exc, tb, capture_locals=True).format(chain=True)
    link: BaseException | None = exc
    while link is not None:
        parts += [str(link), repr(link), repr(vars(link))]
        link = link.__cause__ or link.__context__
    return "".join(parts)


def assert_no_key(text: str) -> None:
    assert DEV_KEY not in text and CUST_KEY not in text


def test_key_with_characters_a_header_cannot_carry_is_refused_unquoted() -> None:
    for bad in (f"{DEV_KEY}\x00x", f"{DEV_KEY} x", f"{DEV_KEY}é"):
        with pytest.raises(ConfigurationError, match="characters an HTTP header cannot carry") as err:
            OpenDental(bad, CUST_KEY)
        assert_no_key(everything_printed(err.value))


def test_surrounding_whitespace_of_a_key_is_dropped(monkeypatch) -> None:
    # A key read from a file or a CRLF .env keeps its line end; h11 would refuse the header, quoting the key.
    monkeypatch.setenv("ODAPI_CUSTOMER_KEY", CUST_KEY + "\r\n")
    od = OpenDental(DEV_KEY + "\n")
    assert od._core.auth.reveal() == f"ODFHIR {DEV_KEY}/{CUST_KEY}"


def test_construction_error_traceback_locals_hold_no_key() -> None:
    with pytest.raises(ConfigurationError) as err:
        OpenDental(DEV_KEY, CUST_KEY, modes=("cloud",))  # type: ignore[arg-type]
    assert_no_key(everything_printed(err.value))


async def test_transport_error_quoting_the_header_leaks_nothing(od, mock_api) -> None:
    # h11 quotes an illegal header value whole; any network error text is scrubbed, and the httpx2
    # exception (its request holds the header, its frames hold it in locals) is not chained as is.
    quoted = f"Illegal header value b'ODFHIR {DEV_KEY}/{CUST_KEY}\\n'"
    mock_api.get("/patients/1").mock(side_effect=httpcore2.LocalProtocolError(quoted))
    with pytest.raises(TransportError) as err:
        await od.patients.get(1)
    exc = err.value
    text = everything_printed(exc)
    assert "Illegal header value" in text  # the check looks at real output
    assert_no_key(text)
    assert isinstance(exc.__cause__, httpx2.LocalProtocolError)  # the cause's type survives for callers
    assert exc.__cause__.__traceback__ is None and exc.__context__ is None


async def test_status_error_traceback_locals_hold_no_key(od, mock_api) -> None:
    mock_api.get("/patients/1").mock(return_value=httpx.Response(401, text="Invalid customer key."))
    with pytest.raises(Unauthorized) as err:
        await od.patients.get(1)
    text = everything_printed(err.value)
    assert "core = " in text and "auth='***'" in text  # the session frame's locals were rendered
    assert_no_key(text)


async def test_server_text_echoing_a_key_is_scrubbed(od, mock_api) -> None:
    mock_api.get("/patients/1").mock(
        return_value=httpx.Response(
            401, text=f"Customer key {CUST_KEY} is not valid for developer {DEV_KEY}."
        )
    )
    with pytest.raises(Unauthorized) as err:
        await od.patients.get(1)
    assert err.value.explanation == "Customer key *** is not valid for developer ***."
    assert_no_key(everything_printed(err.value))
