"""Admin routes need a token whenever the emulator listens beyond loopback (or one is given)."""

from __future__ import annotations

import httpx2
import pytest

from odapi_async.emulator import Emulator
from odapi_async.emulator.__main__ import emulator_from_args, parser
from odapi_async.emulator._server.http import is_loopback

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("192.168.1.5", False), ("myhost.example", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_token_is_made_up_when_bound_beyond_loopback() -> None:
    wide = Emulator(host="0.0.0.0")
    assert wide.admin_token and len(wide.admin_token) >= 20
    assert wide.admin_token not in repr(wide)
    assert Emulator(host="0.0.0.0").admin_token != wide.admin_token
    assert Emulator(host="127.0.0.1").admin_token is None
    assert Emulator(host="0.0.0.0", admin_token="given").admin_token == "given"
    args = parser().parse_args(["--host", "0.0.0.0"])
    assert emulator_from_args(args).admin_token
    args = parser().parse_args(["--host", "0.0.0.0", "--admin-token", "tok"])
    assert emulator_from_args(args).admin_token == "tok"


@pytest.mark.asyncio(loop_scope="session")
async def test_admin_calls_without_the_token_are_refused() -> None:
    async with (
        Emulator(patients=5, developer_key="dev", customer_keys={"k": "full"}, admin_token="s3cret") as emu,
        httpx2.AsyncClient(timeout=5.0) as c,
    ):
        root = emu.endpoints["local"].removesuffix("/api/v1")
        good = {"Authorization": "Bearer s3cret"}
        for method, path, body in [
            ("GET", "/_emulator/stats", None),
            ("POST", "/_emulator/stats/reset", None),
            ("GET", "/_emulator/faults", None),
            ("PUT", "/_emulator/faults", {"latency": 0}),
            ("PUT", "/_emulator/listeners/service", {"up": True}),
        ]:
            for bad in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                r = await c.request(method, root + path, json=body, headers=bad)
                assert r.status_code == 401, (method, path, bad)
                assert "s3cret" not in r.text
            r = await c.request(method, root + path, json=body, headers=good)
            assert r.status_code == 200, (method, path, r.text)
        # the API itself still takes only the ODFHIR keys
        r = await c.get(emu.endpoints["local"] + "/patients", headers={"Authorization": "ODFHIR dev/k"})
        assert r.status_code == 200
