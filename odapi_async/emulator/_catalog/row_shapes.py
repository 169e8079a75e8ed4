"""Rows as the docs show them where that differs from the resource's full field list or its stored form.

The spec gives one field list per resource (the union of what its examples show) and one wire form per field.
A few answers are documented narrower or typed differently: Patients GET (multiple) answers 25 fields,
not 48; ProcedureLogs GET sends ``AptNum`` as a number although its PUT example sends a string. The tables
below are read off the documented examples (``spec/examples``), GET and write answers alike;
``tests/emulator/test_emu_conformance.py`` holds the emulator to them.
"""

from __future__ import annotations

from collections.abc import Mapping

from odapi_async.emulator._catalog.routes import Operation

_DOCUMENT_ROW = (
    "DocNum", "Description", "DateCreated", "DocCategory", "docCategory", "PatNum", "FileName", "ImgType",
    "ToothNumbers", "DateTStamp", "ProvNum", "PrintHeading",
)  # fmt: skip

#: Documented row (field names in the docs' order) per (url segment, operation id).
ROW_FIELDS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("patients", "list"): (
        "PatNum", "LName", "FName", "MiddleI", "Preferred", "PatStatus", "Birthdate", "SSN", "Address",
        "Address2", "City", "State", "Zip", "HmPhone", "WkPhone", "WirelessPhone", "Email", "priProvAbbr",
        "secProvAbbr", "BillingType", "ChartNumber", "ClinicNum", "clinicAbbr", "siteDesc", "TxtMsgOk",
    ),
    # Documents: GET single and the writes answer one row, GET multiple and UploadSftp others.
    ("documents", "get"): _DOCUMENT_ROW,
    ("documents", "update"): _DOCUMENT_ROW,
    ("documents", "Upload"): _DOCUMENT_ROW,
    ("documents", "SetByUrl"): _DOCUMENT_ROW,
    ("documents", "list"): (
        "DocNum", "MountNum", "filePath", "Description", "PatNum", "Note", "DateCreated", "docCategory",
        "DocCategory", "ToothNumbers", "ProvNum", "PrintHeading", "DateTStamp", "serverDateTime",
    ),
    ("documents", "UploadSftp"): (
        "DocNum", "filePath", "Description", "ToothNumbers", "Note", "DateCreated", "DateTStamp", "DocCategory",
        "docCategory", "serverDateTime",
    ),
    ("userods", "create"): (
        "UserNum", "UserName", "EmployeeNum", "employeeName", "ProviderNum", "providerName", "ClinicNum",
        "emailAddress", "IsHidden", "UserGroupNum", "Password", "IsPasswordResetRequired",
    ),
    ("userods", "update"): (
        "UserNum", "UserName", "userGroupNums", "EmployeeNum", "employeeName", "ProviderNum", "providerName",
        "ClinicNum", "emailAddress", "IsHidden", "UserNumCEMT", "IsPasswordResetRequired",
    ),
}  # fmt: skip

#: Fields left out of some answers: appointments' write answers carry no serverDateTime (GETs do).
ROW_OMIT: Mapping[tuple[str, str], frozenset[str]] = {
    ("appointments", op): frozenset({"serverDateTime"})
    for op in ("create", "update", "Planned", "SchedulePlanned", "PostWebSched")
}

#: Fields only POST takes, never in a GET answer (the Userods POST answer does echo them, as documented).
WRITE_ONLY: Mapping[str, frozenset[str]] = {"userods": frozenset({"Password", "UserGroupNum"})}
#: The docs' one-off typo keys: SubstitutionLinks' list example spells its key ``SubstiutionLinkNum``; the
#: other examples and the server use the real name, so no answer carries the typo.
TYPO_KEYS: Mapping[str, frozenset[str]] = {"substitutionlinks": frozenset({"SubstiutionLinkNum"})}

_PROC_NUMBERS = {"AptNum": "number", "PlannedAptNum": "number", "ClinicNum": "number"}
_DOC_NUMBERS = {"PatNum": "number", "ProvNum": "number"}
_BOOL_ORTHO = {"IsOrtho": "Bool"}

#: JSON form per field where a documented answer differs from the stored (wire) form:
#: "number", "string", or "Bool" (booleans capitalised, "True"/"False").
ROW_FORMS: Mapping[tuple[str, str], Mapping[str, str]] = {
    ("procedurelogs", "get"): _PROC_NUMBERS,
    ("procedurelogs", "list"): _PROC_NUMBERS,
    ("procedurelogs", "PostInsuranceHistory"): _PROC_NUMBERS,
    ("procedurelogs", "create"): {"AptNum": "number", "PlannedAptNum": "number"},  # ClinicNum stays text here
    ("fees", "get"): {"Amount": "number"},
    ("fees", "list"): {"Amount": "number"},
    ("schedules", "get"): {"ScheduleNum": "string"},
    ("schedules", "list"): {"ScheduleNum": "string"},
    ("documents", "get"): _DOC_NUMBERS,
    ("documents", "update"): _DOC_NUMBERS,
    ("documents", "Upload"): _DOC_NUMBERS,
    ("documents", "SetByUrl"): _DOC_NUMBERS,
    ("claims", "get"): _BOOL_ORTHO,
    ("claims", "list"): _BOOL_ORTHO,
    ("claims", "create"): _BOOL_ORTHO,
    ("claims", "update"): _BOOL_ORTHO,
    ("claims", "Status"): _BOOL_ORTHO,
    ("appointments", "GetWebSched"): {"IsHygiene": "Bool"},
}


def row_forms(op: Operation) -> Mapping[str, str]:
    """JSON forms that differ from the stored ones for the rows of ``op`` (empty for most)."""
    return ROW_FORMS.get((op.resource.segment, op.id), {})


def row_fields(op: Operation) -> tuple[str, ...] | None:
    """The documented row of an operation, or None when it is the resource's full field list."""
    res = op.resource
    fields = ROW_FIELDS.get((res.segment, op.id))
    hidden = TYPO_KEYS.get(res.segment, frozenset()) | ROW_OMIT.get((res.segment, op.id), frozenset())
    if op.method == "GET":
        hidden |= WRITE_ONLY.get(res.segment, frozenset())
    if hidden:
        fields = tuple(f for f in (fields or tuple(f.name for f in res.fields)) if f not in hidden)
    return fields


def render(column: str, form: str | None) -> str:
    """SQL rendering a stored column in the given JSON form."""
    if form == "number":
        return f"CASE WHEN typeof({column}) = 'text' AND {column} GLOB '*[0-9]*' THEN {column} + 0 ELSE {column} END"
    if form == "string":
        return f"CAST({column} AS TEXT)"
    if form == "Bool":
        return f"CASE {column} WHEN 'true' THEN 'True' WHEN 'false' THEN 'False' ELSE {column} END"
    return column
