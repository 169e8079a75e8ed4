"""What the sessions of a process share: the throttle backend (per process) and the connection pools (per loop).

Sessions are cheap (one per customer key); the expensive parts live here. ``odapi_async.default_hub`` serves
every session not given its own ``hub=``; a separate hub gives a group of sessions their own throttle state and
pools (tests do this to stay independent).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from odapi_async._exceptions import ConfigurationError
from odapi_async._request.http11 import LeanClient
from odapi_async._request.pools import ConnectionPools
from odapi_async._request.routing import RouterRegistry
from odapi_async._request.telemetry import Telemetry, check_setting
from odapi_async._throttle.backend import ProcessThrottle, ThrottleBackend
from odapi_async._version import __version__

USER_AGENT = f"odapi-async/{__version__}"


class Hub:
    """A throttle backend and the connection pools of every loop, shared by the sessions given this hub."""

    def __init__(
        self,
        *,
        throttle: ThrottleBackend | None = None,
        keepalive_expiry: float = 30.0,
        transport_factory: Callable[[int | None], httpx2.AsyncBaseTransport] | None = None,
        proxy: str | httpx2.Proxy | None = None,
        verify: ssl.SSLContext | str | bool = True,
        cert: str | tuple[str, str] | None = None,
        trust_env: bool = True,
        limits: httpx2.Limits | None = None,
        telemetry: bool | Telemetry | None = None,
    ) -> None:
        """``throttle`` is where per-key state lives (default: this process, :class:`ProcessThrottle`).

        ``transport_factory(max_connections)``, if given, makes each key's transport (instrumentation, a
        simulated network in benchmarks); the pool sizing it is passed is then the factory's to honour.

        The transport options work as in httpx (docs/web.md, "Transport options"): ``proxy``; ``verify``
        (``False``, a CA bundle path, or an ``ssl.SSLContext``) and ``cert`` (a client certificate);
        ``trust_env`` (read ``HTTPS_PROXY``/``SSL_CERT_FILE``… from the environment, as httpx does by default);
        ``limits``: its ``max_connections`` caps each key's pool (default: the key's in-flight caps), its
        keep-alive settings replace ``keepalive_expiry``.

        ``telemetry``: OpenTelemetry spans and metrics for this hub's sessions (docs/observability.md): ``None``
        on when a global tracer or meter provider is set, ``True``/``False``, or a :class:`Telemetry`.
        """
        self.throttle: ThrottleBackend = throttle if throttle is not None else ProcessThrottle()
        self.telemetry: bool | Telemetry | None = check_setting(telemetry)
        self._keepalive_expiry = keepalive_expiry
        self._transport_factory = transport_factory
        self._ssl: ssl.SSLContext | None = None
        self._transport = _check_transport_options(
            transport_factory, proxy=proxy, verify=verify, cert=cert, trust_env=trust_env, limits=limits
        )
        if verify is not True or cert is not None:
            self._ssl = self._ssl_context()  # now, so that a wrong CA bundle path fails here
        self.pools: ConnectionPools = ConnectionPools(self._new_client)
        self.routers: RouterRegistry = RouterRegistry()

    def __repr__(self) -> str:
        return f"<Hub throttle={self.throttle!r}>"

    def _new_client(self, max_connections: int | None) -> httpx2.AsyncClient:
        common: dict[str, Any] = {"headers": {"User-Agent": USER_AGENT}, "follow_redirects": False}
        if self._transport_factory is not None:
            return httpx2.AsyncClient(transport=self._transport_factory(max_connections), **common)
        if self._ssl is None:
            self._ssl = self._ssl_context()  # loading CA certificates is slow: once per hub
        options = self._transport
        limits = _pool_limits(options.limits, max_connections, self._keepalive_expiry)
        # httpx2's client over our own HTTP/1.1 connections (_request/http11.py); a proxy keeps httpx2's own.
        return LeanClient(
            limits=limits, verify=self._ssl, proxy=options.proxy, trust_env=options.trust_env, **common
        )

    def _ssl_context(self) -> ssl.SSLContext:
        options = self._transport
        if isinstance(options.verify, ssl.SSLContext):
            return options.verify
        try:
            if isinstance(options.verify, str):  # a CA bundle (file) or a directory of certificates
                if os.path.isdir(options.verify):
                    ctx = ssl.create_default_context(capath=options.verify)
                else:
                    ctx = ssl.create_default_context(cafile=options.verify)
            else:
                ctx = httpx2.create_ssl_context(verify=options.verify, trust_env=options.trust_env)
            if options.cert is not None:
                cert = (options.cert,) if isinstance(options.cert, str) else options.cert
                ctx.load_cert_chain(*cert)
            return ctx
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"Hub: cannot load the TLS settings (verify=/cert=): {exc}") from None

    async def aclose(self) -> None:
        """Close the running loop's pools now (a later request opens new ones)."""
        await self.pools.aclose()


@dataclass(frozen=True)
class _TransportOptions:
    proxy: str | httpx2.Proxy | None
    verify: ssl.SSLContext | str | bool
    cert: str | tuple[str, str] | None
    trust_env: bool
    limits: httpx2.Limits | None


def _check_transport_options(
    factory: object,
    *,
    proxy: str | httpx2.Proxy | None,
    verify: ssl.SSLContext | str | bool,
    cert: str | tuple[str, str] | None,
    trust_env: bool,
    limits: httpx2.Limits | None,
) -> _TransportOptions:
    """Checked at construction: a wrong type fails here, not on the first request."""
    given = proxy is not None or verify is not True or cert is not None or limits is not None
    if factory is not None and given:
        raise ConfigurationError(
            "Hub: transport_factory makes the transports itself; pass proxy/verify/cert/limits to it instead"
        )
    if proxy is not None and not isinstance(proxy, (str, httpx2.Proxy)):
        raise ConfigurationError(f"Hub: proxy must be a URL or an httpx2.Proxy; got {type(proxy).__name__}")
    if not isinstance(verify, (bool, str, ssl.SSLContext)):
        raise ConfigurationError(
            f"Hub: verify must be True/False, a CA bundle path or an ssl.SSLContext; got {type(verify).__name__}"
        )
    if not isinstance(trust_env, bool):
        raise ConfigurationError(f"Hub: trust_env must be True or False; got {trust_env!r}")
    if limits is not None and not isinstance(limits, httpx2.Limits):
        raise ConfigurationError(f"Hub: limits must be an httpx2.Limits; got {type(limits).__name__}")
    return _TransportOptions(proxy, verify, cert, trust_env, limits)


def _pool_limits(given: httpx2.Limits | None, size: int | None, keepalive_expiry: float) -> httpx2.Limits:
    """A key's pool: its in-flight caps of connections, unless the hub's ``limits`` says fewer."""
    if given is None:
        return httpx2.Limits(
            max_connections=size, max_keepalive_connections=size, keepalive_expiry=keepalive_expiry
        )
    most = given.max_connections
    if size is not None and (most is None or most > size):
        most = size
    keep = given.max_keepalive_connections
    return httpx2.Limits(
        max_connections=most,
        max_keepalive_connections=most if keep is None else min(keep, most) if most is not None else keep,
        keepalive_expiry=given.keepalive_expiry,
    )


default_hub: Hub = Hub()
