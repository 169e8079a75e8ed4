"""Errors that travel and stay readable: pickling, quoting limits, key scrubbing (issue 8)."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest

import odapi_async
from odapi_async import (
    APIStatusError,
    DecodeError,
    OpenDentalError,
    PaginationError,
    ResponseTooLarge,
    ServerError,
)
from odapi_async._exceptions import QUOTE_LIMIT
from odapi_async._util.redact import MASK, scrub, scrub_authorization

REQUEST: dict[str, Any] = {"method": "GET", "path": "/patients/1", "mode": "local"}

ERROR_CLASSES = sorted(
    (obj for obj in vars(odapi_async).values() if inspect.isclass(obj) and issubclass(obj, OpenDentalError)),
    key=lambda cls: cls.__name__,
)


def sample(cls: type[OpenDentalError]) -> OpenDentalError:
    """One instance of ``cls``, made through whichever constructor its family has."""
    if issubclass(cls, APIStatusError):
        extra: dict[str, Any] = {"retry_after": 2.5} if cls.__name__ == "Throttled" else {}
        return cls(status_code=502, explanation="Bad gateway", **REQUEST, **extra)
    build: Any = cls  # the constructors differ by family: each attempt below fits one
    attempts = [
        lambda: build("boom", **REQUEST, body=b'{"x": 1}'),  # DecodeError
        lambda: build(limit=10, received=11, **REQUEST),  # ResponseTooLarge
        lambda: build("boom", operation="appointments.list", offset=99, limit=100),  # PaginationError
        lambda: build("boom", operation="patients.get", parameter="PatNum", valid=("PatNum",)),
        lambda: build("boom", **REQUEST),  # request errors
        lambda: build("boom"),
        lambda: build(5, 4),  # BodyTooLarge
    ]
    for make in attempts:
        try:
            return make()
        except TypeError:
            continue
    raise AssertionError(f"no known constructor for {cls.__name__}: add one to sample()")


def test_every_error_class_is_exported_and_covered() -> None:
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"PaginationError", "ResponseTooLarge", "DecodeError", "Throttled", "ConnectError"} <= names
    assert len(ERROR_CLASSES) >= 17


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_pickles_with_its_attributes(cls: type[OpenDentalError]) -> None:
    error = sample(cls)
    if any("__init__" in vars(k) for k in cls.__mro__ if issubclass(k, OpenDentalError)):
        assert vars(error), f"{cls.__name__} carries no attributes: the test would prove nothing"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert repr(copy) == repr(error)
    assert vars(copy) == vars(error)
    assert copy.args == error.args


def test_new_error_fields() -> None:
    too_large = ResponseTooLarge(limit=64 * 2**20, received=64 * 2**20 + 1, **REQUEST)
    assert (too_large.limit, too_large.received, too_large.method, too_large.path, too_large.mode) == (
        67_108_864,
        67_108_865,
        "GET",
        "/patients/1",
        "local",
    )
    assert "67,108,864" in str(too_large)
    paging = PaginationError("same page", operation="appointments.list", offset=99, limit=100)
    assert (paging.operation, paging.offset, paging.limit) == ("appointments.list", 99, 100)


def test_messages_quote_at_most_2_kb_and_keep_the_whole_text() -> None:
    page = "<html>" + "x" * 200_000 + "</html>"
    error = ServerError(status_code=502, explanation=page, **REQUEST)
    assert len(str(error)) < QUOTE_LIMIT + 200
    assert "more characters" in str(error)
    assert error.explanation == page  # all of it, for whoever needs it
    assert len(repr(error)) < QUOTE_LIMIT + 300
    short = ServerError(status_code=502, explanation="Bad gateway", **REQUEST)
    assert str(short) == "502 GET /patients/1 [local]: Bad gateway"


def test_scrub_keeps_words_around_a_short_key() -> None:
    text = "All connection attempts failed; code c, key 'c'. ODFHIR d/c sent"
    out = scrub(text, ["d", "c"])
    assert out.startswith("All connection attempts failed; code ***, key '***'.")
    assert out.endswith(f"ODFHIR {MASK} sent")
    assert "onne" in out and "***onne" not in out


def test_scrub_removes_a_long_key_wherever_it_is() -> None:
    key = "CUSTKEY-s3cr3t/cust+1"
    for text in (
        f"url=http://x/?k={key}&y",
        f"glued{key}glued",
        "url=http://x/?k=CUSTKEY-s3cr3t%2Fcust%2B1",  # percent-encoded
        "path /CUSTKEY-s3cr3t/cust%2B1/x",
    ):
        out = scrub(text, [key])
        assert "s3cr3t" not in out, out


def test_authorization_form_is_blanked_without_knowing_the_keys() -> None:
    echo = 'Host: x\r\nAuthorization: ODFHIR DEV-abc/CUST-def\r\n<td>odfhir a/b</td> "ODFHIR q/r"'
    out = scrub_authorization(echo)
    assert "DEV-abc" not in out and "CUST-def" not in out and "a/b" not in out and "q/r" not in out
    assert out.startswith("Host: x\r\nAuthorization: ODFHIR ***\r\n")
    assert scrub_authorization("nothing to see") == "nothing to see"


def test_decode_error_snippet_and_body_hold_no_key() -> None:
    body = b"<html><pre>Authorization: ODFHIR DEVKEY-s3cr3t-dev/CUSTKEY-s3cr3t-cust\nkey=CUSTKEY-s3cr3t-cust</pre>"
    error = DecodeError("not valid JSON", **REQUEST, body=body, secrets=("CUSTKEY-s3cr3t-cust",))
    for text in (str(error), repr(error), error.snippet, error.body):
        assert "s3cr3t" not in text
    assert "ODFHIR ***" in error.snippet
    # Without the keys, the Authorization form still goes.
    bare = DecodeError("x", **REQUEST, body=body[:80])
    assert "s3cr3t" not in bare.snippet and "s3cr3t" not in str(bare)


def raise_in_worker(status: int) -> None:
    """Runs in another process: raises an error built there."""
    from odapi_async._exceptions import status_error_class

    raise status_error_class(status)(
        status_code=status, method="GET", path="/patients/1", mode="remote", explanation="x" * 5000
    )


def test_an_error_raised_in_a_process_pool_arrives_whole() -> None:
    import concurrent.futures
    import multiprocessing

    from odapi_async import Throttled

    context = multiprocessing.get_context("spawn")  # fork would copy this test process, threads and all
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(raise_in_worker, 429)
        with pytest.raises(Throttled) as caught:
            future.result(timeout=60)
    error = caught.value
    assert (error.status_code, error.method, error.path, error.mode) == (429, "GET", "/patients/1", "remote")
    assert error.explanation == "x" * 5000 and error.retry_after is None
