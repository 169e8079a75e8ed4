"""The wire codec: Open Dental's JSON conventions both ways.

Reading (see ARCHITECTURE.md "Wire conventions"): msgspec with ``strict=False`` already turns ``"true"``/
``"True"`` into ``bool``, numbers sent as strings into ``int``/``float`` and ``yyyy-MM-dd HH:mm:ss`` into
``datetime``; unknown fields are ignored and enums are kept as text, so a new server version never fails a
decode. What msgspec cannot do is read ``0001-01-01`` as "none": models type those fields ``date | None`` and
each model's ``__post_init__`` swaps the sentinel for ``None`` as msgspec builds the row (only while one of our
decoders runs: a model built in Python keeps what it is given). A row that still does not fit (the docs show a
ZIP code as a bare number) gets a lenient second pass before we give up with :class:`DecodeError`.

Writing: booleans as ``"true"``/``"false"``, dates and datetimes in the API's default formats, ``None`` dates as
the ``0001-01-01`` sentinel; derived lower-case helper fields are never sent.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import functools
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin

import msgspec

from odapi_async._exceptions import BodyTooLarge, InvalidParameter

#: The API's body limit ("about 16.8 million characters"): 2**24.
MAX_BODY_CHARS = 16_777_216

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MIN_DATE = dt.date(1, 1, 1)
MIN_DATETIME = dt.datetime(1, 1, 1)
#: The API's keys and integers are 64-bit (MySQL BIGINT, .NET long).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


#: Fields that a repr shows as ``<masked>`` (in every model that has them, and in ``DynamicRow`` keys, any
#: case): numbers that identify a person on their own, outside the practice, and secrets. The SSN (patients,
#: providers, referrals), Medicaid and insurance subscriber IDs, the chart number (a medical record number),
#: the birthdate (with a name, what identity checks ask), passwords and bank account numbers. Names, addresses
#: and phone numbers stay visible: a repr must still tell one row from another while debugging. Only reprs
#: change: attributes, ``to_dict()``, JSON, DataFrames and the sync's tables hold the values as they are.
MASKED_FIELDS = frozenset(
    {
        "SSN",
        "MedicaidID",
        "SubscriberID",
        "ChartNumber",
        "Birthdate",
        "Password",
        "BankAccountInfo",
        "DepositAccountNum",
    }
)
_MASKED_LOWER = frozenset(name.lower() for name in MASKED_FIELDS)


class _Masked:
    """Stands in for a masked value in reprs (rich's pretty printer included)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<masked>"


MASKED = _Masked()


class Model(msgspec.Struct, kw_only=True, gc=False, repr_omit_defaults=True):
    """Base of every generated model: a msgspec Struct whose attributes are the API's wire names.

    ``gc=False`` is safe (rows hold only scalars and lists of scalars) and makes decoding ~10 % faster.
    The repr leaves out fields at their defaults (0, "", None): a row of 35 fields prints what it holds, and
    shows the fields of :data:`MASKED_FIELDS` (the SSN, ...) as ``<masked>``; the values are untouched.
    """

    #: Read-only helper fields (lower-case names such as ``provAbbr``) that must never be sent back.
    __od_derived__: ClassVar[frozenset[str]] = frozenset()
    #: The field that identifies a row (the spec's primary key, ``AptNum``), or None when rows have no own key.
    __od_primary_key__: ClassVar[str | None] = None
    #: (field, sentinel) pairs where the API's ``0001-01-01`` means "none"; filled in by ``__init_subclass__``.
    __od_min_dates__: ClassVar[tuple[tuple[str, dt.date], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        pairs = []
        for name, hint in _annotations(cls).items():
            kind = _date_kind(hint)
            if kind is not None:
                pairs.append((name, MIN_DATETIME if kind is dt.datetime else MIN_DATE))
        cls.__od_min_dates__ = tuple(pairs)
        if pairs:
            # msgspec reads __post_init__ once the class body is done, so setting it here still takes effect.
            found = getattr(cls, "__post_init__", None)  # the class's own, or one it inherits
            own = getattr(found, "__od_after__", found)  # ours (inherited) calls the model's own after it
            # setattr, not an assignment: type checkers would read one as a public attribute without a type.
            setattr(cls, "__post_init__", _compile_min_date_hook(cls.__od_min_dates__, own))  # noqa: B010

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (Python values, not wire values)."""
        return msgspec.structs.asdict(self)

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The fields not at their defaults, as rich pretty-prints them; identifiers masked."""
        shown = []
        for name, default, factory in _repr_fields(type(self)):
            value = getattr(self, name)
            if default is not msgspec.NODEFAULT and value == default:
                continue
            if factory is not msgspec.NODEFAULT and value == factory():
                continue
            shown.append((name, MASKED if name in MASKED_FIELDS and value not in (None, "") else value))
        return shown

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"{type(self).__name__}({fields})"


@functools.cache
def _repr_fields(cls: type[Model]) -> tuple[tuple[str, Any, Any], ...]:
    return tuple((f.name, f.default, f.default_factory) for f in msgspec.structs.fields(cls))


class DynamicRow(dict[str, Any]):
    """A row with columns chosen by the caller (``queries/ShortQuery``): a dict of column → value.

    Its repr masks the columns named like :data:`MASKED_FIELDS` (any case), as a model's does."""

    def __repr__(self) -> str:
        shown = {
            k: MASKED if isinstance(k, str) and k.lower() in _MASKED_LOWER and v not in (None, "") else v
            for k, v in self.items()
        }
        return f"DynamicRow({shown!r})"


def _annotations(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        out.update(getattr(klass, "__annotations__", {}))
    return {k: v for k, v in out.items() if not k.startswith("__")}


def _date_kind(hint: Any) -> type | None:
    candidates = (
        get_args(hint) if get_origin(hint) is Union or type(hint).__name__ == "UnionType" else (hint,)
    )
    for candidate in candidates:
        if candidate is dt.datetime:
            return dt.datetime
        if candidate is dt.date:
            return dt.date
    return None


M = TypeVar("M", bound=Model)


# ---------------------------------------------------------------------------------------------- decoding


class WireDecodeError(ValueError):
    """Raised by the decode helpers; the session wraps it into :class:`DecodeError` with request context."""


@functools.cache
def _list_decoder(model: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(list[model], strict=False)  # type: ignore[valid-type]


@functools.cache
def _one_decoder(model: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(model, strict=False)


#: True while one of our decoders builds rows (per thread and per task): the models' ``__post_init__`` then
#: applies the ``0001-01-01`` rule. msgspec also calls ``__post_init__`` for a model built in Python, which
#: keeps what it was given.
_WIRE_DECODE: contextvars.ContextVar[bool] = contextvars.ContextVar("odapi_wire_decode", default=False)


@contextmanager
def _wire_rules() -> Iterator[None]:
    token = _WIRE_DECODE.set(True)
    try:
        yield
    finally:
        _WIRE_DECODE.reset(token)


def _compile_min_date_hook(
    pairs: tuple[tuple[str, dt.date], ...], own: Callable[[Any], None] | None
) -> Callable[[Any], None]:
    """A ``__post_init__`` that swaps one row's ``0001-01-01`` sentinels for ``None`` while a decoder runs.

    Applied as msgspec builds each row, the check finds the row in the CPU cache; a pass over the page after the
    decode walked ~1.5 MB again, which cost 2x as much with read-ahead on (docs/benchmarks.md, "Paging").
    ``own``: a ``__post_init__`` the model defines itself, called after.
    """
    lines = ["def __post_init__(row):", "    if WIRE():"]
    env: dict[str, Any] = {"WIRE": _WIRE_DECODE.get, "OWN": own}
    for i, (name, sentinel) in enumerate(pairs):
        if not name.isidentifier():
            raise ValueError(f"field name {name!r} is not an identifier")
        env[f"S{i}"] = sentinel
        lines.append(f"        if row.{name} == S{i}: row.{name} = None")
    if own is not None:
        lines.append("    OWN(row)")
    exec("\n".join(lines), env)  # the source is built from identifiers only
    hook: Callable[[Any], None] = env["__post_init__"]
    hook.__od_after__ = own  # type: ignore[attr-defined]
    return hook


def decode_list(raw: bytes, model: type[M]) -> list[M]:
    """Decode a JSON array of rows into ``model`` instances, applying every wire rule."""
    with _wire_rules():
        try:
            rows: list[M] = _list_decoder(model).decode(raw)
        except msgspec.ValidationError:
            data = _loads(raw)
            if isinstance(data, dict):
                data = [data]  # a list answered with one object (the docs show it for patfields, providers)
            if not isinstance(data, list):
                raise WireDecodeError(f"expected a JSON array, got {type(data).__name__}") from None
            rows = [_lenient(row, model) for row in data]
        except msgspec.DecodeError as exc:
            raise WireDecodeError(f"not valid JSON: {exc}") from None
    return rows


def decode_one(raw: bytes, model: type[M]) -> M:
    """Decode one JSON object into a ``model`` instance, applying every wire rule."""
    with _wire_rules():
        try:
            row: M = _one_decoder(model).decode(raw)
        except msgspec.ValidationError:
            data = _loads(raw)
            if isinstance(data, list):
                if len(data) != 1:
                    raise WireDecodeError(f"expected one JSON object, got an array of {len(data)}") from None
                data = data[0]  # one object wrapped in an array
            row = _lenient(data, model)
        except msgspec.DecodeError as exc:
            raise WireDecodeError(f"not valid JSON: {exc}") from None
    return row


def decode_dynamic(raw: bytes) -> list[DynamicRow]:
    """Decode rows whose columns are not known in advance (``queries/ShortQuery``)."""
    data = _loads(raw)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise WireDecodeError("expected a JSON array of objects")
    return [DynamicRow(row) for row in data]


def decode_json(raw: bytes) -> Any:
    """Decode an answer with no model (a bare string or an untyped object)."""
    return _loads(raw) if raw.strip() else None


def _loads(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise WireDecodeError(f"not valid JSON: {exc}") from None


@functools.cache
def _field_kinds(model: type[Model]) -> dict[str, str]:
    """Field name → "str", "date", "datetime" or "other", for the lenient pass."""
    kinds = {}
    for f in msgspec.structs.fields(model):
        date_kind = _date_kind(f.type)
        kinds[f.name] = "str" if f.type is str else date_kind.__name__ if date_kind else "other"
    return kinds


_ABSENT = object()


def _lenient_value(value: Any, kind: str | None) -> Any:
    if kind == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a ZIP code sent as a bare number
    if isinstance(value, str) and kind in ("date", "datetime", "other"):
        if value == "":
            return _ABSENT  # "" where a date, number or boolean belongs: no value
        if kind == "datetime" and len(value) == 10:
            return value + " 00:00:00"  # a date where a datetime belongs
        if kind == "date" and len(value) == 19:
            return value[:10]  # a datetime where a date belongs
    return value


def _lenient(row: Any, model: type[M]) -> M:
    """Second pass for rows the fast decoder refused, forgiving what the docs' own examples show:
    numbers where text belongs, empty strings for "no value", dates and datetimes swapped."""
    if not isinstance(row, dict):
        raise WireDecodeError(f"expected a JSON object, got {type(row).__name__}")
    kinds = _field_kinds(model)
    fixed = {}
    for key, value in row.items():
        value = _lenient_value(value, kinds.get(key))
        if value is not _ABSENT:
            fixed[key] = value
    try:
        return msgspec.convert(fixed, model, strict=False)
    except msgspec.ValidationError as exc:
        raise WireDecodeError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- encoding


def unsendable(value: Any) -> str:
    """Why the API cannot receive this number ("" when it can): NaN, an infinity, an integer outside 64 bits.

    JSON has no NaN: msgspec would send ``null``, which the server reads as "no value", and a .NET ``long``
    cannot hold ``2**70``. Lists and objects are checked item by item.
    """
    if isinstance(value, float):
        return "" if math.isfinite(value) else "a finite number"
    if isinstance(value, Decimal):
        return "" if value.is_finite() else "a finite number"
    if isinstance(value, int) and not isinstance(value, bool):
        return "" if INT64_MIN <= value <= INT64_MAX else "within the API's 64-bit integer range"
    if isinstance(value, (list, tuple)):
        return next((why for why in map(unsendable, value) if why), "")
    if isinstance(value, Mapping):
        return next((why for why in map(unsendable, value.values()) if why), "")
    return ""


def check_sendable(value: Any, name: str = "") -> None:
    """Raise :class:`InvalidParameter` when :func:`unsendable` finds a reason."""
    why = unsendable(value)
    if why:
        where = f"parameter {name!r}" if name else "a value"
        raise InvalidParameter(f"{where} must be {why}, got {shown(value)}", operation="", parameter=name)


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages (a wrong value may be a whole document)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def wire_value(value: Any, kind: str, name: str = "", *, check: bool = True) -> Any:
    """One Python value → its JSON wire form for a parameter of spec type ``kind``.

    ``check=False`` where the value was checked already (an operation's arguments, by ``check_arguments``):
    each number is then looked at once per request, not twice.
    """
    if value is None:
        if kind == "date":
            return "0001-01-01"
        if kind == "datetime":
            return "0001-01-01 00:00:00"
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, dt.date):
        return value.strftime(DATE_FORMAT) if kind != "datetime" else value.strftime(DATETIME_FORMAT)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, enum.Enum):
        if kind in ("int", "float"):
            return value.value  # an IntEnum given for a number travels as its number
        return value.name if isinstance(value.value, int) else value.value
    if isinstance(value, (list, tuple)):
        return [wire_value(item, "", name, check=check) for item in value]
    if isinstance(value, Mapping):  # list-of-object parameters (payments.Partial) and request(json=...)
        return {k: wire_value(v, "", str(k), check=check) for k, v in value.items()}
    if check:
        check_sendable(value, name)
    return value


def query_value(value: Any, kind: str, *, check: bool = True) -> str:
    """A query-string value: the wire form as text (httpx2 percent-encodes it); ``check`` as for wire_value."""
    wire = wire_value(value, kind, check=check)
    if isinstance(wire, list):
        return ",".join(_query_text(item) for item in wire)
    return _query_text(wire)


def _query_text(wire: Any) -> str:
    # Numbers in plain positional notation: str() gives "1E+2" for Decimal("1E+2") and "1e-05" for 0.00001,
    # which a .NET decimal parser refuses.
    if isinstance(wire, float) and "e" in repr(wire):
        wire = Decimal(repr(wire))
    if isinstance(wire, Decimal):
        return format(wire, "f")
    return str(wire)


# Decimal amounts go out as JSON numbers (msgspec's default is a JSON string).
_body_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_body(body: Mapping[str, Any]) -> bytes:
    """JSON-encode a request body (already in wire form)."""
    return _body_encoder.encode(body)


def check_body_size(payload: bytes) -> None:
    """Raise :class:`BodyTooLarge` for a body over the API's limit (counted in characters, as the API does)."""
    if len(payload) <= MAX_BODY_CHARS:
        return  # UTF-8 bytes >= characters: no need to count
    chars = len(payload.decode("utf-8"))
    if chars > MAX_BODY_CHARS:
        raise BodyTooLarge(chars, MAX_BODY_CHARS)
