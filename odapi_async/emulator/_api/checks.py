"""The documented preconditions of writes, checked before the write: one table, one line per rule.

The reference pages state rules like "AdjDate cannot be a future date", "Employers associated with a patient
cannot be deleted" or "Only one field is allowed, either confirmVal or defNum". Each rule here is a small
check over the validated call and the practice's rows; a broken one answers 400 with a sentence naming the
rule (the docs quote few texts; where they do, the text is theirs). The checks run before the operation's own
action (``_api.actions``, ``_api.rules``) or its generic handler. What the emulator cannot check (preferences it does
not keep, eServices, files) is listed in docs/emulator.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from odapi_async.emulator._api.handlers import ActionFn, Call, Handlers, Reply
from odapi_async.emulator._practice.db import ApiError, quote_ident

Check = Callable[[Handlers, Call], None]

_ZIP = re.compile(r"^(\d{5}|\d{5}-\d{4}|\d{9})$")
_ZIP_OR_CANADA = re.compile(r"^(\d{5}|\d{5}-\d{4}|\d{9}|[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d)$")
_PATTERN = re.compile(r"^[X/]*$")
_RGB = re.compile(r"^\d{1,3},\d{1,3},\d{1,3}$")


def _given(call: Call, name: str) -> bool:
    return name in call.args


def _current(h: Handlers, call: Call) -> dict[str, Any]:
    """The row a PUT/DELETE names (404 when there is none)."""
    res = call.op.resource
    row = h.practice.row(res, call.key) if call.key is not None else None
    if row is None:
        raise h.not_found(res, call.key)
    return row


def _value(h: Handlers, call: Call, name: str) -> Any:
    """The value a write leaves in ``name``: the one sent, else the row's current one (PUT), else None."""
    if name in call.args:
        return call.args[name]
    if call.key is not None and call.op.method == "PUT":
        return _current(h, call).get(name)
    return None


def _exists(h: Handlers, sql: str, params: Sequence[Any]) -> bool:
    return h.practice.db.execute(sql, tuple(params)).fetchone() is not None


# -- rule makers ----------------------------------------------------------------------------------------------
def only_one_of(*names: str) -> Check:
    def check(h: Handlers, call: Call) -> None:
        if sum(_given(call, n) for n in names) > 1:
            raise ApiError(400, f"Only one of {' or '.join(names)} may be given.")

    return check


def not_blank(name: str) -> Check:
    def check(h: Handlers, call: Call) -> None:
        if _given(call, name) and not str(call.args[name]).strip():
            raise ApiError(400, f"{name} cannot be blank.")

    return check


def in_range(name: str, low: float, high: float) -> Check:
    def check(h: Handlers, call: Call) -> None:
        if _given(call, name) and not low <= float(call.args[name]) <= high:
            raise ApiError(400, f"{name} must be between {low:g} and {high:g}.")

    return check


def matches(name: str, pattern: re.Pattern[str], what: str) -> Check:
    def check(h: Handlers, call: Call) -> None:
        if _given(call, name) and str(call.args[name]) != "" and not pattern.match(str(call.args[name])):
            raise ApiError(400, f"{name} must be {what}.")

    return check


def not_future(name: str) -> Check:
    def check(h: Handlers, call: Call) -> None:
        if _given(call, name) and str(call.args[name])[:10] > h.practice.now_text()[:10]:
            raise ApiError(400, f"{name} cannot be a future date.")

    return check


def unique(column: str, message: str) -> Check:
    """No other row of the resource has this value in ``column`` (ignoring case)."""

    def check(h: Handlers, call: Call) -> None:
        if not _given(call, column):
            return
        res = call.op.resource
        sql = (
            f"SELECT 1 FROM {quote_ident(res.segment)} WHERE {h.practice.col(res, column)} = ? COLLATE NOCASE"
        )
        params: list[Any] = [str(call.args[column]).strip()]
        if call.key is not None and res.pk:
            sql += f" AND {quote_ident(res.pk)} != ?"
            params.append(call.key)
        if _exists(h, sql + " LIMIT 1", params):
            raise ApiError(400, message)

    return check


def refused_when_used(sql: str, message: str) -> Check:
    """A DELETE refused while ``sql`` (one ``?``: the key) finds a row that uses the one named."""

    def check(h: Handlers, call: Call) -> None:
        _current(h, call)
        if _exists(h, sql, (call.key,)):
            raise ApiError(400, message)

    return check


# -- rules that read more than one field ----------------------------------------------------------------------
def _adjustment_sign(h: Handlers, call: Call) -> None:
    """AdjAmt's sign follows its AdjType's ItemValue ("+" or "-")."""
    kind, amount = _value(h, call, "AdjType"), _value(h, call, "AdjAmt")
    if kind is None or amount is None or not (_given(call, "AdjType") or _given(call, "AdjAmt")):
        return
    row = h.practice.db.execute(
        'SELECT "ItemValue" FROM definitions WHERE "DefNum" = ? AND "Category" IN (1, \'1\')', (int(kind),)
    ).fetchone()
    if row is None:
        raise ApiError(400, f"AdjType {kind} is not an adjustment type (definition.Category=1).")
    value = float(amount)
    if row[0] == "+" and value < 0:
        raise ApiError(400, "AdjAmt must be positive for an AdjType whose ItemValue is '+'.")
    if row[0] == "-" and value > 0:
        raise ApiError(400, "AdjAmt must be negative for an AdjType whose ItemValue is '-'.")


def _adjustment_procedure(h: Handlers, call: Call) -> None:
    proc = call.args.get("ProcNum")
    if not proc:
        return
    pat = _value(h, call, "PatNum")
    row = h.practice.db.execute(
        'SELECT "PatNum" FROM procedurelogs WHERE "ProcNum" = ?', (int(proc),)
    ).fetchone()
    if row is None:
        raise ApiError(404, f"Procedure {proc} was not found.")
    if pat is not None and int(row[0]) != int(pat):
        raise ApiError(400, "The procedure must be associated to the patient of the adjustment.")


def _secondary_pattern(h: Handlers, call: Call) -> None:
    if not _given(call, "PatternSecondary"):
        return
    pattern = str(_value(h, call, "Pattern") or "")
    if len(str(call.args["PatternSecondary"])) != len(pattern):
        raise ApiError(400, "PatternSecondary must match the length of Pattern.")


def _benefit_fields(h: Handlers, call: Call) -> None:
    kind = str(_value(h, call, "BenefitType") or "")
    if _given(call, "Percent") and float(call.args["Percent"]) != -1:
        if kind != "CoInsurance":
            raise ApiError(400, "Percent is only allowed if BenefitType is CoInsurance.")
        if not 0 <= float(call.args["Percent"]) <= 100:
            raise ApiError(400, "Percent must be a value between 0 and 100.")
    if _given(call, "Quantity") and not 0 <= int(call.args["Quantity"]) <= 100:
        raise ApiError(400, "Quantity must be a value between 0 and 100.")
    qualifier = str(_value(h, call, "QuantityQualifier") or "")
    if qualifier == "AgeLimit" and _given(call, "Quantity") and int(call.args["Quantity"]) <= 0:
        raise ApiError(400, "Quantity must be greater than 0 if QuantityQualifier is AgeLimit.")
    if kind == "WaitingPeriod" and _given(call, "QuantityQualifier") and qualifier not in ("Months", "Years"):
        raise ApiError(400, "QuantityQualifier must be Months or Years if BenefitType is WaitingPeriod.")
    coded = (_given(call, "CodeNum") and int(call.args["CodeNum"])) or (
        _given(call, "procCode") and str(call.args["procCode"])
    )
    if coded and int(_value(h, call, "CovCatNum") or 0):
        raise ApiError(400, "CodeNum and procCode are only allowed if CovCatNum is 0.")


def _spans_in_order(h: Handlers, call: Call) -> None:
    low, high = _value(h, call, "FromCode"), _value(h, call, "ToCode")
    if low is not None and high is not None and not str(low) < str(high):
        raise ApiError(400, "FromCode must be alphabetically less than ToCode.")


def _claimproc_editable(h: Handlers, call: Call) -> None:
    row = _current(h, call)
    if str(row.get("IsTransfer")).lower() == "true":
        raise ApiError(400, "A ClaimProc that is a transfer (IsTransfer) cannot be updated.")
    if row.get("Status") in ("Adjustment", "InsHist", "CapClaim", "CapComplete", "CapEstimate"):
        raise ApiError(400, f"A ClaimProc with a Status of {row['Status']} cannot be updated.")
    if _given(call, "InsPayAmt") and int(row.get("ClaimPaymentNum") or 0):
        raise ApiError(400, "InsPayAmt cannot be updated once the procedure is attached to a check.")


def _pick_list(h: Handlers, call: Call) -> None:
    kind = str(_value(h, call, "FieldType") or "")
    given = bool(str(call.args.get("PickList") or ""))
    if call.op.method == "POST" and kind == "PickList" and not given:
        raise ApiError(400, "PickList is required if FieldType is PickList.")
    if given and kind != "PickList":
        raise ApiError(400, "PickList is only allowed if FieldType is PickList.")


def _patfield_def_visible(h: Handlers, call: Call) -> None:
    name = call.args.get("FieldName")
    if name is not None and _exists(
        h, 'SELECT 1 FROM patfielddefs WHERE "FieldName" = ? AND "IsHidden" = \'true\'', (str(name),)
    ):
        raise ApiError(400, "PatFields cannot be created for a hidden PatFieldDef.")


def _patplan_once(h: Handlers, call: Call) -> None:
    if _exists(
        h,
        'SELECT 1 FROM patplans WHERE "PatNum" = ? AND "InsSubNum" = ?',
        (call.args.get("PatNum"), call.args.get("InsSubNum")),
    ):
        raise ApiError(400, "This plan is already linked to this InsSub for the patient.")


def _proctp_unsigned(h: Handlers, call: Call) -> None:
    row = _current(h, call)
    plan = h.practice.db.execute(
        'SELECT "isSigned", "DateTSigned" FROM treatplans WHERE "TreatPlanNum" = ?',
        (row.get("TreatPlanNum"),),
    ).fetchone()
    if plan and (str(plan[0]).lower() == "true" or (plan[1] and not str(plan[1]).startswith("0001"))):
        raise ApiError(400, "Only ProcTPs of an unsigned treatment plan can be changed or deleted.")


def _recall_once(h: Handlers, call: Call) -> None:
    if _exists(
        h,
        'SELECT 1 FROM recalls WHERE "PatNum" = ? AND "RecallTypeNum" = ?',
        (call.args.get("PatNum"), call.args.get("RecallTypeNum")),
    ):
        raise ApiError(400, "A patient may only have one recall for each RecallType.")


def _clinic_hidden(h: Handlers, call: Call) -> None:
    if str(call.args.get("IsHidden", "")).lower() == "true" and _exists(
        h, 'SELECT 1 FROM patients WHERE "ClinicNum" = ? LIMIT 1', (call.key,)
    ):
        raise ApiError(400, "A clinic cannot be hidden while patients are attached to it.")


def _codegroup_hidden(h: Handlers, call: Call) -> None:
    if str(_value(h, call, "IsHidden") or "").lower() != "true":
        return
    if any(
        str(_value(h, call, n) or "").lower() == "true"
        for n in ("ShowInAgeLimit", "ShowInFrequency", "ShowInOther")
    ):
        raise ApiError(
            400, "IsHidden cannot be true while ShowInAgeLimit, ShowInFrequency or ShowInOther is true."
        )


def _patient_names_kept(h: Handlers, call: Call) -> None:
    for name in ("LName", "FName"):
        if _given(call, name) and not str(call.args[name]).strip():
            raise ApiError(400, f"{name} cannot be cleared.")


def _billing_type(h: Handlers, call: Call) -> None:
    name = call.args.get("BillingType")
    if (
        name is not None
        and str(name) != ""
        and not _exists(
            h,
            'SELECT 1 FROM definitions WHERE "Category" IN (4, \'4\') AND "ItemName" = ? COLLATE NOCASE',
            (str(name),),
        )
    ):
        raise ApiError(400, "BillingType must be a definition.ItemName where definition.Category=4.")


def _provider_person(h: Handlers, call: Call) -> None:
    if str(call.args.get("IsNotPerson", "")).lower() == "true" and (
        str(call.args.get("FName") or "") or str(call.args.get("MI") or "")
    ):
        raise ApiError(400, "FName and MI must be omitted when IsNotPerson is true.")


def _refattach_provider(h: Handlers, call: Call) -> None:
    if int(call.args.get("ProvNum") or 0) and str(_value(h, call, "ReferralType") or "") != "RefTo":
        raise ApiError(400, "ProvNum can only be specified when ReferralType is RefTo.")


def _password_strength(h: Handlers, call: Call) -> None:
    word = str(call.args.get("Password") or "")
    if word and not (
        len(word) >= 8 and re.search(r"\d", word) and re.search(r"[A-Z]", word) and re.search(r"[a-z]", word)
    ):
        raise ApiError(
            400, "Password must be at least 8 characters with a number, an uppercase and a lowercase letter."
        )


def _user_name(h: Handlers, call: Call) -> None:
    name = str(call.args.get("UserName") or "")
    if name != name.rstrip():
        raise ApiError(400, "UserName cannot end with whitespace.")


def _treatplan_date(h: Handlers, call: Call) -> None:
    if _given(call, "DateTP") and str(_current(h, call).get("TPStatus")) != "Saved":
        raise ApiError(400, "DateTP can only be set if TPStatus is Saved.")


def _patient_family(h: Handlers, call: Call) -> None:
    """PUT: the guarantor moves only when the family's guarantor is the one updated; FamFinUrgNote is theirs."""
    row = _current(h, call)
    is_guarantor = int(row.get("Guarantor") or 0) in (0, int(row["PatNum"]))
    moved = _given(call, "Guarantor") and int(call.args["Guarantor"]) != int(row.get("Guarantor") or 0)
    if moved and not is_guarantor:
        raise ApiError(
            400, "Guarantor cannot be changed unless the family's current guarantor is the patient updated."
        )
    if _given(call, "FamFinUrgNote") and not is_guarantor:
        raise ApiError(400, "FamFinUrgNote can only be set for a guarantor.")


def _patient_referral(h: Handlers, call: Call) -> None:
    if int(_current(h, call).get("PatNum") or 0) and set(call.args) - {"Note", "DisplayNote"}:
        raise ApiError(400, "A referral for a patient can only have its Note and DisplayNote changed.")


_ZIP_US = matches("Zip", _ZIP, "in the format 12345, 12345-1234 or 123456789")
_ZIP_US_CA = matches("Zip", _ZIP_OR_CANADA, "in the format 12345, 12345-1234, 123456789 or A0A 0A0")
_PATTERN_CHECKS: tuple[Check, ...] = (
    matches("Pattern", _PATTERN, "made of 'X' and '/' characters only"),
    matches("PatternSecondary", _PATTERN, "made of 'X' and '/' characters only"),
    matches("colorOverride", _RGB, "a color in R,G,B format"),
    _secondary_pattern,
)

#: The documented preconditions per (url segment, operation id), checked in order before the write.
CHECKS: dict[tuple[str, str], tuple[Check, ...]] = {
    ("adjustments", "create"): (not_future("AdjDate"), _adjustment_sign, _adjustment_procedure),
    ("adjustments", "update"): (not_future("AdjDate"), _adjustment_sign, _adjustment_procedure),
    ("appointments", "create"): _PATTERN_CHECKS,
    ("appointments", "update"): _PATTERN_CHECKS,
    ("appointments", "Planned"): _PATTERN_CHECKS,
    ("appointments", "Confirm"): (only_one_of("confirmVal", "defNum"),),
    ("apptfielddefs", "create"): (
        unique("FieldName", "An ApptFieldDef with that FieldName already exists."),
    ),
    ("benefits", "create"): (_benefit_fields,),
    ("benefits", "update"): (_benefit_fields,),
    ("carriers", "create"): (_ZIP_US,),
    ("carriers", "update"): (_ZIP_US,),
    ("claimpayments", "delete"): (
        refused_when_used(
            'SELECT 1 FROM claimpayments WHERE "ClaimPaymentNum" = ? AND "DepositNum" != 0',
            "A claimpayment attached to a deposit cannot be deleted.",
        ),
        refused_when_used(
            'SELECT 1 FROM eobattaches WHERE "ClaimPaymentNum" = ? LIMIT 1',
            "A claimpayment with an EOB attached cannot be deleted.",
        ),
    ),
    ("claimprocs", "update"): (_claimproc_editable,),
    ("covcats", "create"): (in_range("DefaultPercent", -1, 100),),
    ("covcats", "update"): (in_range("DefaultPercent", -1, 100),),
    ("covspans", "create"): (_spans_in_order,),
    ("covspans", "update"): (_spans_in_order,),
    ("employers", "delete"): (
        refused_when_used(
            'SELECT 1 FROM patients WHERE "EmployerNum" = ?1 '
            'UNION ALL SELECT 1 FROM insplans WHERE "EmployerNum" = ?1 LIMIT 1',
            "Employers associated with a patient or an insurance plan cannot be deleted.",
        ),
    ),
    ("laboratories", "create"): (_ZIP_US_CA,),
    ("laboratories", "update"): (_ZIP_US_CA,),
    ("patfielddefs", "create"): (
        unique("FieldName", "A PatFieldDef with that FieldName already exists."),
        _pick_list,
    ),
    ("patfielddefs", "update"): (
        unique("FieldName", "A PatFieldDef with that FieldName already exists."),
        _pick_list,
    ),
    ("patfielddefs", "delete"): (
        refused_when_used(
            'SELECT 1 FROM patfields f JOIN patfielddefs d ON d."FieldName" = f."FieldName" '
            'WHERE d."PatFieldDefNum" = ? LIMIT 1',
            "A PatFieldDef that is in use cannot be deleted.",
        ),
    ),
    ("patfields", "create"): (_patfield_def_visible,),
    ("patfields", "delete"): (
        refused_when_used(
            'SELECT 1 FROM patfields f JOIN patfielddefs d ON d."FieldName" = f."FieldName" '
            'WHERE f."PatFieldNum" = ? AND d."FieldType" = \'CareCreditStatus\'',
            "A PatField of a CareCreditStatus PatFieldDef cannot be deleted.",
        ),
    ),
    ("patients", "create"): (
        only_one_of("Guarantor", "SuperFamily"),
        _ZIP_US_CA,
        _billing_type,
        _patient_names_kept,
    ),
    ("patients", "update"): (
        _patient_family,
        only_one_of("Guarantor", "SuperFamily"),
        _ZIP_US_CA,
        _billing_type,
        _patient_names_kept,
    ),
    ("patplans", "create"): (_patplan_once,),
    ("procedurecodes", "create"): (in_range("BaseUnits", 0, 2**31 - 1),),
    ("procedurecodes", "update"): (in_range("BaseUnits", 0, 2**31 - 1),),
    ("procedurelogs", "create"): (only_one_of("Priority", "priority"), only_one_of("Dx", "dxName")),
    ("procedurelogs", "update"): (only_one_of("CodeNum", "procCode"),),
    ("proctps", "update"): (_proctp_unsigned,),
    ("proctps", "delete"): (_proctp_unsigned,),
    ("providers", "create"): (_provider_person, matches("SSN", re.compile(r"^[^-]*$"), "without dashes")),
    ("providers", "update"): (not_blank("Abbr"), matches("SSN", re.compile(r"^[^-]*$"), "without dashes")),
    ("recalls", "create"): (_recall_once,),
    ("referrals", "create"): (matches("Telephone", re.compile(r"^\d{10}$"), "ten digits"),),
    ("referrals", "update"): (_patient_referral, matches("Telephone", re.compile(r"^\d{10}$"), "ten digits")),
    ("treatplans", "update"): (_treatplan_date,),
    ("refattaches", "create"): (_refattach_provider,),
    ("refattaches", "update"): (_refattach_provider,),
    ("tasknotes", "create"): (not_blank("Note"),),
    ("tasknotes", "update"): (not_blank("Note"),),
    ("userods", "create"): (
        unique("UserName", "A user with that UserName already exists."),
        _user_name,
        _password_strength,
    ),
    ("clinics", "update"): (_clinic_hidden,),
    ("codegroups", "create"): (_codegroup_hidden,),
    ("codegroups", "update"): (_codegroup_hidden,),
}


def checked(action: ActionFn | None, checks: Sequence[Check]) -> ActionFn:
    """An action that runs ``checks`` first, then ``action`` (or the generic handler when there is none)."""

    def run(h: Handlers, call: Call) -> Reply:
        for check in checks:
            check(h, call)
        return action(h, call) if action is not None else h.standard(call)

    return run


def with_checks(actions: dict[tuple[str, str], ActionFn]) -> dict[tuple[str, str], ActionFn]:
    """``actions`` with every documented precondition of :data:`CHECKS` put in front."""
    out = dict(actions)
    for key, checks in CHECKS.items():
        out[key] = checked(actions.get(key), checks)
    return out
