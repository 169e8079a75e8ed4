"""The offices file: many offices in one TOML file, each with its customer key, tier, modes and endpoints.

```toml
developer_key_env = "ODAPI_DEVELOPER_KEY"    # where the developer key comes from (this is the default)

[defaults]                                   # optional: every office starts from these
tier = "auto"
modes = ["local", "service", "remote"]

[offices.northside]
customer_key_env = "NORTHSIDE_KEY"           # or customer_key = "..." (then keep the file private)
tier = "full"
modes = ["service", "remote"]
service_host = "192.168.1.10"

[offices.southside]
customer_key_env = "SOUTHSIDE_KEY"
endpoints = { remote = "https://api.opendental.com/api/v1" }   # no modes: only the modes named here (remote)
```

``endpoints`` means what ``--endpoint`` means on the command line: an office that names endpoints but not
``modes`` uses only the modes it names endpoints for; with ``modes`` it uses those, each at its endpoint or at
the default one.

A mistake is reported as one line naming the file, the line and the field; keys are never quoted.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odapi_async._settings import MODES, TIERS
from odapi_async._util.optional import require

OFFICE_FIELDS = frozenset(
    {"customer_key", "customer_key_env", "tier", "modes", "service_host", "endpoints", "intervals"}
)
TOP_FIELDS = frozenset({"developer_key", "developer_key_env", "defaults", "offices"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class OfficesFileError(ValueError):
    """The offices file cannot be used; the message names the file, the line and the field."""


@dataclass
class OfficeEntry:
    """One office as the file describes it (keys are never shown in its repr)."""

    name: str
    customer_key: str = field(repr=False)
    tier: str = "auto"
    modes: tuple[str, ...] = MODES
    service_host: str = "localhost"
    endpoints: dict[str, str] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)


@dataclass
class OfficesFile:
    developer_key: str | None = field(repr=False)
    offices: list[OfficeEntry]
    keys_in_file: list[str] = field(default_factory=list)
    """The fields that hold a key in the file itself (``developer_key``, ``offices.NAME.customer_key``), not
    in the environment."""


def exposed_keys_warning(path: str | Path, loaded: OfficesFile) -> str | None:
    """One line when the file holds keys and other users of the machine may read it (with the fix), else None.

    POSIX permissions only: on Windows, who may read a file is the ACL's business, not the mode bits'.
    """
    if not loaded.keys_in_file or os.name != "posix":
        return None
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o044:
        return None
    who = {0o044: "its group and every other user", 0o040: "its group", 0o004: "every other user"}[
        mode & 0o044
    ]
    what = (
        "customer keys"
        if any(k.endswith("customer_key") for k in loaded.keys_in_file)
        else "the developer key"
    )
    return (
        f"warning: {path} holds {what} and {who} can read it (mode {mode:03o}): "
        f"chmod 600 {shlex.quote(str(path))}"
    )


def load_offices(path: str | Path, environ: Mapping[str, str] | None = None) -> OfficesFile:
    """Read and check an offices file; :class:`OfficesFileError` on the first mistake."""
    env = os.environ if environ is None else environ
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OfficesFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10: the cli extra installs tomli
        tomllib: Any = require("tomli", "cli", "reading an offices file on Python 3.10")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OfficesFileError(f"{path}: not valid TOML: {exc}") from None
    where = _Locator(path, text)

    for key in data:
        if key not in TOP_FIELDS:
            raise where.error(
                [], key, f"unknown field {key!r} (expected one of {', '.join(sorted(TOP_FIELDS))})"
            )
    developer_key = _developer_key(data, env, where)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise where.error([], "defaults", "must be a table")
    _check_fields(defaults, ["defaults"], where, allow_keys=False)
    offices = data.get("offices")
    if not isinstance(offices, dict) or not offices:
        raise where.error([], "offices", "no offices: add at least one [offices.NAME] table")
    entries = []
    for name, table in offices.items():
        if not isinstance(table, dict):
            raise where.error(["offices"], name, "must be a table ([offices.NAME])")
        if not _NAME.fullmatch(name):
            raise where.error(
                ["offices", name], None, f"office name {name!r}: use letters, digits, '.', '_', '-'"
            )
        merged = {**defaults, **table}
        _check_fields(table, ["offices", name], where, allow_keys=True)
        entries.append(_office(name, merged, table, env, where))
    in_file = ["developer_key"] if "developer_key" in data else []
    in_file += [f"offices.{name}.customer_key" for name, table in offices.items() if "customer_key" in table]
    return OfficesFile(developer_key=developer_key, offices=entries, keys_in_file=in_file)


def _developer_key(data: dict[str, Any], env: Mapping[str, str], where: _Locator) -> str | None:
    if "developer_key" in data:
        value = data["developer_key"]
        if not isinstance(value, str) or not value.strip():
            raise where.error([], "developer_key", "must be a non-empty string")
        return value
    var = data.get("developer_key_env", "ODAPI_DEVELOPER_KEY")
    if not isinstance(var, str):
        raise where.error([], "developer_key_env", "must be the name of an environment variable")
    return env.get(var) or None


def _check_fields(table: dict[str, Any], at: list[str], where: _Locator, *, allow_keys: bool) -> None:
    allowed = OFFICE_FIELDS if allow_keys else OFFICE_FIELDS - {"customer_key", "customer_key_env"}
    for key, value in table.items():
        if key not in allowed:
            raise where.error(
                at, key, f"unknown field {key!r} (expected one of {', '.join(sorted(allowed))})"
            )
        problem = _field_problem(key, value)
        if isinstance(problem, tuple):  # a key inside a sub-table (endpoints, intervals)
            raise where.error([*at, key], problem[0], problem[1])
        if problem:
            raise where.error(at, key, problem)


def _field_problem(key: str, value: Any) -> str | tuple[str, str] | None:
    if key in ("customer_key", "customer_key_env", "service_host") and (
        not isinstance(value, str) or not value.strip()
    ):
        return "must be a non-empty string"
    if key == "tier" and value not in TIERS:
        return f"must be one of {', '.join(TIERS)}; got {value!r}"
    if key == "modes" and (
        not isinstance(value, list)
        or not value
        or any(m not in MODES for m in value)
        or len(set(value)) != len(value)
    ):
        return f"must be a list of distinct modes from {', '.join(MODES)}; got {value!r}"
    if key == "endpoints":
        if not isinstance(value, dict):
            return "must be a table of MODE = URL"
        for mode, url in value.items():
            if mode not in MODES:
                return mode, f"unknown mode {mode!r} (modes are {', '.join(MODES)})"
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                return mode, "must be an http:// or https:// URL"
    if key == "intervals" and (
        not isinstance(value, dict)
        or any(t not in TIERS or not isinstance(v, (int, float)) or v <= 0 for t, v in value.items())
    ):
        return "must be a table of TIER = seconds (positive numbers)"
    return None


def _office(
    name: str, merged: dict[str, Any], table: dict[str, Any], env: Mapping[str, str], where: _Locator
) -> OfficeEntry:
    if "customer_key" in table:
        key = str(table["customer_key"])
    elif "customer_key_env" in table:
        var = str(table["customer_key_env"])
        key = env.get(var, "")
        if not key.strip():
            raise where.error(["offices", name], "customer_key_env", f"environment variable {var} is not set")
    else:
        raise where.error(["offices", name], None, "no customer key: set customer_key_env (or customer_key)")
    return OfficeEntry(
        name=name,
        customer_key=key.strip(),
        tier=merged.get("tier", "auto"),
        modes=_modes(table, merged),
        service_host=merged.get("service_host", "localhost"),
        endpoints=dict(merged.get("endpoints", {})),
        intervals={k: float(v) for k, v in merged.get("intervals", {}).items()},
    )


def _modes(table: dict[str, Any], merged: dict[str, Any]) -> tuple[str, ...]:
    """An office's cascade: its ``modes``; else, if it names ``endpoints``, the modes that have one (as
    ``--endpoint`` on the command line means); else the same from ``[defaults]``; else every mode."""
    for layer in (table, merged):  # the office's own table, then the defaults under it
        if "modes" in layer:
            return tuple(layer["modes"])
        if "endpoints" in layer:
            return tuple(m for m in MODES if m in merged["endpoints"])
    return MODES


class _Locator:
    """Finds the line of a table or a field, so that an error can name it (tomllib gives no positions)."""

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line(self, at: list[str], key: str | None) -> int | None:
        current: list[str] = []
        header_line = None
        for number, raw in enumerate(self.lines, 1):
            match = self._HEADER.match(raw)
            if match:
                current = [part.strip().strip("\"'") for part in match.group(1).split(".")]
                if current == at and key is None:
                    return number
                if current == at:
                    header_line = number
                if current == [*at, key]:
                    return number  # [offices.x.endpoints]
                continue
            if current == at and key is not None and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", raw):
                return number
            # dotted keys or inline tables: offices.x = {...} / x.tier = ...
            if (
                key is not None
                and len(at) >= 1
                and current == at[:-1]
                and re.match(rf"^\s*[\"']?{re.escape(at[-1])}[\"']?\s*[.=]", raw)
            ):
                return number
        return header_line

    def error(self, at: list[str], key: str | None, message: str) -> OfficesFileError:
        number = self.line(at, key)
        place = f"{self.path}:{number}" if number else str(self.path)
        label = ".".join([*at, key] if key else at) or "(top level)"
        return OfficesFileError(f"{place}: {label}: {message}")
