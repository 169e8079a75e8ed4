"""``odapi emulator`` / ``python -m odapi_async.emulator``: serve the emulator until interrupted.

Prints where it listens, the keys it accepts and a command to try; or, with ``--print-endpoints-json`` (for
scripts and benchmarks that start it as a subprocess), only one JSON line with the endpoints. Then serves
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
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
from odapi_async.emulator._server.faults import FAULT_FIELDS, Faults  # noqa: E402
from odapi_async.emulator._server.throttle import DEFAULT_INTERVALS  # noqa: E402


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parser(prog: str = "python -m odapi_async.emulator") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve a synthetic dental practice over the Open Dental API (local, service and remote "
        "listeners) until Ctrl-C. See docs/emulator.md.",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic practice (default 1)")
    p.add_argument(
        "--patients", type=int, default=200, help="patients in the practice; other tables scale (default 200)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port-local", type=int, default=30222, help="port of the local listener (0: any free)")
    p.add_argument(
        "--port-service", type=int, default=30223, help="port of the service listener (0: any free)"
    )
    p.add_argument(
        "--port-remote", type=int, default=30224, help="port of the remote (throttled) listener (0: any free)"
    )
    p.add_argument("--db", dest="db_path", default=None, help="SQLite file (default: in memory)")
    p.add_argument("--developer-key", default="dev", help="the developer key it accepts (default dev)")
    p.add_argument(
        "--customer-key",
        action="append",
        type=_pair,
        default=[],
        metavar="KEY=TIER",
        help=f"customer key and its tier ({', '.join(TIERS)}); repeatable; default cust-full=full, cust-ro=read_all",
    )
    p.add_argument(
        "--interval",
        action="append",
        type=_pair,
        default=[],
        metavar="TIER=SECONDS",
        help="Remote throttle interval of a tier, e.g. full=0.2; repeatable (default: "
        + ", ".join(f"{tier}={seconds:g}" for tier, seconds in DEFAULT_INTERVALS.items())
        + ")",
    )
    p.add_argument("--bench-keys", type=int, default=0, help="also create keys bench-0 .. bench-N-1")
    p.add_argument(
        "--bench-keys-from",
        type=int,
        default=0,
        metavar="M",
        help="number the bench keys from M: bench-M .. bench-(M+N-1), to split offices over several emulators",
    )
    p.add_argument(
        "--bench-tier", default="full", choices=TIERS, help="tier of the bench keys (default full)"
    )
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
    p.add_argument(
        "--print-endpoints-json",
        action="store_true",
        help="print only the endpoints, as one JSON line (for scripts that start it)",
    )
    return p


def emulator_from_args(args: argparse.Namespace) -> Emulator:
    keys = dict(args.customer_key) or {"cust-full": "full", "cust-ro": "read_all"}
    if args.bench_keys < 0 or args.bench_keys_from < 0:
        raise ValueError("--bench-keys and --bench-keys-from must not be negative")
    for i in range(args.bench_keys_from, args.bench_keys_from + args.bench_keys):
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


def _keys_line(keys: dict[str, str]) -> str:
    """The customer keys and their tiers; the bench keys (hundreds) as one range."""
    bench = sorted(
        (k for k in keys if k.startswith("bench-")), key=lambda k: int(k[6:]) if k[6:].isdigit() else 0
    )
    shown = [f"{k} ({tier})" for k, tier in keys.items() if k not in bench]
    if bench:
        shown.append(f"{bench[0]} .. {bench[-1]} ({keys[bench[0]]})")
    return ", ".join(shown)


def welcome(emu: Emulator) -> str:
    """What a newcomer needs to start: where it listens, which keys it takes, one command that works."""
    endpoints = emu.endpoints
    customer = next(iter(emu.customer_keys), "")
    notes = {"remote": "  (throttled per customer key)"}
    lines = [f"Open Dental API emulator: seed {emu.seed}, {emu.patients} patients. Ctrl-C to stop.", ""]
    lines += [f"  {name:8s} {url}{notes.get(name, '')}" for name, url in endpoints.items()]
    lines += [
        "",
        "Keys it accepts (the emulator's own, made up):",
        f"  developer key   {emu.developer_key}",
        f"  customer keys   {_keys_line(emu.customer_keys)}",
        "",
        "Try it, in another terminal:",
        f"  export ODAPI_DEVELOPER_KEY={shlex.quote(emu.developer_key)}",
        f"  export ODAPI_CUSTOMER_KEY={shlex.quote(customer)}",
        f"  odapi get providers --endpoint local={endpoints['local']} --fields ProvNum,Abbr,LName --format table",
        "",
        "Admin: GET/PUT <listener>/_emulator/stats, /_emulator/faults; the API's OpenAPI document at "
        "<listener>/_emulator/openapi.json",
    ]
    if emu.admin_token is not None:
        lines.append(f"Admin token (Authorization: Bearer ...): {emu.admin_token}")
    return "\n".join(lines)


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
            print(welcome(emu), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None, prog: str = "python -m odapi_async.emulator") -> int:
    args = parser(prog).parse_args(argv)
    try:
        emu = emulator_from_args(args)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(emu, args.print_endpoints_json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
