"""``python -m odapi_async.emulator``: serve the emulator until interrupted.

Prints one JSON line with the endpoints on stdout when ``--print-endpoints-json`` is given (for scripts and
benchmarks that start it as a subprocess), then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

from odapi_async._util.optional import MissingExtra, require_extra


def _check_extra() -> None:
    """Run as a script without the extra: one line and exit 2; imported (by ``odapi emulator``): raise."""
    try:
        require_extra("emulator", "the emulator")
    except MissingExtra as missing:
        if __name__ != "__main__":
            raise
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(2)


_check_extra()

from odapi_async.emulator._emulator import TIERS, Emulator  # noqa: E402 (after the extra check)
from odapi_async.emulator._faults import FAULT_FIELDS, Faults  # noqa: E402


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m odapi_async.emulator", description=__doc__)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--patients", type=int, default=200)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port-local", type=int, default=30222)
    p.add_argument("--port-service", type=int, default=30223)
    p.add_argument("--port-remote", type=int, default=30224)
    p.add_argument("--db", dest="db_path", default=None, help="SQLite file (default: in memory)")
    p.add_argument("--developer-key", default="dev")
    p.add_argument(
        "--customer-key",
        action="append",
        type=_pair,
        default=[],
        metavar="KEY=TIER",
        help=f"customer key and its tier ({', '.join(TIERS)}); repeatable; default cust-full=full, cust-ro=read_all",
    )
    p.add_argument("--interval", action="append", type=_pair, default=[], metavar="TIER=SECONDS")
    p.add_argument("--bench-keys", type=int, default=0, help="also create keys bench-0 .. bench-N-1")
    p.add_argument("--bench-tier", default="full", choices=TIERS)
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="LISTENER:NAME=VALUE",
        help=f"fault setting, e.g. remote:rate_504=0.1 ({', '.join(sorted(FAULT_FIELDS))}); repeatable",
    )
    p.add_argument(
        "--admin-token",
        default=None,
        help="token the admin routes require (Authorization: Bearer ...); made up and printed when --host is "
        "not a loopback address and none is given",
    )
    p.add_argument(
        "--fractional-retry-after",
        action="store_true",
        help="send Retry-After with milliseconds (fast tests) instead of whole seconds",
    )
    p.add_argument("--print-endpoints-json", action="store_true", help="print the endpoints as one JSON line")
    return p


def emulator_from_args(args: argparse.Namespace) -> Emulator:
    keys = dict(args.customer_key) or {"cust-full": "full", "cust-ro": "read_all"}
    for i in range(args.bench_keys):
        keys[f"bench-{i}"] = args.bench_tier
    faults: dict[str, dict[str, float]] = {}
    for spec in args.fault:
        listener, _, setting = spec.partition(":")
        name, value = _pair(setting)
        faults.setdefault(listener, {})[name] = float(value)
    return Emulator(
        seed=args.seed,
        patients=args.patients,
        developer_key=args.developer_key,
        customer_keys=keys,
        intervals={tier: float(v) for tier, v in args.interval},
        ports={"local": args.port_local, "service": args.port_service, "remote": args.port_remote},
        db_path=args.db_path,
        faults={name: Faults(**values) for name, values in faults.items()},
        host=args.host,
        fractional_retry_after=args.fractional_retry_after,
        admin_token=args.admin_token,
    )


async def serve(emu: Emulator, print_json: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with emu:
        if print_json:
            print(json.dumps(emu.endpoints), flush=True)
            if emu.admin_token is not None:  # stdout carries one JSON line; the token goes to stderr
                print(f"admin token: {emu.admin_token}", file=sys.stderr, flush=True)
        else:
            for name, url in emu.endpoints.items():
                print(f"{name:8s} {url}", flush=True)
            print(
                "admin    GET/PUT <listener>/_emulator/stats, /_emulator/faults; Ctrl-C to stop", flush=True
            )
            if emu.admin_token is not None:
                print(f"admin token (Authorization: Bearer ...): {emu.admin_token}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        emu = emulator_from_args(args)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(emu, args.print_endpoints_json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
