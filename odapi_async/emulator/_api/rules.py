"""Writes the docs restrict: refunds, claim and procedure deletes, group notes, uniquely named definitions.

Each function answers one (url segment, operation id) like the actions in ``_api.actions``; the refusals are 400s
(404 for a missing row) whose text says which documented rule the request broke.
"""

from __future__ import annotations

from typing import Any

import msgspec

from odapi_async.emulator._api.handlers import ActionFn, Call, Handlers, Reply
from odapi_async.emulator._practice.db import ApiError, quote_ident

#: Procedure statuses the docs allow a DELETE on.
DELETABLE_PROC_STATUSES = ("TP", "TPi", "C")
#: The procedure code of a group note (the desktop program's own code for them).
GROUP_NOTE_CODE = "~GRP~"
#: Side table of group notes' members (the desktop program's procgroupitem).
GROUP_ITEMS_TABLE = "emu_procgroupitems"
#: The claim status the docs refuse a DELETE for (Received).
RECEIVED = "R"


def _res(h: Handlers, segment: str) -> Any:
    return h.practice.cat.resources[segment]


def _row(h: Handlers, segment: str, key: int | None) -> dict[str, Any]:
    res = _res(h, segment)
    row = h.practice.row(res, key) if key is not None else None
    if row is None:
        raise h.not_found(res, key)
    return row


def _any(h: Handlers, sql: str, params: tuple[Any, ...]) -> bool:
    return h.practice.db.execute(sql, params).fetchone() is not None


def _table_has(h: Handlers, table: str, column: str) -> bool:
    return any(r[1] == column for r in h.practice.db.execute(f"PRAGMA table_info({quote_ident(table)})"))


# -- payments -------------------------------------------------------------------------------------------------
def _negated(value: Any) -> Any:
    """An amount with the opposite sign, in the form the store keeps it (text for numeric-string amounts)."""
    if isinstance(value, str):
        return f"{-float(value or 0):.2f}"
    return -float(value or 0)


def payment_refund(h: Handlers, call: Call) -> Reply:
    """A new payment of the opposite amount for the same patient, with its splits reversed."""
    pays, splits = _res(h, "payments"), _res(h, "paysplits")
    pay_num = int(call.args["PayNum"])
    original = h.practice.row(pays, pay_num)
    if original is None:
        raise ApiError(404, f"Payment {pay_num} was not found.")
    its_splits = h.practice.rows(splits, '"PayNum" = ?', (pay_num,))
    if any(int(s.get("PayPlanNum") or 0) for s in its_splits):
        raise ApiError(400, "Payments attached to a payment plan cannot be refunded.")
    if any(float(s.get("SplitAmt") or 0) < 0 for s in its_splits):
        raise ApiError(400, "Payments with negative paysplits cannot be refunded.")
    if float(original["PayAmt"] or 0) < 0:
        raise ApiError(400, "A negative payment (a refund) cannot be refunded.")
    today = h.practice.now_text()[:10]
    values = {k: v for k, v in original.items() if k in pays.columns and k != pays.pk}
    values.update({"PayAmt": _negated(original["PayAmt"]), "PayDate": today, "DateEntry": today})
    refund = h.practice.insert(pays, values)
    for split in its_splits:
        copy = {k: v for k, v in split.items() if k in splits.columns and k != splits.pk}
        copy.update({"PayNum": refund, "SplitAmt": _negated(split["SplitAmt"]), "DatePay": today})
        h.practice.insert(splits, copy)
    reply = h.object_reply(call, pays, refund, call.op.success_status)
    reply.headers.update(h.location(call, pays, refund))
    return reply


# -- claims ---------------------------------------------------------------------------------------------------
def claim_delete(h: Handlers, call: Call) -> Reply:
    claim = _row(h, "claims", call.key)
    num = int(claim["ClaimNum"])
    if str(claim["ClaimStatus"]).upper() == RECEIVED:
        raise ApiError(400, "Claims with a status of Received cannot be deleted.")
    if _any(h, 'SELECT 1 FROM "claimprocs" WHERE "ClaimNum" = ? AND "ClaimPaymentNum" != 0 LIMIT 1', (num,)):
        raise ApiError(400, "Claims with insurance payments attached cannot be deleted.")
    # its procedures go back to being estimates, as the desktop program does
    h.practice.db.execute(
        'UPDATE "claimprocs" SET "ClaimNum" = 0, "Status" = \'Estimate\' WHERE "ClaimNum" = ?', (num,)
    )
    h.practice.delete(call.op.resource, num)
    return Reply(call.op.success_status, b"", None)


# -- procedures -----------------------------------------------------------------------------------------------
#: What a procedure may be attached to that stops its DELETE: (table, where, what the refusal names).
_PROC_ATTACHMENTS: tuple[tuple[str, str, str], ...] = (
    ("claimprocs", '"ProcNum" = ? AND "ClaimNum" != 0', "a claim"),
    ("claimprocs", '"ProcNum" = ? AND "ClaimPaymentNum" != 0', "an insurance payment"),
    ("paysplits", '"ProcNum" = ?', "a patient payment"),
    ("adjustments", '"ProcNum" = ?', "an adjustment"),
    ("rxpats", '"ProcNum" = ?', "a prescription"),
    ("payplancharges", '"ProcNum" = ?', "a payment plan"),
    ("refattaches", '"ProcNum" = ?', "a referral"),
)


def _group_code(h: Handlers) -> int:
    """The CodeNum of ~GRP~, added to the practice's codes the first time a group note is made."""
    found = h.practice.db.execute(
        'SELECT "CodeNum" FROM "procedurecodes" WHERE "ProcCode" = ? LIMIT 1', (GROUP_NOTE_CODE,)
    ).fetchone()
    if found:
        return int(found[0])
    return h.practice.insert(
        _res(h, "procedurecodes"),
        {"ProcCode": GROUP_NOTE_CODE, "Descript": "Group Note", "AbbrDesc": "GroupNote"},
    )


def _is_group_note(h: Handlers, proc: dict[str, Any]) -> bool:
    row = h.practice.db.execute(
        'SELECT "ProcCode" FROM "procedurecodes" WHERE "CodeNum" = ?', (proc["CodeNum"],)
    ).fetchone()
    return bool(row) and row[0] == GROUP_NOTE_CODE


def procedure_delete(h: Handlers, call: Call) -> Reply:
    proc = _row(h, "procedurelogs", call.key)
    num = int(proc["ProcNum"])
    if proc["ProcStatus"] not in DELETABLE_PROC_STATUSES:
        raise ApiError(
            400,
            f"Only procedures with a ProcStatus of TP, TPi or C can be deleted (this one is {proc['ProcStatus']}).",
        )
    for table, where, what in _PROC_ATTACHMENTS:
        if not _table_has(h, table, "ProcNum"):
            continue
        if _any(h, f"SELECT 1 FROM {quote_ident(table)} WHERE {where} LIMIT 1", (num,)):
            raise ApiError(400, f"The procedure is attached to {what} and cannot be deleted.")
    h.practice.delete(call.op.resource, num)
    return Reply(call.op.success_status, b"", None)


def _ensure_group_table(h: Handlers) -> None:
    h.practice.db.execute(
        f'CREATE TABLE IF NOT EXISTS {GROUP_ITEMS_TABLE} ("GroupNum" INTEGER, "ProcNum" INTEGER)'
    )


def _group_answer(h: Handlers, group: dict[str, Any], note: str, signed: bool) -> dict[str, Any]:
    _ensure_group_table(h)
    members = [
        int(r[0])
        for r in h.practice.db.execute(
            f'SELECT "ProcNum" FROM {GROUP_ITEMS_TABLE} WHERE "GroupNum" = ? ORDER BY "ProcNum"',
            (group["ProcNum"],),
        )
    ]
    return {
        "PatNum": int(group["PatNum"]),
        "ProvNum": int(group["ProvNum"] or 0),
        "ProcNum": int(group["ProcNum"]),
        "ProcNums": members,
        "Note": note,
        "isSigned": "true" if signed else "false",
    }


def _add_note(h: Handlers, pat: int, proc: int, note: str, signed: bool) -> None:
    h.practice.insert(
        _res(h, "procnotes"),
        {
            "PatNum": pat,
            "ProcNum": proc,
            "Note": note,
            "EntryDateTime": h.practice.now_text(),
            "isSigned": "true" if signed else "false",
        },
    )


def _latest_note(h: Handlers, proc: int) -> str:
    row = h.practice.db.execute(
        'SELECT "Note" FROM "procnotes" WHERE "ProcNum" = ? ORDER BY "ProcNoteNum" DESC LIMIT 1', (proc,)
    ).fetchone()
    return str(row[0] or "") if row else ""


def made_group_notes(h: Handlers, pat_num: int) -> list[dict[str, Any]]:
    """The patient's ~GRP~ procedures, oldest first, as GET GroupNotes rows."""
    rows = h.practice.db.execute(
        'SELECT p."ProcNum" FROM procedurelogs p JOIN procedurecodes c ON c."CodeNum" = p."CodeNum" '
        'WHERE p."PatNum" = ? AND c."ProcCode" = ? ORDER BY p."ProcNum"',
        (pat_num, GROUP_NOTE_CODE),
    ).fetchall()
    out = []
    for (num,) in rows:
        proc = _row(h, "procedurelogs", int(num))
        signed = h.practice.db.execute(
            'SELECT "isSigned" FROM procnotes WHERE "ProcNum" = ? ORDER BY "ProcNoteNum" DESC LIMIT 1', (num,)
        ).fetchone()
        row = _group_answer(h, proc, _latest_note(h, int(num)), bool(signed) and str(signed[0]) == "true")
        row["isSigned"] = row["isSigned"].capitalize()  # GET GroupNotes answers "True"/"False"
        out.append(row)
    return out


def group_note_create(h: Handlers, call: Call) -> Reply:
    """A ~GRP~ procedure over procedures of one patient sharing date, clinic and provider (repeats ignored)."""
    a = call.args
    pat = _row(h, "patients", int(a["PatNum"]))
    nums = sorted(set(msgspec.json.decode(a["ProcNums"])))
    if not nums:
        raise ApiError(400, "ProcNums is required.")
    procs = []
    for n in nums:
        proc = h.practice.row(_res(h, "procedurelogs"), int(n))
        if proc is None:
            raise ApiError(404, f"Procedure {n} was not found.")
        if int(proc["PatNum"]) != int(pat["PatNum"]):
            raise ApiError(400, f"Procedure {n} does not belong to patient {pat['PatNum']}.")
        procs.append(proc)
    if len({(p["ProcDate"], str(p["ClinicNum"]), str(p["ProvNum"])) for p in procs}) > 1:
        raise ApiError(400, "The procedures of a group note must have the same date, clinic and provider.")
    first = procs[0]
    prov = int(a.get("ProvNum") or first["ProvNum"] or pat.get("PriProv") or 0)
    signed = a.get("isSigned") == "true"
    group = h.practice.insert(
        _res(h, "procedurelogs"),
        {
            "PatNum": pat["PatNum"],
            "ProcDate": first["ProcDate"],
            "ClinicNum": first["ClinicNum"],
            "ProvNum": prov,
            "CodeNum": _group_code(h),
            "ProcStatus": "EC",
        },
    )
    _ensure_group_table(h)
    h.practice.db.executemany(
        f'INSERT INTO {GROUP_ITEMS_TABLE} ("GroupNum", "ProcNum") VALUES (?, ?)', [(group, n) for n in nums]
    )
    _add_note(h, int(pat["PatNum"]), group, str(a["Note"]), signed)
    row = _row(h, "procedurelogs", group)
    return Reply(call.op.success_status, msgspec.json.encode(_group_answer(h, row, str(a["Note"]), signed)))


def _group_note(h: Handlers, call: Call) -> dict[str, Any]:
    proc = _row(h, "procedurelogs", call.key)
    if not _is_group_note(h, proc):
        raise ApiError(400, f"ProcNum {proc['ProcNum']} is not a group note (procCode {GROUP_NOTE_CODE}).")
    return proc


def group_note_update(h: Handlers, call: Call) -> Reply:
    a = call.args
    proc = _group_note(h, call)
    if int(a["PatNum"]) != int(proc["PatNum"]):
        raise ApiError(400, f"Group note {proc['ProcNum']} does not belong to patient {a['PatNum']}.")
    note = str(a["Note"])
    if a.get("doAppendNote") == "true":
        note = _latest_note(h, int(proc["ProcNum"])) + note
    if a.get("ProvNum") is not None:
        h.practice.update(_res(h, "procedurelogs"), int(proc["ProcNum"]), {"ProvNum": int(a["ProvNum"])})
        proc = _row(h, "procedurelogs", call.key)
    signed = a.get("isSigned") == "true"
    _add_note(h, int(proc["PatNum"]), int(proc["ProcNum"]), note, signed)
    return Reply(call.op.success_status, msgspec.json.encode(_group_answer(h, proc, note, signed)))


def group_note_delete(h: Handlers, call: Call) -> Reply:
    proc = _group_note(h, call)
    _ensure_group_table(h)
    h.practice.db.execute(f'DELETE FROM {GROUP_ITEMS_TABLE} WHERE "GroupNum" = ?', (proc["ProcNum"],))
    h.practice.delete(_res(h, "procedurelogs"), int(proc["ProcNum"]))
    return Reply(call.op.success_status, b"", None)


# -- uniquely named definitions -------------------------------------------------------------------------------
def _unique_create(column: str, label: str) -> ActionFn:
    def create(h: Handlers, call: Call) -> Reply:
        res = call.op.resource
        name = str(call.args.get(column) or "").strip()
        if not name:
            raise ApiError(400, f"{column} is required.")
        if _any(
            h,
            f"SELECT 1 FROM {quote_ident(res.segment)} WHERE {quote_ident(column)} = ? COLLATE NOCASE LIMIT 1",
            (name,),
        ):
            raise ApiError(400, f"{label} with that name already exists.")
        return h.create(call)

    return create


RULES: dict[tuple[str, str], ActionFn] = {
    ("payments", "Refund"): payment_refund,
    ("claims", "delete"): claim_delete,
    ("procedurelogs", "delete"): procedure_delete,
    ("procedurelogs", "PostGroupNote"): group_note_create,
    ("procedurelogs", "PutGroupNote"): group_note_update,
    ("procedurelogs", "DeleteGroupNote"): group_note_delete,
    ("allergydefs", "create"): _unique_create("Description", "An AllergyDef"),
    ("diseasedefs", "create"): _unique_create("DiseaseName", "A DiseaseDef"),
}
