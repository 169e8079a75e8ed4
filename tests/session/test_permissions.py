"""API permission groups: carried from the docs' table into the spec and the operations, enforced by the emulator
when configured, named in the SDK's 401, and warned about before a read-only key writes."""

from __future__ import annotations

import warnings

import pytest
from emulators import emulator_fixture

from odapi_async import Hub, OpenDental, PermissionWarning, Unauthorized
from odapi_async._settings import Tier
from odapi_async._spec import load_spec
from odapi_async.emulator import Emulator

pytestmark = [pytest.mark.integration]
module_loop = pytest.mark.asyncio(loop_scope="module")

DEV = "dev-perm"


def test_every_operation_carries_its_group() -> None:
    groups = {}
    for res in load_spec()["resources"]:
        for op in res["operations"]:
            assert op.get("permission"), (res["name"], op["id"])
            groups[(res["url_segment"], op["id"])] = op["permission"]
            if op["method"] == "GET":
                assert op["permission"] == "Read All", (res["name"], op["id"])
    assert groups[("appointments", "Break")] == "Comm"
    assert groups[("appointments", "create")] == "Appointments"
    assert groups[("queries", "ShortQuery")] == "Queries"
    assert groups[("payments", "create")] == "Payments"
    assert groups[("patients", "update")] == "Patients"
    assert groups[("documents", "Upload")] == "Documents"
    assert groups[("documents", "SetByUrl")] == "AllOthers"
    assert (
        groups[("subscriptions", "create")] == "Read All"
    )  # the table lists Subscriptions POST under Read All
    assert groups[("covcats", "update")] == "Setup"  # the docs misspell it "CoCats PUT"
    from odapi_async.resources._generated.appointments import _OP_Break  # the generated operations carry it

    assert _OP_Break.permission == "Comm"


emu = emulator_fixture(
    seed=2,
    patients=50,
    developer_key=DEV,
    customer_keys={"cust-comm": "full", "cust-ro": "read_all", "cust-all": "full"},
    permissions={"cust-comm": {"Read All", "Comm"}, "cust-ro": {"Read All"}},
    intervals={"full": 0.01, "read_all": 0.01},
)


def session(emu: Emulator, key: str, tier: Tier = "full") -> OpenDental:
    return OpenDental(DEV, key, endpoints=emu.endpoints, modes=("local",), tier=tier, hub=Hub())


@module_loop
async def test_the_401_names_the_group_the_key_lacks(emu) -> None:
    async with session(emu, "cust-comm") as od:
        made = await od.commlogs.create(PatNum=1, Note="called about the recall")  # Comm: granted
        assert made.PatNum == 1
        with pytest.raises(Unauthorized) as err:
            await od.patients.create(LName="Doe", FName="Jane")  # Patients: not granted
    assert err.value.permission == "Patients"
    assert "patients.create needs the API permission 'Patients'" in str(err.value)
    assert err.value.explanation.startswith("This customer key does not have")  # the server's own text
    async with session(emu, "cust-all") as od:
        assert (await od.patients.create(LName="Doe", FName="Jane")).LName == "Doe"  # a key with every group


@module_loop
async def test_a_read_only_key_is_warned_before_a_write(emu) -> None:
    before = emu.stats()["listeners"]["local"]["requests"]
    async with session(emu, "cust-ro", tier="read_all") as od:
        with pytest.warns(PermissionWarning, match=r"commlogs.create\(\) needs the API permission 'Comm'"):
            with pytest.raises(Unauthorized):
                await od.commlogs.create(PatNum=1, Note="x")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # reads never warn
            assert (await od.patients.get(1)).PatNum == 1
    assert emu.stats()["listeners"]["local"]["requests"] - before == 2


def test_the_emulator_checks_its_permission_settings() -> None:
    with pytest.raises(ValueError, match="unknown permission group"):
        Emulator(customer_keys={"k": "full"}, permissions={"k": {"Read Everything"}})
    with pytest.raises(ValueError, match="unknown customer key"):
        Emulator(customer_keys={"k": "full"}, permissions={"other": {"Read All"}})
