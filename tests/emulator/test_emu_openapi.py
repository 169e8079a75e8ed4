"""The OpenAPI 3.1 document generated from the spec, and generated cases from it against the emulator.

Schemathesis draws requests from the document (valid ones, then ones that break it) and sends them over real
sockets to an emulator of its own (its writes must not disturb the shared one). Two checks per answer: no
server error (5xx) and the answer matches the document (status, content type, JSON schema). The run is
bounded and deterministic (``derandomize``): a few hundred cases, the same ones every time.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from odapi_async._spec import load_spec  # noqa: E402
from odapi_async.emulator import Emulator  # noqa: E402
from odapi_async.openapi import openapi_document  # noqa: E402

pytestmark = pytest.mark.integration

#: Cases per generation mode: valid requests (every operation gets one or more), and broken ones.
CASES = {GenerationMode.POSITIVE: 360, GenerationMode.NEGATIVE: 120}
AUTH = {"Authorization": "ODFHIR dev/cust-full"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=3, patients=60, intervals={"full": 0.0}).in_thread() as emu:
        yield emu


def test_the_document_describes_every_operation() -> None:
    doc = openapi_document("http://example.invalid/api/v1")
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": "http://example.invalid/api/v1"}]
    documented = {(m.upper(), path) for path, item in doc["paths"].items() for m in item}
    expected = {(op["method"], op["path"]) for res in load_spec()["resources"] for op in res["operations"]}
    assert documented == expected and len(expected) == 356
    schema = schemathesis.openapi.from_dict(doc)
    loaded = list(schema.get_all_operations())
    assert len(loaded) == 356 and all(op.ok() for op in loaded)  # each one loads without an error
    refund = doc["paths"]["/payments/Refund"]["post"]
    assert refund["requestBody"]["content"]["application/json"]["schema"]["required"] == ["PayNum"]
    assert set(refund["responses"]) >= {"201", "400", "404"}


def test_the_document_needs_no_server_packages() -> None:
    """``python -m odapi_async.openapi`` prints the document without importing starlette or uvicorn."""
    import json
    import subprocess
    import sys

    code = (
        "import runpy, sys; sys.argv = ['x', '--server', 'http://h/api/v1']; "
        "runpy.run_module('odapi_async.openapi', run_name='__main__')"
    )
    probe = "import sys, odapi_async.openapi; print(sorted({'starlette', 'uvicorn'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and json.loads(run.stdout)["servers"] == [{"url": "http://h/api/v1"}]
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "[]"


def test_the_emulator_serves_the_document(emulator: Emulator) -> None:
    base = emulator.endpoints["local"]
    r = requests.get(base.removesuffix("/api/v1") + "/_emulator/openapi.json", timeout=10)
    assert r.status_code == 200 and r.json()["servers"] == [{"url": base}]


def _short(exc: BaseException) -> str:
    """The lines of a schemathesis failure report that say what broke (its curl line has no keys: filtered)."""
    keep = re.compile(r"ST\d+|Server error|is not|does not match|Undocumented|was expected|curl ")
    lines = [line.strip() for line in str(exc).splitlines() if keep.search(line)]
    return " | ".join(dict.fromkeys(lines))[:600]


@pytest.mark.parametrize("mode", list(CASES), ids=lambda m: m.value)
def test_generated_cases_get_no_server_error_and_match_the_document(emulator: Emulator, mode: Any) -> None:
    base = emulator.endpoints["local"]
    schema = schemathesis.openapi.from_dict(openapi_document(base))
    session = requests.Session()
    failures: dict[tuple[str, str], str] = {}
    sent: Counter[str] = Counter()
    emulator.reset_stats()

    @settings(
        max_examples=CASES[mode],
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        sent[case.method] += 1
        try:
            case.call_and_validate(
                base_url=base,
                session=session,
                headers=AUTH,
                checks=[not_a_server_error, response_schema_conformance],
                timeout=10,
            )
        except Exception as exc:  # every distinct failure is reported, not only the first one
            failures.setdefault((case.method, case.path), _short(exc))

    started = time.monotonic()
    run()
    took = time.monotonic() - started
    statuses = emulator.stats()["listeners"]["local"]["statuses"]
    print(f"\n{mode.value}: {sum(sent.values())} cases {dict(sent)} in {took:.1f} s; statuses {statuses}")
    assert sum(sent.values()) == CASES[mode]
    assert not failures, "\n".join(f"{m} {p}: {text}" for (m, p), text in sorted(failures.items()))
    assert "500" not in statuses
    if mode is GenerationMode.POSITIVE:  # valid requests mostly get past validation: the run reaches handlers
        assert int(statuses.get("200", 0)) + int(statuses.get("201", 0)) > CASES[mode] // 4
