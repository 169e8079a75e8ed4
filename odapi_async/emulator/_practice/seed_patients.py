"""The practice's patients and their history: families, insurance, appointments, procedures, claims,
payments, adjustments, commlogs and recalls.

Each patient's whole history is generated in one pass, appending plain tuples to per-table lists that are
bulk-inserted at the end: 10 000 patients make some 400 000 rows, so per-row work is kept to a few random
draws and string concatenations.
"""

from __future__ import annotations

import datetime as dt

from odapi_async.emulator._practice import word_lists as data
from odapi_async.emulator._practice.schema import ZERO_DATE, ZERO_DATETIME
from odapi_async.emulator._practice.seed_billing import BillingMixin, Insurance
from odapi_async.emulator._practice.seed_setup import DAY, PracticeBuilder, Provider, Row

APT_STATUSES = ("None", "Scheduled", "Complete", "UnschedList", "ASAP", "Broken", "Planned", "PtNote",
                "PtNoteCompleted")  # fmt: skip
PROC_STATUSES = ("TP", "C", "EC", "EO", "R", "D", "Cn", "TPi")
_PAST_STATUSES = frozenset({"Complete", "Broken", "PtNoteCompleted", "None"})
_FUTURE_STATUSES = frozenset({"Scheduled", "ASAP", "PtNote"})
_PAT_STATUS_WEIGHTS = (("Patient", 168), ("Inactive", 12), ("Archived", 6), ("NonPatient", 4), ("Prospective", 4),
                       ("Deleted", 3), ("Deceased", 3))  # fmt: skip
_PAT_STATUS_POOL = tuple(name for name, weight in _PAT_STATUS_WEIGHTS for _ in range(weight))
_FAMILY_SIZES = (1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5)
_EXTRA_PROC_STATUSES = ("EO", "EO", "EO", "EC", "EC", "R", "D", "Cn", "TPi", "TP", "TP", "TP", "C", "C")
_DENTIST_VISITS = (
    ("D2392",),
    ("D2391", "D2393"),
    ("D2140",),
    ("D2150",),
    ("D2740", "D2950"),
    ("D2750",),
    ("D3330", "D2950"),
    ("D7140",),
    ("D0140", "D0220"),
    ("D4341", "D4341"),
    ("D2331",),
    ("D2330", "D2331"),
    ("D7210",),
    ("D9110",),
    ("D6010",),
    ("D2394",),
    ("D3310",),
    ("D2920",),
    ("D9944",),
    ("D5110", "D5120"),
    ("D1351", "D1351"),
)
_EXTRA_CODES = (
    "D2392",
    "D2740",
    "D2750",
    "D3330",
    "D7140",
    "D2150",
    "D6010",
    "D2391",
    "D0220",
    "D7240",
    "D4341",
)
# Insurance share by procedure category (percent).
_COVERAGE = {"Exams & Xrays": 100, "Cleanings": 100, "Fillings": 80, "Endo": 80, "Perio": 80, "Oral Surgery": 80,
             "Adjunctive": 80, "Misc": 80, "Crown & Bridge": 50, "Dentures": 50, "Implants": 50, "Ortho": 50}  # fmt: skip
_SURFACES = {1: ("O", "M", "D", "B", "L", "F"), 2: ("MO", "DO", "OL", "OB", "MF", "DL"),
             3: ("MOD", "MOB", "DOL", "MIF"), 4: ("MODL", "MODB", "MIDF")}  # fmt: skip
_QUADS = ("UR", "UL", "LR", "LL")


class PatientGenerator(BillingMixin):
    """Generates every patient-linked table from a :class:`PracticeBuilder` that already holds the set-up."""

    def __init__(self, builder: PracticeBuilder) -> None:
        self.builder = builder
        rand = builder.rand
        self.docs: dict[int, list[Provider]] = {}
        self.hygs: dict[int, list[Provider]] = {}
        for clinic, _ in builder.clinics:
            active = [p for p in builder.providers if p.clinic == clinic and not p.hidden and p.op]
            docs = [p for p in active if not p.is_hygienist] or [
                p for p in builder.providers if not p.is_hygienist
            ]
            self.docs[clinic] = docs
            self.hygs[clinic] = [p for p in active if p.is_hygienist] or docs
        self.clinic_abbr = dict(builder.clinics)
        standard = builder.fees[builder.fee_scheds["Standard"]]
        self.fee = standard
        self.fee_text = [f"{x:.2f}" for x in standard]
        self.confirm_done = builder.defs["ApptConfirmed"][5:]
        self.confirm_open = builder.defs["ApptConfirmed"][:6]
        ci = builder.code_index
        self.visit_codes = tuple(tuple(ci[c] for c in v) for v in _DENTIST_VISITS)
        self.extra_codes = tuple(ci[c] for c in _EXTRA_CODES)
        self.code_min = [len(c[7]) * 5 for c in builder.codes]
        self.coverage = [_COVERAGE.get(c[4], 80) for c in builder.codes]
        self.billable = ["N" not in c[6] for c in builder.codes]
        self.hyg_code = ["H" in c[6] for c in builder.codes]
        self.ci = ci
        self.defs = builder.defs
        self.forced_apt = list(APT_STATUSES)
        self.forced_proc = list(PROC_STATUSES)
        self.rows: dict[str, list[Row]] = {name: [] for name in (
            "patients", "inssubs", "patplans", "appointments", "procs", "claims", "claimprocs", "claimpayments",
            "payments", "paysplits", "adjustments", "commlogs", "recalls")}  # fmt: skip
        self.bal = [0.0] * builder.patients
        self.pending = [0.0] * builder.patients
        self.first_visit = [0] * builder.patients
        self.entry = [0] * builder.patients
        self.rand = rand
        self.f_split_edit = builder.formatter("PaySplits", "SecDateTEdit")
        self.f_cp_edit = builder.formatter("ClaimPayments", "SecDateTEdit")
        self.f_cp_entry = builder.formatter("ClaimPayments", "SecDateEntry")
        self.f_proc_entry = builder.formatter("ProcedureLogs", "SecDateEntry")

    # --- families -----------------------------------------------------------------------------------
    def build(self) -> None:
        builder, rand = self.builder, self.rand
        n = builder.patients
        count = 0
        sub_num = 0
        patplan_num = 0
        domains = data.EMAIL_DOMAINS
        billing = self.defs["BillingTypes"]
        while count < n:
            size = min(builder.pick(_FAMILY_SIZES), n - count)
            lname = builder.pick(data.LAST)
            city, state, zip3, area = builder.pick(data.CITIES)
            address = f"{10 + int(rand() * 9990)} {builder.pick(data.STREETS)}"
            zip_ = zip3 + builder.digits(2)
            hm_phone = builder.phone(area) if rand() < 0.6 else ""
            clinic = builder.clinics[int(rand() * len(builder.clinics))][0]
            doc = builder.pick(self.docs[clinic])
            hyg = builder.pick(self.hygs[clinic])
            spouse = size >= 2 and rand() < 0.7
            guar = count + 1
            fam_status = builder.pick(_PAT_STATUS_POOL) if count else "Patient"
            bill_name = (billing[0] if rand() < 0.85 else builder.pick(billing))[1]
            employer = builder.pick(builder.employers) if rand() < 0.6 else 0
            ins1: list[Insurance | None] = [None] * size
            ins2: list[Insurance | None] = [None] * size
            if rand() < 0.62:
                plan = builder.pick(builder.plans)
                sub_num += 1
                self._inssub(sub_num, plan.num, guar)
                for m in range(size):
                    relat = "Self" if m == 0 else "Spouse" if (m == 1 and spouse) else "Child"
                    ins1[m] = Insurance(plan.num, sub_num, relat, plan.ppo, plan.fee_sched)
                if spouse and rand() < 0.3:
                    plan2 = builder.pick(builder.plans)
                    sub_num += 1
                    self._inssub(sub_num, plan2.num, guar + 1)
                    for m in range(size):
                        relat = "Spouse" if m == 0 else "Self" if (m == 1 and spouse) else "Child"
                        ins2[m] = Insurance(plan2.num, sub_num, relat, plan2.ppo, plan2.fee_sched)
            g_age = 25 + int(rand() * 55)
            g_female = rand() < 0.5
            for m in range(size):
                pat = count + 1
                if m == 0:
                    age, female = g_age, g_female
                    position = (
                        "Married"
                        if spouse
                        else ("Single" if size == 1 else builder.pick(("Single", "Divorced", "Widowed")))
                    )
                elif m == 1 and spouse:
                    age, female, position = max(19, g_age - 6 + int(rand() * 12)), not g_female, "Married"
                else:
                    age, female, position = 1 + int(rand() * 20), rand() < 0.5, "Child"
                gender = (
                    ("Female" if female else "Male") if rand() > 0.01 else builder.pick(("Unknown", "Other"))
                )
                fname = builder.pick(data.FIRST_F if female else data.FIRST_M)
                status = fam_status if rand() < 0.95 else builder.pick(_PAT_STATUS_POOL)
                if pat == 1:
                    status = "Patient"
                birth = (builder.now.date() - dt.timedelta(days=age * 365 + int(rand() * 365))).isoformat()
                entry = (
                    builder.past(730)
                    if rand() < 0.8
                    else max(DAY, builder.two_years_ago - int(rand() * 60 * DAY))
                )
                self.entry[pat - 1] = entry
                for k, ins in ((1, ins1[m]), (2, ins2[m])):
                    if ins is not None:
                        patplan_num += 1
                        e = max(entry, builder.two_years_ago)
                        self.rows["patplans"].append((patplan_num, pat, k, "false", ins.relat, "", ins.sub_num,
                                                      builder.dt(e), builder.dt(builder.edited(e))))  # fmt: skip
                wireless = builder.phone(area) if age >= 14 and rand() < 0.85 else ""
                email = (
                    f"{fname.lower()}.{lname.lower()}{pat}@{builder.pick(domains)}"
                    if age >= 16 and rand() < 0.7
                    else ""
                )
                contact = (
                    "WirelessPh"
                    if wireless and rand() < 0.6
                    else builder.pick(("HmPhone", "Email", "None", "TextMessage"))
                )
                txt_ok = builder.pick(("Yes", "Yes", "Unknown", "No")) if wireless else "Unknown"
                prov_hyg = hyg if hyg is not doc else None
                self.rows["patients"].append((
                    pat, lname, fname, "" if rand() < 0.7 else chr(65 + int(rand() * 26)), "", status, gender, position,
                    birth, "" if rand() < 0.5 else builder.digits(9), address, "", city, state, zip_, hm_phone,
                    builder.phone(area) if m < 2 and rand() < 0.3 else "", wireless, guar, email, doc.num, doc.abbr,
                    prov_hyg.num if prov_hyg else 0, prov_hyg.abbr if prov_hyg else "", 0, bill_name,
                    f"{lname}{fname}{pat}", "", employer if m < 2 else 0, clinic, self.clinic_abbr[clinic],
                    "true" if rand() < 0.03 else "false", "None", contact, builder.pick(("None", "TextMessage", "Email")),
                    builder.pick(data.LANGUAGES), txt_ok, builder.d(entry),
                ))  # fmt: skip
                self._history(pat, status, age, entry, clinic, doc, hyg, ins1[m], ins2[m], guar)
                count += 1
        self._insert_all()

    def _inssub(self, num: int, plan_num: int, subscriber: int) -> None:
        builder = self.builder
        s = builder.past(730)
        self.rows["inssubs"].append((num, plan_num, subscriber, builder.d(s - int(self.rand() * 300) * DAY), ZERO_DATE,
                                     builder.digits(9), "true", "true", builder.dt(builder.edited(s))))  # fmt: skip

    # --- one patient's history ----------------------------------------------------------------------
    def _history(self, pat: int, status: str, age: int, entry: int, clinic: int, doc: Provider, hyg: Provider,
                 ins1: Insurance | None, ins2: Insurance | None, guar: int) -> None:  # fmt: skip
        builder, rand = self.builder, self.rand
        now_s = builder.now_s
        if status == "Patient":
            k = 2 + int(rand() * 8)
            start, end = entry, now_s + 150 * DAY
        elif status in ("Inactive", "Archived", "Deceased"):
            k = 1 + int(rand() * 3)
            start, end = max(DAY, min(entry, now_s - 500 * DAY)), now_s - 365 * DAY
        elif status == "Prospective":
            k = 1
            start, end = now_s + DAY, now_s + 60 * DAY
        else:
            k = 0
            start = end = entry
        times = sorted(start + int(rand() * (end - start)) for _ in range(k))
        perio = age > 30 and rand() < 0.12
        child = age < 13
        last_hyg = 0
        next_hyg = 0
        visits = 0
        for i, s in enumerate(times):
            if self.forced_apt and status == "Patient":
                apt_status = self.forced_apt.pop(0)
                if apt_status in _FUTURE_STATUSES:
                    s = max(s, now_s + (1 + int(rand() * 30)) * DAY)
                elif apt_status != "Planned":
                    s = min(s, now_s - (1 + int(rand() * 90)) * DAY)
            elif s < now_s:
                x = rand()
                apt_status = ("Complete" if x < 0.86 else "Broken" if x < 0.92 else "UnschedList" if x < 0.96
                              else "PtNoteCompleted" if x < 0.985 else "None")  # fmt: skip
            else:
                x = rand()
                apt_status = (
                    "Scheduled"
                    if x < 0.9
                    else "ASAP"
                    if x < 0.95
                    else "PtNote"
                    if x < 0.98
                    else "UnschedList"
                )
            past = apt_status in _PAST_STATUSES
            future = apt_status in _FUTURE_STATUSES
            day = s // DAY
            wd = builder.weekday(s)
            if wd >= 5:
                day += (wd - 4) * -1 if past else 7 - wd
            s = day * DAY + 8 * 3600 + 600 * int(rand() * 50)
            if past and s >= now_s:
                s -= 7 * DAY
            elif future and s < now_s:
                s += 7 * DAY
            new_patient = i == 0 and entry > builder.two_years_ago
            is_hyg = new_patient or rand() < 0.55
            visits += 1
            self._appointment(pat, apt_status, s, new_patient, is_hyg, child, perio, clinic, doc, hyg, ins1, ins2,
                              guar, entry)  # fmt: skip
            if is_hyg and apt_status == "Complete":
                last_hyg = max(last_hyg, s)
            if is_hyg and apt_status == "Scheduled" and (next_hyg == 0 or s < next_hyg):
                next_hyg = s
        if status == "Patient" and rand() < 0.12:  # a planned appointment waiting to be scheduled
            self._appointment(
                pat, "Planned", 0, False, False, child, perio, clinic, doc, hyg, ins1, ins2, guar, entry
            )
        if status in ("Patient", "Inactive", "Archived"):
            self._extra_procs(pat, entry, clinic, doc)
            self._commlogs(pat, entry)
        if status == "Patient" and visits:
            self._recalls(pat, entry, last_hyg, next_hyg, perio, child)
        if guar == pat and rand() < 0.05:
            self._adjustment(pat, builder.past(365), 0, 0.0, doc, clinic, "Finance Charge")

    def _appointment(self, pat: int, apt_status: str, s: int, new_patient: bool, is_hyg: bool, child: bool,
                     perio: bool, clinic: int, doc: Provider, hyg: Provider, ins1: Insurance | None,
                     ins2: Insurance | None, guar: int, entry: int) -> None:  # fmt: skip
        builder, rand, ci = self.builder, self.rand, self.ci
        now_s = builder.now_s
        apt_num = len(self.rows["appointments"]) + 1
        planned = apt_status == "Planned"
        note_only = apt_status in ("PtNote", "PtNoteCompleted", "None")
        if note_only:
            codes: tuple[int, ...] = ()
        elif new_patient:
            codes = (ci["D0150"], ci["D0210"], ci["D1120"] if child else ci["D1110"])
        elif is_hyg:
            if child:
                codes = (ci["D0120"], ci["D1120"], ci["D1206"])
            elif perio:
                codes = (ci["D0120"], ci["D4910"])
            else:
                codes = (
                    (ci["D0120"], ci["D1110"], ci["D0274"]) if rand() < 0.4 else (ci["D0120"], ci["D1110"])
                )
        else:
            codes = builder.pick(self.visit_codes)
        minutes = 60 if is_hyg else min(120, max(30, sum(self.code_min[c] for c in codes)))
        if note_only:
            minutes = 10
        pattern = "/" + "X" * (minutes // 5 - 2) + "/"
        use_hyg = is_hyg and hyg is not doc
        op = hyg.op if use_hyg else doc.op
        if planned:
            apt_text = ZERO_DATETIME
            created = max(entry, builder.past(200))
        else:
            apt_text = builder.dt(s)
            created = (
                max(0, s - (7 + int(rand() * 110)) * DAY)
                if s < now_s
                else max(entry, now_s - int(rand() * 60 * DAY))
            )
            created = min(created, now_s - 60)
        complete = apt_status == "Complete"
        if complete:
            arrived = builder.dt(s - 60 * int(rand() * 15))
            seated = builder.dt(s + 60 * int(rand() * 10))
            dismissed = builder.dt(s + 60 * minutes)
            confirm = builder.pick(self.confirm_done)
        else:
            arrived = seated = dismissed = ZERO_DATETIME
            confirm = builder.pick(self.confirm_open)
        unsched = (
            builder.pick(self.defs["RecallUnschedStatus"])
            if apt_status in ("Broken", "UnschedList")
            else (0, "")
        )
        appt_type = (builder.appt_types["New Patient"] if new_patient else builder.appt_types["Recall"] if is_hyg
                     else builder.appt_types["Emergency"] if codes and codes[0] == ci["D0140"] else 0)  # fmt: skip
        abbrs = ", ".join(builder.codes[c][2] for c in codes)
        stamp = builder.dt(builder.edited(max(created, s) if s < now_s else created))
        self.rows["appointments"].append((
            apt_num, pat, apt_status, pattern, confirm[0], confirm[1], "false", op,
            builder.pick(data.APPT_NOTES) if not note_only else "Patient called about parking", doc.num, doc.abbr,
            hyg.num if use_hyg else 0, apt_text, unsched[0], unsched[1], "true" if new_patient else "false", abbrs,
            clinic, "true" if is_hyg else "false", stamp, arrived, seated, dismissed, ins1.plan_num if ins1 else 0,
            ins2.plan_num if ins2 else 0, "0,0,0", appt_type, self.builder.pick(builder.users), builder.dt(created),
            "ASAP" if apt_status == "ASAP" else "Normal", "",
        ))  # fmt: skip
        if not codes:
            return
        proc_status = "C" if complete else "TP"
        proc_s = created if planned else s
        procs = self._procs(pat, codes, proc_status, proc_s, created, 0 if planned else apt_num,
                            apt_num if planned else 0, clinic, doc, hyg if use_hyg else doc)  # fmt: skip
        if complete:
            if self.first_visit[pat - 1] == 0 or s < self.first_visit[pat - 1]:
                self.first_visit[pat - 1] = s
            self._complete_visit(pat, s, procs, ins1, ins2, clinic, doc, guar)
        elif ins1 is not None and apt_status == "Scheduled":
            self._estimates(pat, procs, ins1, clinic, created)

    def _procs(self, pat: int, codes: tuple[int, ...], status: str, s: int, created: int, apt_num: int,
               planned_num: int, clinic: int, doc: Provider, hyg: Provider) -> list[tuple[int, int, float, int]]:  # fmt: skip
        """Append procedures; return (ProcNum, code position, fee, ProvNum) for each."""
        builder, rand = self.builder, self.rand
        rows = self.rows["procs"]
        out: list[tuple[int, int, float, int]] = []
        date = builder.d(s) if s else ZERO_DATE
        entry_text = self.f_proc_entry(created)
        stamp = builder.dt(builder.edited(max(created, s)) if s < builder.now_s else builder.edited(created))
        date_tp = builder.d(created)
        proc_time = builder.tod[s % DAY] if status == "C" else "00:00:00"
        apt_text, planned_text, clinic_text = str(apt_num), str(planned_num), str(clinic)
        priority = builder.pick(self.defs["TxPriorities"]) if status == "TP" and rand() < 0.3 else (0, "")
        for c in codes:
            code = builder.codes[c]
            prov = hyg if self.hyg_code[c] else doc
            fee = self.fee[c]
            surf, tooth, tooth_range = ("", "", "") if code[5] == "Mouth" else self._area(code[5], code[2])
            num = len(rows) + 1
            rows.append((
                num, pat, apt_text, date, self.fee_text[c], surf, tooth, tooth_range, priority[0], priority[1], status,
                prov.num, prov.abbr, planned_text, date if status == "C" else date_tp, clinic_text, code[0],
                code[1], code[3], 1, date_tp, proc_time, stamp, entry_text,
            ))  # fmt: skip
            out.append((num, c, fee, prov.num))
        return out

    def _area(self, area: str, abbr: str) -> tuple[str, str, str]:
        rand = self.rand
        if area == "Surf":
            n = int(abbr[-1]) if abbr[-1].isdigit() else 1
            pool = _SURFACES[min(4, max(1, n))]
            return pool[int(rand() * len(pool))], str(1 + int(rand() * 32)), ""
        if area == "Tooth":
            return "", str(1 + int(rand() * 32)), ""
        if area == "Quad":
            return _QUADS[int(rand() * 4)], "", ""
        if area == "Arch":
            return ("U" if rand() < 0.5 else "L"), "", ""
        if area == "ToothRange":
            first = 2 + int(rand() * 10)
            return "", "", f"{first},{first + 1},{first + 2}"
        return "", "", ""

    def _extra_procs(self, pat: int, entry: int, clinic: int, doc: Provider) -> None:
        builder, rand = self.builder, self.rand
        if self.forced_proc:
            statuses, self.forced_proc = self.forced_proc, []
        else:
            statuses = [builder.pick(_EXTRA_PROC_STATUSES) for _ in range(int(rand() * 4))]
        for status in statuses:
            c = builder.pick(self.extra_codes)
            s = builder.past(700) if status != "EO" else max(0, entry - int(rand() * 60) * DAY)
            procs = self._procs(
                pat, (c,), status, s, max(entry, s) if status != "EO" else entry, 0, 0, clinic, doc, doc
            )
            if status == "C":
                self.bal[pat - 1] += procs[0][2]

    # --- contact ------------------------------------------------------------------------------------
    def _commlogs(self, pat: int, entry: int) -> None:
        builder, rand = self.builder, self.rand
        rows = self.rows["commlogs"]
        types = self.defs["CommLogTypes"]
        for _ in range(1 + int(rand() * 3)):
            num, name = types[int(rand() * len(types))]
            s = max(entry, builder.past(700))
            s = min(s, builder.now_s - 120)
            mode = builder.pick(("Phone", "Phone", "Text", "Email", "Mail", "InPerson"))
            stamp = s + int(rand() * 300)
            rows.append((len(rows) + 1, pat, builder.dt(s), str(num), name, builder.pick(data.COMMLOG_NOTES[name]), mode,
                         builder.pick(("Sent", "Sent", "Received")), builder.pick(builder.users), builder.dt(builder.edited(stamp)),
                         "ApptReminder" if name == "Appointment Related" and mode == "Text" else "User",
                         builder.dt(stamp)))  # fmt: skip

    def _recalls(self, pat: int, entry: int, last_hyg: int, next_hyg: int, perio: bool, child: bool) -> None:
        builder, rand = self.builder, self.rand
        rows = self.rows["recalls"]
        kinds = [
            ("Perio", 91, "3m") if perio else ("Child Prophy", 182, "6m") if child else ("Prophy", 182, "6m")
        ]
        if rand() < 0.4:
            kinds.append(("4BW", 365, "1y"))
        for kind, days, interval in kinds:
            base = last_hyg or entry
            due = min(base + days * DAY, builder.now_s + 300 * DAY)
            status = (0, "")
            if due < builder.now_s and not next_hyg and rand() < 0.6:
                status = builder.pick(self.defs["RecallUnschedStatus"])
            rows.append((
                len(rows) + 1, pat, builder.d(due), builder.d(last_hyg) if last_hyg else ZERO_DATE, interval, status[0],
                status[1], "", "false", builder.dt(builder.edited(max(entry, last_hyg))), builder.recall_types[kind],
                builder.d(next_hyg) if next_hyg else ZERO_DATE,
            ))  # fmt: skip

    # --- insert -------------------------------------------------------------------------------------
    def _insert_all(self) -> None:
        builder = self.builder
        rows = self.rows
        patients = []
        bal = self.bal
        balances = [0.0] * builder.patients
        for row in rows["patients"]:
            balances[row[18] - 1] += bal[row[0] - 1]
        for row in rows["patients"]:
            i = row[0] - 1
            first = self.first_visit[i]
            entry_s = self.entry[i]
            est = round(bal[i] - self.pending[i], 2)
            total = round(balances[i], 2) if row[18] == row[0] else 0.0
            stamp = builder.dt(builder.edited(max(entry_s, first)))
            patients.append((*row, builder.d(first) if first else ZERO_DATE, est, total, stamp))
        cols: tuple[str, ...] = ("PatNum", "LName", "FName", "MiddleI", "Preferred", "PatStatus", "Gender", "Position", "Birthdate",
                "SSN", "Address", "Address2", "City", "State", "Zip", "HmPhone", "WkPhone", "WirelessPhone",
                "Guarantor", "Email", "PriProv", "priProvAbbr", "SecProv", "secProvAbbr", "FeeSched", "BillingType",
                "ImageFolder", "ChartNumber", "EmployerNum", "ClinicNum", "clinicAbbr", "Premed",
                "PreferConfirmMethod", "PreferContactMethod", "PreferRecallMethod", "Language", "TxtMsgOk",
                "SecDateEntry", "DateFirstVisit", "EstBalance", "BalTotal", "DateTStamp")  # fmt: skip
        builder.insert("Patients", cols, patients)
        builder.insert("InsSubs", ("InsSubNum", "PlanNum", "Subscriber", "DateEffective", "DateTerm", "SubscriberID",
                             "ReleaseInfo", "AssignBen", "SecDateTEdit"), rows["inssubs"])  # fmt: skip
        builder.insert("PatPlans", ("PatPlanNum", "PatNum", "Ordinal", "IsPending", "Relationship", "PatID", "InsSubNum",
                              "SecDateTEntry", "SecDateTEdit"), rows["patplans"])  # fmt: skip
        cols = ("AptNum", "PatNum", "AptStatus", "Pattern", "Confirmed", "confirmed", "TimeLocked", "Op", "Note",
                "ProvNum", "provAbbr", "ProvHyg", "AptDateTime", "UnschedStatus", "unschedStatus", "IsNewPatient",
                "ProcDescript", "ClinicNum", "IsHygiene", "DateTStamp", "DateTimeArrived", "DateTimeSeated",
                "DateTimeDismissed", "InsPlan1", "InsPlan2", "colorOverride", "AppointmentTypeNum",
                "SecUserNumEntry", "SecDateTEntry", "Priority", "PatternSecondary")  # fmt: skip
        builder.insert("Appointments", cols, rows["appointments"])
        cols = ("ProcNum", "PatNum", "AptNum", "ProcDate", "ProcFee", "Surf", "ToothNum", "ToothRange", "Priority",
                "priority", "ProcStatus", "ProvNum", "provAbbr", "PlannedAptNum", "DateEntryC", "ClinicNum",
                "CodeNum", "procCode", "descript", "UnitQty", "DateTP", "ProcTime", "DateTStamp", "SecDateEntry")  # fmt: skip
        builder.insert("ProcedureLogs", cols, rows["procs"])
        cols = ("ClaimNum", "PatNum", "DateService", "DateSent", "ClaimStatus", "DateReceived", "PlanNum",
                "ProvTreat", "ClaimFee", "InsPayEst", "InsPayAmt", "DedApplied", "IsProsthesis", "ReasonUnderPaid",
                "ClaimType", "ProvBill", "PatRelat", "PlanNum2", "PatRelat2", "WriteOff", "ClaimForm", "InsSubNum",
                "InsSubNum2", "CustomTracking", "customTracking", "SecDateTEdit")  # fmt: skip
        builder.insert("Claims", cols, rows["claims"])
        cols = ("ClaimProcNum", "ProcNum", "ClaimNum", "PatNum", "ProvNum", "FeeBilled", "InsPayEst", "DedApplied",
                "Status", "InsPayAmt", "ClaimPaymentNum", "PlanNum", "DateCP", "WriteOff", "CodeSent",
                "AllowedOverride", "Percentage", "PercentOverride", "CopayAmt", "CopayOverride", "BaseEst",
                "ProcDate", "DateEntry", "DedEst", "DedEstOverride", "InsEstTotal", "InsEstTotalOverride",
                "PaidOtherInsOverride", "WriteOffEst", "WriteOffEstOverride", "ClinicNum", "InsSubNum", "PaymentRow",
                "SecUserNumEntry", "SecDateEntry", "SecDateTEdit", "DateSuppReceived", "DateInsFinalized")  # fmt: skip
        builder.insert("ClaimProcs", cols, rows["claimprocs"])
        cols = ("ClaimPaymentNum", "CheckDate", "CheckAmt", "CheckNum", "BankBranch", "Note", "ClinicNum",
                "DepositNum", "CarrierName", "DateIssued", "IsPartial", "PayType", "payType", "SecDateEntry",
                "SecDateTEdit", "PayGroup", "payGroup")  # fmt: skip
        builder.insert("ClaimPayments", cols, rows["claimpayments"])
        cols = ("PayNum", "PayType", "payType", "PayDate", "PayAmt", "CheckNum", "BankBranch", "PayNote", "PatNum",
                "ClinicNum", "DateEntry", "IsRecurringCC", "SecUserNumEntry", "SecDateTEdit", "RecurringChargeDate",
                "IsCcCompleted")  # fmt: skip
        builder.insert("Payments", cols, rows["payments"])
        builder.insert("PaySplits", ("SplitNum", "SplitAmt", "PatNum", "PayNum", "ProvNum", "DatePay", "ProcNum",
                               "DateEntry", "ClinicNum", "SecDateTEdit"), rows["paysplits"])  # fmt: skip
        builder.insert("Adjustments", ("AdjNum", "AdjDate", "AdjAmt", "PatNum", "AdjType", "adjType", "ProvNum", "AdjNote",
                                 "ProcDate", "ProcNum", "DateEntry", "ClinicNum", "SecUserNumEntry", "SecDateTEdit"),
                 rows["adjustments"])  # fmt: skip
        builder.insert("Commlogs", ("CommlogNum", "PatNum", "CommDateTime", "CommType", "commType", "Note", "Mode_",
                              "SentOrReceived", "UserNum", "DateTStamp", "CommSource", "DateTEntry"), rows["commlogs"])  # fmt: skip
        builder.insert("Recalls", ("RecallNum", "PatNum", "DateDue", "DatePrevious", "RecallInterval", "RecallStatus",
                             "recallStatus", "Note", "IsDisabled", "DateTStamp", "RecallTypeNum", "DateScheduled"),
                 rows["recalls"])  # fmt: skip
