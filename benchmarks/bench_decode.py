"""Decode speed: rows/s for a 1000-row page of documented-shape appointments and patients.

Three decoders on the same bytes, best of N runs each:
- ``odapi``: our generated models with every wire rule applied (string booleans, datetimes, numbers as
  strings, ``0001-01-01`` → None, unknown enum text kept);
- ``json``: ``json.loads`` plus touching two fields per row (what a hand-rolled client does);
- ``plain``: a msgspec Struct of str/int fields with no rules at all: the practical limit.

Target (issue 2): odapi >= 0.5 x plain. Prints one JSON line and a one-line summary.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from odapi_async._codec import decode_list  # noqa: E402
from odapi_async.resources import Appointment, Patient  # noqa: E402

ROWS = 1000
RUNS = 60


def example_row(name: str) -> dict[str, Any]:
    data = json.loads((ROOT / "spec" / "examples" / name).read_text())["json"]
    return dict(data[0] if isinstance(data, list) else data)


def page(template: dict[str, Any], key: str) -> bytes:
    rows = []
    for i in range(ROWS):
        row = dict(template)
        row[key] = i + 1
        rows.append(row)
    return json.dumps(rows).encode()


def plain_struct(name: str, template: dict[str, Any]) -> type:
    fields = [
        (k, int if isinstance(v, int) and not isinstance(v, bool) else str) for k, v in template.items()
    ]
    return msgspec.defstruct(name, fields)


def best_rates(decoders: dict[str, Any]) -> dict[str, float]:
    """Best-of-N rows/s per decoder, the decoders interleaved round by round so that load from other
    processes hits all of them alike (the ratios are what the target is about)."""
    best = dict.fromkeys(decoders, float("inf"))
    for _ in range(RUNS):
        for name, fn in decoders.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: ROWS / seconds for name, seconds in best.items()}


def measure(raw: bytes, model: type, plain: type, key: str) -> dict[str, float]:
    plain_decoder = msgspec.json.Decoder(list[plain])  # type: ignore[valid-type]
    assert len(decode_list(raw, model)) == ROWS
    return best_rates(
        {
            "odapi": lambda: decode_list(raw, model),
            "json": lambda: [(r[key], r.get("PatNum")) for r in json.loads(raw)],
            "plain": lambda: plain_decoder.decode(raw),
        }
    )


def main() -> None:
    appt = example_row("Appointments__list__1.json")
    pat = example_row("Patients__list__1.json")
    pat["Zip"] = str(pat.get("Zip", ""))  # the docs show a bare number; the server sends text
    results = {
        "appointments": measure(page(appt, "AptNum"), Appointment, plain_struct("A", appt), "AptNum"),
        "patients": measure(page(pat, "PatNum"), Patient, plain_struct("P", pat), "PatNum"),
    }
    for r in results.values():
        r["odapi_vs_plain"] = r["odapi"] / r["plain"]
    print(json.dumps({"benchmark": "decode", "rows_per_page": ROWS, "rows_per_s": results}))
    parts = [
        f"{name}: odapi {r['odapi'] / 1000:.0f}k rows/s, json.loads {r['json'] / 1000:.0f}k, "
        f"plain Struct {r['plain'] / 1000:.0f}k ({r['odapi_vs_plain']:.2f}x plain)"
        for name, r in results.items()
    ]
    ok = all(r["odapi_vs_plain"] >= 0.5 for r in results.values())
    print("decode: " + "; ".join(parts) + f" — target >= 0.5x plain: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
