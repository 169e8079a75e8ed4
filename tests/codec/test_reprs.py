"""A model's repr masks the fields that identify a person (``MASKED_FIELDS``); the values stay as they are."""

from __future__ import annotations

import json

import msgspec
from rich.pretty import pretty_repr

import odapi_async.resources as resources
from odapi_async._codec import MASKED_FIELDS, DynamicRow, decode_list, decode_one
from odapi_async.resources import InsSub, Patient, Provider
from odapi_async.resources._generated import MODELS

WIRE = json.dumps(
    {
        "PatNum": 48,
        "LName": "Alvarez",
        "FName": "Rosa",
        "SSN": "123456789",
        "Birthdate": "1961-02-03",
        "MedicaidID": "MCD-77881",
        "ChartNumber": "CH-4411",
        "HmPhone": "(503)555-0100",
    }
).encode()
SECRETS = ("123456789", "1961", "MCD-77881", "CH-4411")


def test_a_decoded_patients_repr_masks_its_identifiers_and_keeps_the_rest() -> None:
    pat = decode_one(WIRE, Patient)
    text = repr(pat)
    for secret in SECRETS:
        assert secret not in text
    for name in ("SSN", "Birthdate", "MedicaidID", "ChartNumber"):
        assert f"{name}=<masked>" in text
    assert (
        "LName='Alvarez'" in text
        and "HmPhone='(503)555-0100'" in text
        and text.startswith("Patient(PatNum=48")
    )


def test_the_values_themselves_are_untouched() -> None:
    (pat,) = decode_list(b"[" + WIRE + b"]", Patient)
    assert pat.SSN == "123456789" and pat.MedicaidID == "MCD-77881" and str(pat.Birthdate) == "1961-02-03"
    assert pat.to_dict()["SSN"] == "123456789"
    assert b'"SSN":"123456789"' in msgspec.json.encode(pat)


def test_rich_and_containers_mask_too() -> None:
    pat = decode_one(WIRE, Patient)
    for text in (pretty_repr(pat), repr([pat]), str({"row": pat})):
        assert "123456789" not in text and "<masked>" in text


def test_defaults_are_still_left_out_and_an_empty_identifier_is_not_shown() -> None:
    assert repr(Patient(PatNum=1)) == "Patient(PatNum=1)"
    assert repr(Provider(ProvNum=2, SSN="")) == "Provider(ProvNum=2)"
    assert repr(InsSub(SubscriberID="W123")) == "InsSub(SubscriberID=<masked>)"
    assert repr(Patient(PatNum=1, LName="O'Brien")) == """Patient(PatNum=1, LName="O'Brien")"""


def test_dynamic_rows_mask_the_same_columns_in_any_case() -> None:
    row = DynamicRow({"PatNum": 5, "ssn": "987654321", "LName": "Kim", "birthdate": None})
    assert repr(row) == "DynamicRow({'PatNum': 5, 'ssn': <masked>, 'LName': 'Kim', 'birthdate': None})"
    assert row["ssn"] == "987654321"


def test_every_masked_name_is_a_field_of_some_model() -> None:
    """The list names real fields (a renamed field in the spec would otherwise slip through unmasked)."""
    fields = {f for name in MODELS for f in getattr(resources, name).__struct_fields__}
    assert MASKED_FIELDS <= fields, MASKED_FIELDS - fields
