"""Wire values: parse what a client sent into the form the store keeps (which is the JSON wire form).

The store keeps every value exactly as it travels: booleans as "true"/"false", dates "yyyy-MM-dd", datetimes
"yyyy-MM-dd HH:mm:ss", enums as names, ``numeric_string`` fields as text. Parsing errors raise
:class:`WireError`, whose message is the plain-text explanation the server answers with (status 400).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from odapi_async.emulator._catalog.routes import Field

NONE_DATE = "0001-01-01"
NONE_DATETIME = "0001-01-01 00:00:00"
#: Largest whole number the API's keys (and SQLite) hold: a bigger one is a 400, not an overflow.
MAX_KEY = 2**63 - 1
#: Digits of MAX_KEY: a longer number is refused before Python parses it (its 4300-digit limit is an error).
MAX_KEY_DIGITS = len(str(MAX_KEY))
#: Most items a list value (ProcNums, procNums, ...) may hold: the docs give none; one office's rows fit.
MAX_LIST_ITEMS = 10_000

_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DATETIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class WireError(ValueError):
    """A value the server refuses; the message is the explanation sent back."""


def _invalid(f: Field, value: Any) -> WireError:
    shown = str(value)
    if len(shown) > 40:
        shown = shown[:40] + "..."
    return WireError(f"{f.name} is invalid: '{shown}' is not a valid {f.type}.")


def parse_datetime(text: str) -> str | None:
    """Normalise a date or datetime to "yyyy-MM-dd HH:mm:ss" (None when unreadable)."""
    m = _DATETIME.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s = m.groups()
    try:  # a real calendar moment (no month 13, no year 0): later date arithmetic can trust it
        datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        return None
    return f"{int(y):04d}-{int(mo):02d}-{int(d):02d} {int(h or 0):02d}:{int(mi or 0):02d}:{int(s or 0):02d}"


def parse_date(text: str) -> str | None:
    """Normalise a date (a datetime's date part is accepted) to "yyyy-MM-dd"."""
    full = parse_datetime(text)
    return full[:10] if full else None


def to_store(f: Field, value: Any) -> Any:
    """Convert a JSON body value (or query text) for field ``f`` to its stored form."""
    t = f.type
    if t == "int":
        if isinstance(value, bool):
            raise _invalid(f, value)
        if isinstance(value, int):
            n = value
        elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            if len(value.strip().lstrip("-").lstrip("0")) > MAX_KEY_DIGITS:
                raise WireError(f"{f.name} is invalid: '{value.strip()[:40]}' is too large.")
            n = int(value)
        elif isinstance(value, float) and value.is_integer():
            n = int(value)
        else:
            raise _invalid(f, value)
        if not -MAX_KEY <= n <= MAX_KEY:
            raise WireError(f"{f.name} is invalid: '{str(value)[:40]}' is too large.")
        return str(n) if f.numeric_string else n
    if t == "float":
        if isinstance(value, bool):
            raise _invalid(f, value)
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise _invalid(f, value) from None
        if not math.isfinite(x):  # "nan", "inf", 1e999: no amount of money
            raise _invalid(f, value)
        return f"{x:.2f}" if f.numeric_string else x
    if t == "bool":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
        raise _invalid(f, value)
    if t == "date":
        out = parse_date(value) if isinstance(value, str) else None
        if out is None:
            raise _invalid(f, value)
        return out
    if t == "datetime":
        out = parse_datetime(value) if isinstance(value, str) else None
        if out is None:
            raise _invalid(f, value)
        return out
    if t == "time":
        m = _TIME.match(value.strip()) if isinstance(value, str) else None
        if not m:
            raise _invalid(f, value)
        h, mi, s = m.groups()
        return f"{int(h):02d}:{int(mi):02d}:{int(s or 0):02d}"
    if t == "enum":
        if not isinstance(value, str):
            raise _invalid(f, value)
        if f.enum:
            low = value.strip().lower()
            for name in f.enum:
                if name.lower() == low:
                    return name
            raise WireError(f"{f.name} is invalid: '{value}' is not one of {', '.join(f.enum)}.")
        return value
    if t == "list":
        if isinstance(value, str):
            items: list[Any] = [v for v in value.split(",") if v.strip()]
        elif isinstance(value, list):
            items = value
        else:
            raise _invalid(f, value)
        if len(items) > MAX_LIST_ITEMS:
            raise WireError(f"{f.name} is invalid: more than {MAX_LIST_ITEMS} items.")
        if f.items_type == "int":
            try:
                items = [to_store(Field(f.name, "int"), v) for v in items]
            except WireError:
                raise _invalid(f, value) from None
        return json.dumps(items)
    # str and anything unknown: text; numbers are accepted and kept as their text.
    if isinstance(value, (dict, list)) or value is None:
        raise _invalid(f, value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
