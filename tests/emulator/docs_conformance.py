"""Hold the emulator's answers to the docs' example responses: same keys per row, same JSON type per key.

For every documented GET example with status 200 (``spec/examples``) we ask the emulator the analogous request
(the same operation; path keys and filter values taken from the emulator's own practice so that rows come
back) and compare the first documented row with the emulator's rows: which keys each side has, the JSON type
of each value (number, string, bool, null, array, object), nested objects and array items included, and the
form of strings where the docs show one (``true`` vs ``True``, date vs datetime).

Every difference is a :class:`Deviation`; the test compares them with the reviewed exceptions table in
``test_emu_conformance``. Run this module as a script for a report: ``python tests/emulator/docs_conformance.py``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from odapi_async.emulator._catalog.routes import Operation, catalog
from odapi_async.emulator._practice.db import Practice, quote_ident

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "spec" / "examples"
#: Parameters whose value is a "changed since" watermark: ask from long ago, so every row qualifies.
SINCE = frozenset({"DateTStamp", "SecDateTEdit", "SigDateTime", "DateTimeOriginal", "DateEntry"})
EARLY = "0001-01-01 00:00:00"
#: Patients chosen for path/query PatNum per operation, so that the action has rows to show.
PATIENT_FOR: dict[str, str] = {
    "PlannedAppts": 'SELECT "PatNum" FROM appointments WHERE "AptStatus" = \'Planned\' ORDER BY 1 LIMIT 1',
    "Insurance": 'SELECT "PatNum" FROM patplans ORDER BY 1 LIMIT 1',
    "GetInsuranceHistory": 'SELECT "PatNum" FROM patplans ORDER BY 1 LIMIT 1',
}


@dataclass(frozen=True)
class Deviation:
    """One difference between a documented example and the emulator's answer."""

    example: str  #: file stem, e.g. ``Patients__list__1``
    kind: str  #: missing | extra | type | form | empty | status | unparsed
    key: str = ""  #: dotted path of the field ("" for whole-answer deviations)
    detail: str = ""

    def __str__(self) -> str:
        where = f" {self.key}" if self.key else ""
        return f"{self.example}: {self.kind}{where} {self.detail}".rstrip()


@dataclass
class Example:
    stem: str
    op: Operation
    request: str
    value: Any  # parsed JSON (None when unreadable)


def repair(raw: str) -> Any:
    """Parse the docs' text, mending its known typos (missing commas or quotes, trailing commas, lone backslashes)."""
    text = raw.replace("etc...", "").replace("ect.", "")
    for _ in range(200):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            pos = err.pos
            if err.msg == "Expecting ',' delimiter":
                end = len(text[:pos].rstrip())
                text = text[:end] + "," + text[end:]
            elif err.msg == "Invalid \\escape":
                text = text[:pos] + "\\" + text[pos:]
            elif err.msg.startswith("Expecting property name") and re.match(r'\w+"\s*:', text[pos:]):
                text = text[:pos] + '"' + text[pos:]  # a key that lost its opening quote
            elif err.msg in ("Expecting value", "Expecting property name enclosed in double quotes"):
                comma = text.rfind(",", 0, pos)
                if comma < 0 or text[comma + 1 : pos].strip():
                    return None
                text = text[:comma] + text[comma + 1 :]
            else:
                return None
    return None


def get_examples() -> list[Example]:
    """The documented GET examples with status 200, in file order."""
    cat = catalog()
    by_name = {res.name: res for res in cat.resources.values()}
    out: list[Example] = []
    for path in sorted(EXAMPLES.glob("*__*__*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        resource, op_id, _ = path.stem.split("__")
        op = by_name[resource].op(op_id)
        if op is None or op.method != "GET" or data["status"] != 200:
            continue
        value = data["json"] if data["json"] is not None else repair(data["raw"])
        out.append(Example(path.stem, op, data["request"], value))
    return out


# -- the analogous request --------------------------------------------------------------------------------------
def _scalar(db: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> Any:
    row = db.execute(sql, args).fetchone()
    return row[0] if row else None


def rich_patient(db: sqlite3.Connection) -> int:
    """The patient with the most completed procedures (so the chart/account actions have something to show)."""
    found = _scalar(
        db,
        'SELECT "PatNum" FROM procedurelogs WHERE "ProcStatus" = \'C\' GROUP BY "PatNum" '
        'ORDER BY count(*) DESC, "PatNum" LIMIT 1',
    )
    return int(found or 1)


def _row_with(db: sqlite3.Connection, table: str, columns: list[str]) -> dict[str, Any] | None:
    """A row of ``table``, preferably one where every column in ``columns`` is set (not zero, not empty)."""
    where = " AND ".join(f"{quote_ident(c)} NOT IN (0, '', '0')" for c in columns)
    for condition in (where, "1"):
        cur = db.execute(
            f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {quote_ident(table)} WHERE {condition} LIMIT 1"
        )
        row = cur.fetchone()
        if row:
            return dict(zip(columns, row, strict=True))
    return None


def seed_empty_tables(practice: Practice) -> list[str]:
    """Give every documented resource the practice leaves empty one row of zero values (returns their names).

    The comparison is about shapes and types, which a zero row shows as well as a realistic one.
    """
    seeded = []
    for res in practice.cat.resources.values():
        if not res.has_table or not any(op.method == "GET" for op in res.operations):
            continue
        if practice.db.execute(f"SELECT 1 FROM {quote_ident(res.segment)} LIMIT 1").fetchone() is None:
            practice.insert(res, {})
            seeded.append(res.name)
    return seeded


def analogous(db: sqlite3.Connection, ex: Example) -> tuple[str, dict[str, str]]:
    """Path and query of the emulator request that corresponds to the documented one."""
    op = ex.op
    res = op.resource
    split = urlsplit(ex.request.split(" ", 1)[1].replace(" ", "%20"))
    asked = [
        (k, v) for k, v in parse_qsl(split.query, keep_blank_values=True) if k not in ("Offset", "Limit")
    ]
    path = op.path
    if op.path_param is not None:
        name = op.path_param.name
        if res.has_table and name == res.pk and res.pk_is_column:
            key = _scalar(
                db,
                f"SELECT {quote_ident(name)} FROM {quote_ident(res.segment)} ORDER BY {quote_ident(name)} LIMIT 1",
            )
        else:
            key = _patient_for(db, op)
        path = path.replace("{" + name + "}", str(key))
    params: dict[str, str] = {}
    columns = [
        k for k, _ in asked if k in res.columns and k not in SINCE and not res.field_by_name[k].derived
    ]
    found = _row_with(db, res.segment, columns) if res.has_table and columns else None
    if found is not None:
        blank = {k: v for k, v in asked if k in found and found[k] in (0, "", "0", None)}
        if blank:  # a seeded zero row: give it the docs' value so the filter finds it
            sets = ", ".join(f"{quote_ident(k)} = ?" for k in blank)
            db.execute(
                f"UPDATE {quote_ident(res.segment)} SET {sets} WHERE rowid = (SELECT min(rowid) FROM {quote_ident(res.segment)})",
                list(blank.values()),
            )
            found.update(blank)
    for name, value in asked:
        if name in SINCE:
            params[name] = EARLY
        elif found is not None and name in found:
            params[name] = str(found[name])
        elif name == "PatNum":
            params[name] = str(_patient_for(db, op))
        elif name in ("date", "dateStart", "dateEnd"):
            params[name] = _busy_day(db)
        elif name == "InsSubNum":
            pat = _patient_for(db, op)
            sql = 'SELECT "InsSubNum" FROM patplans WHERE "PatNum" = ? ORDER BY 1 LIMIT 1'
            params[name] = str(_scalar(db, sql, (pat,)) or 0)
        elif name == "defNumApptType" or name.endswith("Num"):
            continue  # a key of the docs' practice: leave the filter out
        else:
            params[name] = value
    return path, params


def _patient_for(db: sqlite3.Connection, op: Operation) -> int:
    sql = PATIENT_FOR.get(op.id)
    found = _scalar(db, sql) if sql else None
    return int(found) if found else rich_patient(db)


def _busy_day(db: sqlite3.Connection) -> str:
    """A day on which providers are scheduled (Slots and Schedules answer rows for it)."""
    day = _scalar(
        db,
        'SELECT substr("SchedDate", 1, 10) FROM schedules WHERE "SchedType" = \'Provider\' '
        'AND "SchedDate" >= date(\'now\') ORDER BY "SchedDate" LIMIT 1',
    )
    return str(day or "2024-01-01")


# -- comparison -------------------------------------------------------------------------------------------------
def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def value_form(value: Any) -> str | None:
    """The textual form of a string value, where the docs are consistent about it."""
    if not isinstance(value, str):
        return None
    if value in ("true", "false"):
        return "bool"
    if value in ("True", "False"):
        return "Bool"
    if _DATE.match(value):
        return "date"
    if _DATETIME.match(value):
        return "datetime"
    return None


def _rows(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def compare(stem: str, documented: Any, answered: Any, prefix: str = "") -> Iterator[Deviation]:
    """Deviations of ``answered`` (the emulator's rows) from ``documented`` (the docs' rows)."""
    doc_rows = [r for r in _rows(documented) if isinstance(r, dict)]
    emu_rows = [r for r in _rows(answered) if isinstance(r, dict)][:50]
    if not doc_rows:  # rows of scalars (or an empty example): compare the item types only
        doc_types = {json_type(v) for v in _rows(documented)}
        emu_types = {json_type(v) for v in _rows(answered)}
        if doc_types and emu_types and not emu_types <= doc_types:
            yield Deviation(
                stem, "type", prefix or "[]", f"docs {sorted(doc_types)}, emulator {sorted(emu_types)}"
            )
        return
    if not emu_rows:
        yield Deviation(stem, "empty", prefix, "the emulator answered no rows to compare")
        return
    doc_keys = list(doc_rows[0])
    emu_keys = list(emu_rows[0])
    for key in doc_keys:
        if key not in emu_keys:
            yield Deviation(stem, "missing", prefix + key)
    for key in emu_keys:
        if key not in doc_keys:
            yield Deviation(stem, "extra", prefix + key)
    for key in doc_keys:
        if key not in emu_keys:
            continue
        doc_values = [r[key] for r in doc_rows if key in r]
        emu_values = [r[key] for r in emu_rows if key in r]
        doc_types = {json_type(v) for v in doc_values}
        emu_types = {json_type(v) for v in emu_values}
        nested = doc_types & {"object", "array"}
        if not emu_types <= doc_types:
            yield Deviation(
                stem, "type", prefix + key, f"docs {sorted(doc_types)}, emulator {sorted(emu_types)}"
            )
        elif doc_types == {"string"}:
            doc_forms = {f for f in map(value_form, doc_values) if f is not None}
            emu_forms = {f for f in map(value_form, emu_values) if f is not None}
            if doc_forms and emu_forms and not emu_forms <= doc_forms:
                detail = f"docs {sorted(doc_forms)}, emulator {sorted(emu_forms)}"
                yield Deviation(stem, "form", prefix + key, detail)
        elif nested:
            docs_items = [i for v in doc_values if isinstance(v, (list, dict)) for i in _rows(v)]
            emu_items = [i for v in emu_values if isinstance(v, (list, dict)) for i in _rows(v)]
            if docs_items and emu_items:
                yield from compare(stem, docs_items, emu_items, prefix + key + ".")


def check_example(status: int, body: Any, ex: Example) -> list[Deviation]:
    if ex.value is None:
        return [Deviation(ex.stem, "unparsed", "", "the docs' example is not JSON, even after mending typos")]
    if status != 200:
        return [Deviation(ex.stem, "status", "", f"the emulator answered {status}: {str(body)[:120]}")]
    if isinstance(ex.value, list) and not ex.value:
        return []
    if isinstance(ex.value, dict) and isinstance(body, list):
        # documented as one object where the emulator lists rows (Providers "or", PatFields by name)
        return list(compare(ex.stem, ex.value, body[:1]))
    return list(compare(ex.stem, ex.value, body))


async def run(
    client: Any, base_url: str, headers: dict[str, str], db: sqlite3.Connection
) -> tuple[int, list[Deviation]]:
    """Ask the emulator for every example; return (examples compared, deviations)."""
    deviations: list[Deviation] = []
    examples = get_examples()
    for ex in examples:
        path, params = analogous(db, ex)
        r = await client.get(base_url + path, params=params, headers=headers)
        try:
            body = r.json()
        except ValueError:
            body = r.text
        deviations.extend(check_example(r.status_code, body, ex))
    return len(examples), deviations


# -- write answers ----------------------------------------------------------------------------------------------
def write_examples() -> list[tuple[Example, dict[str, Any]]]:
    """POST/PUT examples answering one object, with their documented request body (mended; {} if none)."""
    cat = catalog()
    by_name = {res.name: res for res in cat.resources.values()}
    out = []
    for path in sorted(EXAMPLES.glob("*__*__*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        resource, op_id, _ = path.stem.split("__")
        op = by_name[resource].op(op_id)
        if op is None or op.method not in ("POST", "PUT"):
            continue
        value = data["json"] if data["json"] is not None else repair(data["raw"])
        if not isinstance(value, dict):
            continue
        body = _first_body(data.get("request_body_raw") or "{}")
        out.append((Example(path.stem, op, data["request"], value), body if isinstance(body, dict) else {}))
    return out


def _first_body(raw: str) -> Any:
    """The documented request body; of several alternatives shown one after another, the first."""
    parsed = repair(raw)
    if parsed is None:
        try:
            parsed, _ = json.JSONDecoder().raw_decode(raw.strip())
        except json.JSONDecodeError:
            return None
    return parsed


def _existing_keys(db: sqlite3.Connection, op: Operation, body: dict[str, Any]) -> dict[str, Any]:
    """The documented body with keys of the docs' practice replaced by keys that exist in the emulator's."""
    pks = {
        res.pk: res for res in catalog().resources.values() if res.pk and res.pk_is_column and res.has_table
    }
    out = dict(body)
    for name, value in body.items():
        target = pks.get(name)
        own = target is op.resource and op.id != "SchedulePlanned"  # its AptNum names the planned one
        if target is None or own or not str(value).isdigit() or not int(value):
            continue
        where = "\"AptStatus\" = 'Planned'" if op.id == "SchedulePlanned" and name == "AptNum" else "1"
        if not db.execute(
            f"SELECT 1 FROM {quote_ident(target.segment)} WHERE {quote_ident(name)} = ? AND {where}",
            (int(value),),
        ).fetchone():
            sql = f"SELECT {quote_ident(name)} FROM {quote_ident(target.segment)} WHERE {where} ORDER BY 1 LIMIT 1"
            found = _scalar(db, sql)
            if found is not None:
                out[name] = found if isinstance(value, int) else str(found)  # keep the documented JSON type
    return out


def _groupable(db: sqlite3.Connection) -> tuple[int, list[int]]:
    """A patient and two of their completed procedures with the same date, clinic and provider."""
    row = db.execute(
        'SELECT "PatNum", group_concat("ProcNum") FROM procedurelogs WHERE "ProcStatus" = \'C\' '
        'GROUP BY "PatNum", "ProcDate", "ClinicNum", "ProvNum" HAVING count(*) > 1 ORDER BY 1 LIMIT 1'
    ).fetchone()
    return int(row[0]), [int(n) for n in str(row[1]).split(",")][:2]


async def run_writes(
    client: Any, base_url: str, headers: dict[str, str], db: sqlite3.Connection
) -> tuple[int, list[Deviation]]:
    """Send every documented POST/PUT body (keys mapped onto the emulator's rows); compare the answers."""
    deviations: list[Deviation] = []
    examples = write_examples()
    for ex, body in examples:
        op = ex.op
        path = op.path
        if op.path_param is not None:
            name = op.path_param.name
            res = op.resource
            if res.has_table and name == res.pk and res.pk_is_column:
                # a row the documented change is allowed on (Percent only belongs to a CoInsurance benefit)
                where = "WHERE \"BenefitType\" = 'CoInsurance'" if res.segment == "benefits" else ""
                key = _scalar(
                    db,
                    f"SELECT {quote_ident(name)} FROM {quote_ident(res.segment)} {where} ORDER BY 1 DESC LIMIT 1",
                )
            else:
                key = rich_patient(db)
            path = path.replace("{" + name + "}", str(key))
        sent = _existing_keys(db, op, body)
        if sent.get("ProcNum") and sent.get("PatNum") and op.resource.segment == "adjustments":
            # the docs: the procedure must be the adjustment's patient's
            sent["ProcNum"] = _scalar(
                db,
                'SELECT "ProcNum" FROM procedurelogs WHERE "PatNum" = ? ORDER BY 1 LIMIT 1',
                (sent["PatNum"],),
            )
        if op.id in ("PostGroupNote", "PutGroupNote"):
            # a group note needs procedures of one patient sharing date, clinic and provider, and its PUT a
            # ~GRP~ procedure: make one from such procedures (the docs' keys name none of the emulator's)
            pat, nums = _groupable(db)
            sent = {**sent, "PatNum": pat}
            if op.id == "PostGroupNote":
                sent["ProcNums"] = nums
            else:
                made = await client.post(
                    base_url + "/procedurelogs/GroupNote",
                    json={"PatNum": pat, "ProcNums": nums, "Note": "first"},
                    headers=headers,
                )
                path = op.path.replace("{ProcNum}", str(made.json()["ProcNum"]))
        r = await client.request(op.method, base_url + path, json=sent, headers=headers)
        try:
            answer = r.json()
        except ValueError:
            answer = r.text
        if r.status_code >= 300:
            deviations.append(
                Deviation(ex.stem, "status", "", f"the emulator answered {r.status_code}: {answer}")
            )
        else:
            deviations.extend(compare(ex.stem, ex.value, answer))
    return len(examples), deviations


if __name__ == "__main__":  # a report for humans: python tests/emulator/docs_conformance.py
    import asyncio
    import sys

    import httpx2

    from odapi_async.emulator import Emulator

    async def main() -> int:
        async with (
            Emulator(seed=1, patients=200, customer_keys={"k": "enterprise"}) as emu,
            httpx2.AsyncClient(timeout=30.0) as client,
        ):
            hdrs = {"Authorization": "ODFHIR dev/k"}
            print("seeded with a zero row:", ", ".join(seed_empty_tables(emu.state.practice)))
            for walk in (run, run_writes):
                count, found = await walk(client, emu.endpoints["local"], hdrs, emu.db)
                bad = {d.example for d in found}
                for d in found:
                    print(d)
                print(f"{walk.__name__}: {count} examples compared, {count - len(bad)} match exactly")
        return 0

    sys.exit(asyncio.run(main()))
