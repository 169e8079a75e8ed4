"""One webhook call → a list of :class:`Entry`: the header parsed, the rows decoded, each row's dedupe key.

Open Dental sends no event id and no signature, so a delivery is identified by what it carries. The key of a
row is a hash of the office, the event type and the row itself, re-encoded from the decoded model so that
two workstations' spellings of one row (``"true"`` / ``"True"``, key order) give one key. The row includes
its primary key and its ``DateTStamp``/``SecDateTEdit`` where the table has one, so a later change of the
same row is a new event even within the same second, while a resend of an unchanged row is a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from odapi_async._codec import Model, WireDecodeError, decode_list, decode_one
from odapi_async.events._models import KNOWN_TYPES, UI_EVENT, WATCH_TABLE, Event, EventKind, model_of

logger = logging.getLogger("odapi_async.events")

_encoder = msgspec.json.Encoder()
_generic = msgspec.json.Decoder()
# Logged once per process per unknown type: a new Open Dental version must not flood the log.
_unknown_logged: set[tuple[str, str]] = set()


class BadEvent(ValueError):
    """A call the receiver refuses with 400; the message is the reason sent back (never row data)."""


@dataclass
class Entry:
    """One decoded row on its way into the store."""

    key: bytes  # 16-byte digest: the dedupe key
    event: Event[Any]
    row_json: bytes  # the canonical encoding (what the key hashes; what a durable store keeps)


def parse_event_type(header: str | None) -> tuple[EventKind, str]:
    """``"WatchTable: Appointment"`` → ``("WatchTable", "Appointment")``."""
    if not header:
        raise BadEvent("the Event-Type header is missing")
    kind, sep, name = header.partition(":")
    kind, name = kind.strip(), name.strip()
    if not sep or not name or kind not in (WATCH_TABLE, UI_EVENT):
        raise BadEvent("the Event-Type header must read 'WatchTable: <table>' or 'UiEventType: <type>'")
    return (WATCH_TABLE if kind == WATCH_TABLE else UI_EVENT), name


def decode_call(
    kind: EventKind,
    name: str,
    body: bytes,
    *,
    office: str,
    workstation: str,
    received_at: dt.datetime,
) -> list[Entry]:
    """Decode a call's body into entries; raise :class:`BadEvent` when any part cannot be read."""
    known = KNOWN_TYPES.get((kind, name))
    stripped = body.lstrip()
    is_list = stripped[:1] == b"["
    rows: list[Any]
    if known is None:
        rows = _decode_unknown(kind, name, body, is_list)
    else:
        model = model_of(known)
        try:
            rows = decode_list(body, model) if is_list else [decode_one(body, model)]
        except WireDecodeError as exc:
            raise BadEvent(f"the body is not a readable {name} event: {_short(exc)}") from None
    prefix = f"{office}\0{kind}\0{name}\0".encode()
    entries = []
    for row in rows:
        row_json = _canonical(row)
        key = hashlib.blake2b(prefix + row_json, digest_size=16).digest()
        entries.append(
            Entry(
                key=key,
                event=Event(kind, name, row, office, workstation, received_at),
                row_json=row_json,
            )
        )
    return entries


class _Stored(msgspec.Struct, array_like=True):
    """A queued event as a durable store keeps it: a few short fields and the canonical row."""

    kind: str
    type: str
    office: str
    workstation: str
    received_at: float
    row: msgspec.Raw


_stored_decoder = msgspec.json.Decoder(_Stored)


def encode_entry(entry: Entry) -> bytes:
    """The bytes a durable store keeps for one queued event."""
    e = entry.event
    stored = _Stored(
        e.kind, e.type, e.office, e.workstation, e.received_at.timestamp(), msgspec.Raw(entry.row_json)
    )
    return _encoder.encode(stored)


def decode_entry(seq: int, blob: bytes) -> Event[Any]:
    """An event back from :func:`encode_entry` (a durable store's replay, possibly after a restart)."""
    s = _stored_decoder.decode(blob)
    kind: EventKind = UI_EVENT if s.kind == UI_EVENT else WATCH_TABLE
    known = KNOWN_TYPES.get((kind, s.type))
    row = _generic.decode(s.row) if known is None else decode_one(bytes(s.row), model_of(known))
    received = dt.datetime.fromtimestamp(s.received_at, dt.timezone.utc)
    return Event(kind, s.type, row, s.office, s.workstation, received, seq=seq)


def _decode_unknown(kind: str, name: str, body: bytes, is_list: bool) -> list[dict[str, Any]]:
    if (kind, name) not in _unknown_logged:
        _unknown_logged.add((kind, name))
        logger.warning(
            "API event type %s: %s is not known to this version; delivering its rows raw", kind, name
        )
    try:
        data = _generic.decode(body)
    except msgspec.DecodeError as exc:
        raise BadEvent(f"the body is not valid JSON: {_short(exc)}") from None
    rows = data if is_list else [data]
    if not all(isinstance(row, dict) for row in rows):
        raise BadEvent("the body must be a JSON object or an array of objects")
    return rows


def _canonical(row: Any) -> bytes:
    if isinstance(row, Model):
        # serverDateTime says when the office answered, not what the row is: resends differ only there.
        if getattr(row, "serverDateTime", None) is not None:
            row = msgspec.structs.replace(row, serverDateTime=None)
        return _encoder.encode(row)
    return msgspec.json.encode(row, order="sorted")


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "…"
