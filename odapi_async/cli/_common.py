"""What every command shares: connection options, building sessions, and errors as one line with an exit code.

Exit codes: 0 ok, 1 failures reported, 2 usage errors (bad flags, a bad offices file, bad settings).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import click

from odapi_async import OpenDental
from odapi_async._settings import MODES
from odapi_async._settings import TIERS as ALL_TIERS
from odapi_async.sync import OfficeConfig, OfficeEntry

F = TypeVar("F", bound=Callable[..., Any])

#: The tiers in the order the help lists them: the default first.
TIERS = ("auto", *(tier for tier in ALL_TIERS if tier != "auto"))


class CliFailure(Exception):
    """An error already explained in one line; ``exit_code`` 1 (a failure) or 2 (a usage error)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def usage_error(message: str) -> CliFailure:
    return CliFailure(message, exit_code=2)


def parse_endpoint(text: str) -> tuple[str, str]:
    mode, sep, url = text.partition("=")
    mode = mode.strip().lower()
    if not sep or mode not in MODES or not url.startswith(("http://", "https://")):
        raise usage_error(f"--endpoint {text!r}: expected MODE=URL with MODE one of {', '.join(MODES)}")
    return mode, url.strip()


def parse_interval(text: str) -> tuple[str, float]:
    tier, sep, seconds = text.partition("=")
    try:
        value = float(seconds)
    except ValueError:
        value = -1.0
    if not sep or tier not in TIERS[1:] or value <= 0:
        raise usage_error(
            f"--interval {text!r}: expected TIER=SECONDS with TIER one of {', '.join(TIERS[1:])}"
        )
    return tier, value


@dataclass
class Connection:
    """The connection settings of one command line (keys are never shown in a repr)."""

    developer_key: str | None = field(default=None, repr=False)
    customer_key: str | None = field(default=None, repr=False)
    modes: tuple[str, ...] = ()
    endpoints: dict[str, str] = field(default_factory=dict)
    service_host: str = "localhost"
    tier: str = "auto"
    intervals: dict[str, float] = field(default_factory=dict)

    def cascade(self) -> tuple[str, ...]:
        """The modes to use: as given; else the modes of the endpoints given; else the full cascade."""
        if self.modes:
            return self.modes
        if self.endpoints:
            return tuple(m for m in MODES if m in self.endpoints)
        return MODES

    def session(self, **extra: Any) -> OpenDental:
        return OpenDental(
            self.developer_key,
            self.customer_key,
            modes=self.cascade(),  # type: ignore[arg-type]
            endpoints=self.endpoints or None,
            service_host=self.service_host,
            tier=self.tier,  # type: ignore[arg-type]
            intervals=self.intervals or None,
            **extra,
        )

    def office(self, name: str = "default") -> OfficeConfig:
        return OfficeConfig(name, self.session, customer_key=self.customer_key)


def office_from_entry(entry: OfficeEntry, developer_key: str | None, overrides: Connection) -> OfficeConfig:
    """An office of an offices file; ``--endpoint`` flags on the command line win over the file's."""
    connection = Connection(
        developer_key=developer_key
        or overrides.developer_key,  # the file's choice, else the flag / environment
        customer_key=entry.customer_key,
        # --endpoint without --mode: the cascade is the modes that have an endpoint (see Connection.cascade)
        modes=overrides.modes or (() if overrides.endpoints else entry.modes),
        endpoints={**entry.endpoints, **overrides.endpoints},
        service_host=entry.service_host,
        tier=entry.tier,
        intervals={**entry.intervals, **overrides.intervals},
    )
    return connection.office(entry.name)


def connection_options(func: F) -> F:
    """The options of every command that talks to the API."""
    options = [
        click.option(
            "--endpoint",
            "endpoints",
            multiple=True,
            metavar="MODE=URL",
            help="Base URL of a mode (repeatable), e.g. local=http://127.0.0.1:30222/api/v1.",
        ),
        click.option(
            "--mode",
            "modes",
            multiple=True,
            type=click.Choice(MODES),
            help="Cascade order (repeatable). Default: the modes of --endpoint, else local, service, remote.",
        ),
        click.option("--tier", type=click.Choice(TIERS), default="auto", show_default=True),
        click.option(
            "--interval",
            "intervals",
            multiple=True,
            metavar="TIER=SECONDS",
            help="Remote throttle interval of a tier (repeatable), for test servers and emulators.",
        ),
        click.option(
            "--service-host", default="localhost", show_default=True, help="Where the API Service runs."
        ),
        click.option(
            "--developer-key",
            envvar="ODAPI_DEVELOPER_KEY",
            show_envvar=True,
            help="Prefer the environment variable.",
        ),
        click.option(
            "--customer-key",
            envvar="ODAPI_CUSTOMER_KEY",
            show_envvar=True,
            help="Prefer the environment variable.",
        ),
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["connection"] = Connection(
            developer_key=kwargs.pop("developer_key"),
            customer_key=kwargs.pop("customer_key"),
            modes=tuple(kwargs.pop("modes")),
            endpoints=dict(parse_endpoint(e) for e in kwargs.pop("endpoints")),
            service_host=kwargs.pop("service_host"),
            tier=kwargs.pop("tier"),
            intervals=dict(parse_interval(i) for i in kwargs.pop("intervals")),
        )
        return func(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return cast(F, wrapper)


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``-p K=V`` flags as a dict."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise usage_error(f"-p {pair!r}: expected NAME=VALUE")
        params[key] = value
    return params
