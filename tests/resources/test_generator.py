"""What the generator takes from the spec beyond names and types: primary keys and idempotency.

Each assertion reads the spec itself, so it cannot merely repeat a default of the generator.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from odapi_async import OpenDental
from odapi_async._codec import Model
from odapi_async._spec import load_spec
from odapi_async.resources._generated import MODELS

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec()
RESOURCES = {r["name"]: r for r in SPEC["resources"]}


def _generator() -> Any:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module("generate")
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def _model(name: str) -> type[Model]:
    module = importlib.import_module(f"odapi_async.resources._generated.{MODELS[name]}")
    model: type[Model] = getattr(module, name)
    return model


def _resource_model(resource: dict[str, Any]) -> type[Model]:
    return _model(_generator().singular(resource["name"]))


WITH_FIELDS = [r for r in SPEC["resources"] if r["fields"]]


@pytest.mark.parametrize("resource", WITH_FIELDS, ids=[r["name"] for r in WITH_FIELDS])
def test_every_resource_model_carries_the_spec_primary_key(resource: dict[str, Any]) -> None:
    model = _resource_model(resource)
    key = resource["primary_key"]
    fields = {f["name"] for f in resource["fields"]}
    if key and key in fields:
        assert model.__od_primary_key__ == key
        assert key.endswith("Num")
        assert key in model.__struct_fields__
    else:
        # No key in the spec (securityperms), or rows that do not carry it (apptfields): nothing to dedupe by.
        assert model.__od_primary_key__ is None


def test_keys_cover_the_spec() -> None:
    keyed = [r for r in WITH_FIELDS if r["primary_key"] in {f["name"] for f in r["fields"]}]
    assert len(keyed) >= 95
    assert {_resource_model(r).__od_primary_key__ for r in keyed} == {r["primary_key"] for r in keyed}
    assert _model("Appointment").__od_primary_key__ == "AptNum"
    assert _model("Patient").__od_primary_key__ == "PatNum"
    assert _model("ApptField").__od_primary_key__ is None
    assert Model.__od_primary_key__ is None


def test_operation_models_keep_the_key_only_where_it_identifies_the_row() -> None:
    # patients/Simple and appointments/WebSched list the resource's own rows, key first.
    assert _model("PatientsSimpleRow").__od_primary_key__ == "PatNum"
    assert _model("AppointmentsGetWebSchedRow").__od_primary_key__ == "AptNum"
    # InsuranceHistory gives a row per category, several may name one ProcNum: deduping by it would lose rows.
    assert _model("ProcedureLogsGetInsuranceHistoryRow").__od_primary_key__ is None
    assert _model("ProcedureLogsGroupNotesRow").__od_primary_key__ is None
    assert _model("AccountModulesPatientBalancesRow").__od_primary_key__ is None


def test_every_post_in_the_spec_is_not_idempotent() -> None:
    od = OpenDental("d", "c")
    posts = [(r, op) for r in SPEC["resources"] for op in r["operations"] if op["method"] == "POST"]
    assert len(posts) > 50
    for resource, op in posts:
        assert op["idempotent"] is False, f"{resource['name']}.{op['id']}"
        method = getattr(getattr(od, resource["url_segment"]), op["id"])
        assert method.__func__.__globals__[f"_OP_{op['id']}"].idempotent is False


def test_every_operation_states_its_idempotency() -> None:
    for resource in SPEC["resources"]:
        for op in resource["operations"]:
            assert isinstance(op.get("idempotent"), bool), f"{resource['name']}.{op['id']}"


def test_generator_treats_a_missing_flag_as_not_idempotent() -> None:
    resource = {
        "name": "Widgets",
        "url_segment": "widgets",
        "primary_key": "WidgetNum",
        "fields": [{"name": "WidgetNum", "type": "int"}],
        "operations": [
            {
                "id": "update",
                "method": "PUT",
                "path": "/widgets/{WidgetNum}",
                "returns": "none",
                "path_params": [{"name": "WidgetNum", "type": "int", "required": True}],
            },
        ],
    }
    text, _ = _generator().render_resource(resource)
    assert "idempotent=False," in text
    assert "__od_primary_key__: ClassVar[Optional[str]] = 'WidgetNum'" in text
    resource["operations"][0]["idempotent"] = True  # type: ignore[index]
    assert "idempotent=True," in _generator().render_resource(resource)[0]
