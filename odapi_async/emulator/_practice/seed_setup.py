"""The practice's set-up data: clinics, providers, operatories, definitions, codes, fees, insurance, schedules.

:class:`PracticeBuilder` also holds what every generator needs: the seeded random source, the time helpers
(all times are whole seconds from midnight ``PAST_DAYS`` days before ``now``, turned into wire text through
pre-built day and time-of-day strings, which is far cheaper than ``strftime`` per value) and a bulk insert.
"""

from __future__ import annotations

import datetime as dt
import operator
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from odapi_async.emulator._practice import word_lists as data
from odapi_async.emulator._practice.schema import ZERO_DATE, table_specs

DAY = 86_400
PAST_DAYS = 800  # history spans about two years before now
FUTURE_DAYS = 400

Row = tuple[Any, ...]


@dataclass
class Provider:
    """A provider as the generators need it."""

    num: int
    abbr: str
    is_hygienist: bool
    clinic: int
    op: int = 0
    hidden: bool = False


@dataclass
class Plan:
    """An insurance plan: its number, whether it is a PPO (fee schedule) and its carrier name."""

    num: int
    fee_sched: int
    carrier: str
    ppo: bool


@dataclass
class PracticeBuilder:
    """Seeded generator state shared by the set-up and the patient generators."""

    conn: sqlite3.Connection
    seed: int
    patients: int
    now: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.rand = self.rng.random  # a uniform draw in [0, 1)
        base = self.now.date() - dt.timedelta(days=PAST_DAYS)
        self.base_weekday = base.weekday()
        self.days = [(base + dt.timedelta(days=i)).isoformat() for i in range(PAST_DAYS + FUTURE_DAYS + 2)]
        self.tod = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        self.now_s = PAST_DAYS * DAY + self.now.hour * 3600 + self.now.minute * 60 + self.now.second
        self.today_s = PAST_DAYS * DAY
        self.two_years_ago = self.now_s - 730 * DAY
        self.defs: dict[str, list[tuple[int, str]]] = {}  # category -> [(DefNum, ItemName)]
        self.providers: list[Provider] = []
        self.clinics: list[tuple[int, str]] = []  # (ClinicNum, Abbr)
        self.codes: list[tuple[int, str, str, str, str, str, str, str, float]] = []
        self.code_index: dict[str, int] = {}  # ProcCode -> position in self.codes
        self.fee_scheds: dict[str, int] = {}
        self.fees: dict[int, list[float]] = {}  # FeeSchedNum -> fee per code position
        self.plans: list[Plan] = []
        self.employers: list[int] = []
        self.recall_types: dict[str, int] = {}
        self.appt_types: dict[str, int] = {}
        self.users: list[int] = []

    # --- time helpers -------------------------------------------------------------------------------
    def dt(self, s: int) -> str:
        """Datetime text of second ``s``."""
        return self.days[s // DAY] + " " + self.tod[s % DAY]

    def d(self, s: int) -> str:
        """Date text of second ``s``."""
        return self.days[s // DAY]

    def formatter(self, resource: str, name: str) -> Callable[[int], str]:
        """Date or datetime formatter, following the spec's type for that field (the docs vary)."""
        for f in table_specs()[resource].fields:
            if f["name"] == name:
                return self.dt if f["type"] == "datetime" else self.d
        return self.dt

    def weekday(self, s: int) -> int:
        return (self.base_weekday + s // DAY) % 7

    def past(self, span_days: float = 730) -> int:
        """A second uniformly within the last ``span_days`` days."""
        return self.now_s - int(self.rand() * span_days * DAY) - 1

    def edited(self, s: int) -> int:
        """A last-change second after ``s`` and not after now, skewed towards ``s``."""
        if s >= self.now_s:
            return self.now_s - int(self.rand() * 20 * DAY) - 1
        s = max(s, self.two_years_ago)
        r = self.rand()
        return s + int(r * r * (self.now_s - s))

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rand() * len(seq))]

    def digits(self, n: int) -> str:
        return str(int(self.rand() * 10**n)).zfill(n)

    def phone(self, area: str) -> str:
        return f"({area}){self.digits(3)}-{self.digits(4)}"

    def def_num(self, category: str, item: str) -> int:
        for num, name in self.defs[category]:
            if name == item:
                return num
        raise KeyError(item)

    # --- storage ------------------------------------------------------------------------------------
    def insert(self, resource: str, cols: Sequence[str], rows: list[Row]) -> None:
        """Bulk insert ``rows`` (tuples in ``cols`` order); columns the spec lacks are dropped."""
        spec = table_specs().get(resource)
        if spec is None:
            return
        keep = [i for i, c in enumerate(cols) if c in spec.columns]
        if len(keep) != len(cols):
            if not keep:
                return
            getter = operator.itemgetter(*keep)
            rows = [getter(r) for r in rows] if len(keep) > 1 else [(r[keep[0]],) for r in rows]
            cols = [cols[i] for i in keep]
        names = ", ".join(f'"{spec.columns[c]}"' for c in cols)
        marks = ", ".join("?" * len(cols))
        self.conn.executemany(f'INSERT INTO "{spec.table}" ({names}) VALUES ({marks})', rows)
        self.counts[spec.table] = self.counts.get(spec.table, 0) + len(rows)

    # --- set-up tables ------------------------------------------------------------------------------
    def build_setup(self) -> None:
        self._definitions()
        self._clinics()
        self._procedure_codes()
        self._fee_schedules()
        self._providers()
        self._operatories()
        self._insurance()
        self._small_tables()
        self._preferences()

    def _definitions(self) -> None:
        rows: list[Row] = []
        for category, cat_name, items in data.DEFINITIONS:
            entries = self.defs.setdefault(cat_name, [])
            for item_name, value in items:
                num = len(rows) + 1
                entries.append((num, item_name))
                rows.append((num, item_name, value, category, cat_name, "false"))
        self.insert(
            "Definitions", ("DefNum", "ItemName", "ItemValue", "Category", "category", "isHidden"), rows
        )

    def _clinics(self) -> None:
        n = 1 if self.patients < 50 else min(len(data.CLINICS), 2 + self.patients // 4000)
        rows: list[Row] = []
        for i in range(n):
            name, abbr = data.CLINICS[i]
            city, state, zip3, area = data.CITIES[i]
            addr = f"{100 + int(self.rand() * 9800)} {self.pick(data.STREETS)}"
            zip_ = zip3 + self.digits(2)
            rows.append(
                (
                    i + 1,
                    name,
                    addr,
                    "",
                    city,
                    state,
                    zip_,
                    addr,
                    city,
                    state,
                    zip_,
                    self.phone(area),
                    abbr,
                    "false",
                )
            )
            self.clinics.append((i + 1, abbr))
        cols = ("ClinicNum", "Description", "Address", "Address2", "City", "State", "Zip", "BillingAddress",
                "BillingCity", "BillingState", "BillingZip", "Phone", "Abbr", "IsHidden")  # fmt: skip
        self.insert("Clinics", cols, rows)

    def _procedure_codes(self) -> None:
        cats = dict((name, num) for num, name in self.defs["ProcCodeCats"])
        rows: list[Row] = []
        for i, (code, abbr, descript, cat, fee, area, paint, flags) in enumerate(data.PROC_CODES):
            minutes = 20 if cat in ("Exams & Xrays", "Adjunctive", "Misc") else 40 if "H" in flags else 60
            if cat in ("Crown & Bridge", "Implants", "Endo", "Ortho", "Dentures"):
                minutes = 90
            pattern = "/" + "X" * (minutes // 5 - 2) + "/"
            stamp = self.dt(self.past())
            rows.append((
                i + 1, code, descript, abbr, pattern, cats[cat], cat, area,
                "true" if "N" in flags else "false", "true" if "P" in flags else "false",
                "true" if "H" in flags else "false", paint, "true" if "R" in flags else "false", stamp,
            ))  # fmt: skip
            self.codes.append((i + 1, code, abbr, descript, cat, area, flags, pattern, float(fee)))
            self.code_index[code] = i
        cols = ("CodeNum", "ProcCode", "Descript", "AbbrDesc", "ProcTime", "ProcCat", "procCat", "TreatArea",
                "NoBillIns", "IsProsth", "IsHygiene", "PaintType", "IsRadiology", "DateTStamp")  # fmt: skip
        self.insert("ProcedureCodes", cols, rows)

    def _fee_schedules(self) -> None:
        scheds = (("Standard", "Normal", 1.0), ("PPO Basic", "Normal", 0.72), ("PPO Premier", "Normal", 0.85),
                  ("Medicaid", "Normal", 0.55), ("Copay Plan", "CoPay", 0.3), ("Out of Network", "OutNetwork", 1.0))  # fmt: skip
        sched_rows: list[Row] = []
        fee_rows: list[Row] = []
        f_date = self.formatter("Fees", "SecDateEntry")
        for i, (desc, kind, factor) in enumerate(scheds):
            num = i + 1
            s = self.past()
            sched_rows.append((num, desc, kind, i, "false", "true", self.d(s), self.dt(self.edited(s))))
            self.fee_scheds[desc] = num
            amounts: list[float] = []
            for code in self.codes:
                amount = float(round(code[8] * factor * (0.95 + self.rand() * 0.1)))
                amounts.append(amount)
                e = self.edited(s)
                fee_rows.append(
                    (len(fee_rows) + 1, f"{amount:.2f}", num, code[0], 0, 0, f_date(s), self.dt(e))
                )
            self.fees[num] = amounts
        self.insert("FeeScheds", ("FeeSchedNum", "Description", "FeeSchedType", "ItemOrder", "IsHidden", "IsGlobal",
                                  "SecDateEntry", "SecDateTEdit"), sched_rows)  # fmt: skip
        self.insert("Fees", ("FeeNum", "Amount", "FeeSched", "CodeNum", "ClinicNum", "ProvNum", "SecDateEntry",
                             "SecDateTEdit"), fee_rows)  # fmt: skip

    def _providers(self) -> None:
        total = self.patients // 400 + 3
        n_doc = max(1, round(total * 0.6))
        specialty = {name: num for num, name in self.defs["ProviderSpecialties"]}
        rows: list[Row] = []
        n_clinics = len(self.clinics)
        for i in range(total):
            hyg = i >= n_doc
            k = i - n_doc if hyg else i
            female = self.rand() < 0.55
            fname = self.pick(data.FIRST_F if female else data.FIRST_M)
            lname = self.pick(data.LAST)
            abbr = f"HYG{k + 1}" if hyg else f"DOC{k + 1}"
            hidden = not hyg and n_doc >= 4 and k == n_doc - 1  # a retired dentist, kept for history
            prov = Provider(len(rows) + 1, abbr, hyg, self.clinics[k % n_clinics][0], hidden=hidden)
            self.providers.append(prov)
            s = self.past()
            color = f"{int(self.rand() * 256)},{int(self.rand() * 256)},{int(self.rand() * 256)}"
            rows.append((
                prov.num, abbr, lname, fname, "" if self.rand() < 0.5 else chr(65 + int(self.rand() * 26)), "",
                self.fee_scheds["Standard"], specialty["Hygienist" if hyg else "General"], self.digits(9),
                ("H" if hyg else "D") + self.digits(5), "true" if hyg else "false", color,
                "true" if hidden else "false", "true", "true", "1" + self.digits(9), self.dt(self.edited(s)),
                "false", "Active", "false", ZERO_DATE, "", "",
            ))  # fmt: skip
        cols = ("ProvNum", "Abbr", "LName", "FName", "MI", "Suffix", "FeeSched", "Specialty", "SSN", "StateLicense",
                "IsSecondary", "provColor", "IsHidden", "UsingTIN", "SigOnFile", "NationalProvID", "DateTStamp",
                "IsNotPerson", "ProvStatus", "IsHiddenReport", "Birthdate", "SchedNote", "PreferredName")  # fmt: skip
        self.insert("Providers", cols, rows)

    def _operatories(self) -> None:
        op_types = {name: num for num, name in self.defs["OperatoryTypes"]}
        rows: list[Row] = []
        for clinic, abbr in self.clinics:
            for prov in (p for p in self.providers if p.clinic == clinic and not p.hidden):
                num = len(rows) + 1
                prov.op = num
                kind = "Hygiene" if prov.is_hygienist else "Restorative"
                rows.append((num, f"{abbr} {kind} {prov.abbr}", f"OP-{num}", num - 1, "false",
                             0 if prov.is_hygienist else prov.num, prov.num if prov.is_hygienist else 0,
                             "true" if prov.is_hygienist else "false", clinic, "false", "true",
                             op_types[kind], kind))  # fmt: skip
            num = len(rows) + 1
            rows.append((num, f"{abbr} Emergency", f"OP-{num}", num - 1, "false", 0, 0, "false", clinic, "false",
                         "false", op_types["Surgery"], "Surgery"))  # fmt: skip
        cols = ("OperatoryNum", "OpName", "Abbrev", "ItemOrder", "IsHidden", "ProvDentist", "ProvHygienist",
                "IsHygiene", "ClinicNum", "SetProspective", "IsWebSched", "OperatoryType", "operatoryType")  # fmt: skip
        self.insert("Operatories", cols, rows)

    def _insurance(self) -> None:
        n_employers = min(len(data.EMPLOYERS), 8 + self.patients // 300)
        self.insert(
            "Employers", ("EmployerNum", "EmpName"), [(i + 1, data.EMPLOYERS[i]) for i in range(n_employers)]
        )
        self.employers = list(range(1, n_employers + 1))
        n_carriers = min(len(data.CARRIERS), 6 + self.patients // 500)
        carrier_rows: list[Row] = []
        plan_rows: list[Row] = []
        billing = self.defs["BillingTypes"][0][0]
        ppo_scheds = (
            self.fee_scheds["PPO Basic"],
            self.fee_scheds["PPO Premier"],
            self.fee_scheds["Medicaid"],
        )
        for i in range(n_carriers):
            name, elect = data.CARRIERS[i]
            city, state, zip3, area = self.pick(data.CITIES)
            carrier_rows.append((i + 1, name, f"PO Box {1000 + int(self.rand() * 9000)}", "", city, state,
                                 zip3 + self.digits(2), self.phone(area), elect, "SendElect", "false"))  # fmt: skip
            for _ in range(2):
                num = len(plan_rows) + 1
                ppo = self.rand() < 0.6
                sched = self.pick(ppo_scheds) if ppo else 0
                self.plans.append(Plan(num, sched, name, ppo))
                s = self.past()
                plan_rows.append((num, data.EMPLOYERS[int(self.rand() * n_employers)], "G" + self.digits(6), "",
                                  sched, "p" if ppo else "", 1, "false" if ppo else "true", 0,
                                  1 + int(self.rand() * n_employers), i + 1, "false", "false", "false", "false",
                                  int(self.rand() * 2) * 6, "Standard" if self.rand() < 0.7 else "Basic", 0,
                                  self.d(s), self.dt(self.edited(s)), billing, "PracticeDefault"))  # fmt: skip
        self.insert("Carriers", ("CarrierNum", "CarrierName", "Address", "Address2", "City", "State", "Zip", "Phone",
                                 "ElectID", "NoSendElect", "IsHidden"), carrier_rows)  # fmt: skip
        cols = ("PlanNum", "GroupName", "GroupNum", "PlanNote", "FeeSched", "PlanType", "ClaimFormNum",
                "ClaimsUseUCR", "CopayFeeSched", "EmployerNum", "CarrierNum", "IsMedical", "ShowBaseUnits",
                "CodeSubstNone", "IsHidden", "MonthRenew", "CobRule", "SecUserNumEntry", "SecDateEntry",
                "SecDateTEdit", "BillingType", "ExclusionFeeRule")  # fmt: skip
        self.insert("InsPlans", cols, plan_rows)
        self._benefits()

    def _benefits(self) -> None:
        covcats = (("Diagnostic", 100, "Diagnostic"), ("X-Ray", 100, "Diagnostic"), ("Preventive", 100, "General"),
                   ("Restorative", 80, "General"), ("Endo", 80, "General"), ("Periodontics", 80, "Periodontics"),
                   ("Oral Surgery", 80, "General"), ("Crowns", 50, "General"), ("Prosthodontics", 50, "General"),
                   ("Orthodontics", 50, "General"))  # fmt: skip
        rows = [(i + 1, desc, pct, i, "false", "None" if kind == "General" else kind)
                for i, (desc, pct, kind) in enumerate(covcats)]  # fmt: skip
        self.insert(
            "CovCats",
            ("CovCatNum", "Description", "DefaultPercent", "CovOrder", "IsHidden", "EbenefitCat"),
            rows,
        )
        f_entry = self.formatter("Benefits", "SecDateTEntry")
        f_edit = self.formatter("Benefits", "SecDateTEdit")
        benefit_rows: list[Row] = []
        for plan in self.plans:
            s = self.past()
            stamp, edit = f_entry(s), f_edit(self.edited(s))
            for i, (_, pct, _) in enumerate(covcats):
                benefit_rows.append((len(benefit_rows) + 1, plan.num, i + 1, "CoInsurance", pct, -1.0, "CalendarYear",
                                     "None", "None", stamp, edit))  # fmt: skip
            benefit_rows.append((len(benefit_rows) + 1, plan.num, 0, "Deductible", -1, 50.0, "CalendarYear", "None",
                                 "Individual", stamp, edit))  # fmt: skip
            benefit_rows.append((len(benefit_rows) + 1, plan.num, 0, "Limitations", -1, 1500.0, "CalendarYear", "None",
                                 "Individual", stamp, edit))  # fmt: skip
        cols = ("BenefitNum", "PlanNum", "CovCatNum", "BenefitType", "Percent", "MonetaryAmt", "TimePeriod",
                "QuantityQualifier", "CoverageLevel", "SecDateTEntry", "SecDateTEdit")  # fmt: skip
        self.insert("Benefits", cols, benefit_rows)

    def _small_tables(self) -> None:
        recall_types = (("Prophy", "6m", "/XXXX/", "D0120,D1110"), ("Child Prophy", "6m", "/XXX/", "D0120,D1120,D1206"),
                        ("Perio", "3m", "/XXXXX/", "D4910"), ("4BW", "1y", "", "D0274"), ("FMX", "5y", "", "D0210"),
                        ("Pano", "5y", "", "D0330"))  # fmt: skip
        for i, (desc, *_rest) in enumerate(recall_types):
            self.recall_types[desc] = i + 1
        self.insert("RecallTypes", ("RecallTypeNum", "Description", "DefaultInterval", "TimePattern", "Procedures",
                                    "AppendToSpecial"),
                    [(i + 1, *t, "false") for i, t in enumerate(recall_types)])  # fmt: skip
        appt_types = (("New Patient", "0,128,255", "/XXXXXXXX/", "D0150,D0210,D1110"),
                      ("Recall", "0,200,100", "/XXXX/", "D0120,D1110"), ("Emergency", "255,0,0", "/XX/", "D0140,D0220"),
                      ("Crown Prep", "128,0,128", "/XXXXXXXX/", "D2740"), ("Filling", "255,165,0", "/XXXX/", ""))  # fmt: skip
        for i, t in enumerate(appt_types):
            self.appt_types[t[0]] = i + 1
        self.insert("AppointmentTypes", ("AppointmentTypeNum", "AppointmentTypeName", "appointmentTypeColor",
                                         "Pattern", "CodeStr", "IsHidden"),
                    [(i + 1, *t, "false") for i, t in enumerate(appt_types)])  # fmt: skip
        groups = ("Admin", "Front Desk", "Clinical", "Billing")
        self.insert("UserGroups", ("UserGroupNum", "Description"), [(i + 1, g) for i, g in enumerate(groups)])
        n_emp = 4 + self.patients // 500
        emp_rows: list[Row] = []
        user_rows: list[Row] = []
        for i in range(n_emp):
            fname, lname = self.pick(data.FIRST_F + data.FIRST_M), self.pick(data.LAST)
            emp_rows.append((i + 1, lname, fname, "", "false", "Home", f"P{100 + i}", "",
                             f"{fname.lower()}.{lname.lower()}@clinic.example.com"))  # fmt: skip
            group = 1 if i == 0 else 2 + i % 3
            user_rows.append((i + 1, f"{fname.lower()}{lname[0].lower()}", f"[{group}]", i + 1, f"{fname} {lname}",
                              0, 0, "", "false", group))  # fmt: skip
        for prov in self.providers:
            num = len(user_rows) + 1
            user_rows.append((num, prov.abbr.lower(), "[3]", 0, "", 0, prov.num, prov.abbr, "false", 3))
        self.users = [r[0] for r in user_rows]
        self.insert("Employees", ("EmployeeNum", "LName", "FName", "MiddleI", "IsHidden", "ClockStatus", "PayrollID",
                                  "WirelessPhone", "EmailWork"), emp_rows)  # fmt: skip
        self.insert("Userods", ("UserNum", "UserName", "userGroupNums", "EmployeeNum", "employeeName", "ClinicNum",
                                "ProviderNum", "providerName", "IsHidden", "UserGroupNum"), user_rows)  # fmt: skip
        self.insert("Computers", ("ComputerNum", "CompName", "LastHeartBeat"),
                    [(i + 1, f"FRONTDESK{i + 1}" if i < 2 else f"OP{i - 1}", self.dt(self.now_s - int(self.rand() * 600)))
                     for i in range(4)])  # fmt: skip
        labs = (
            ("Precision Dental Lab", "Salem"),
            ("Crown Craft Studio", "Eugene"),
            ("Bright Arch Laboratory", "Boise"),
        )
        self.insert("Laboratories", ("LaboratoryNum", "Description", "Phone", "City", "IsHidden"),
                    [(i + 1, n, self.phone("503"), c, "false") for i, (n, c) in enumerate(labs)])  # fmt: skip
        f_stamp = self.formatter("Pharmacies", "DateTStamp")
        pharmacies = ("Corner Drug", "Main Street Pharmacy", "Valley Apothecary")
        self.insert("Pharmacies", ("PharmacyNum", "StoreName", "Phone", "City", "DateTStamp"),
                    [(i + 1, n, self.phone("503"), "Salem", f_stamp(self.past())) for i, n in enumerate(pharmacies)])  # fmt: skip
        f_stamp = self.formatter("DiseaseDefs", "DateTStamp")
        diseases = (
            "Diabetes",
            "Hypertension",
            "Asthma",
            "Heart murmur",
            "Artificial joint",
            "Pregnancy",
            "Hepatitis",
        )
        self.insert("DiseaseDefs", ("DiseaseDefNum", "DiseaseName", "IsHidden", "DateTStamp"),
                    [(i + 1, n, "false", f_stamp(self.past())) for i, n in enumerate(diseases)])  # fmt: skip
        f_stamp = self.formatter("AllergyDefs", "DateTStamp")
        allergies = (("Penicillin", "DrugAllergy"), ("Latex", "AllergyToSubstance"), ("Codeine", "DrugIntolerance"),
                     ("Sulfa drugs", "DrugAllergy"))  # fmt: skip
        self.insert("AllergyDefs", ("AllergyDefNum", "Description", "IsHidden", "DateTStamp", "SnomedType"),
                    [(i + 1, n, "false", f_stamp(self.past()), k) for i, (n, k) in enumerate(allergies)])  # fmt: skip
        f_stamp = self.formatter("Medications", "DateTStamp")
        meds = ("Amoxicillin", "Ibuprofen", "Chlorhexidine rinse", "Lisinopril", "Metformin", "Clindamycin")
        self.insert("Medications", ("MedicationNum", "MedName", "GenericNum", "genericName", "DateTStamp"),
                    [(i + 1, n, i + 1, n, f_stamp(self.past())) for i, n in enumerate(meds)])  # fmt: skip
        self.insert("ClaimForms", ("ClaimFormNum", "Description", "FontName", "FontSize", "UniqueID"),
                    [(1, "ADA 2019", "Arial", 9.0, "OD12"), (2, "1500", "Arial", 9.0, "OD13")])  # fmt: skip
        self.insert("ApptFieldDefs", ("ApptFieldDefNum", "FieldName", "FieldType", "PickList"),
                    [(1, "Transport", "PickList", "Car\r\nBus\r\nWalk"), (2, "Interpreter", "Text", "")])  # fmt: skip
        self.insert("PatFieldDefs", ("PatFieldDefNum", "FieldName", "FieldType", "PickList", "IsHidden"),
                    [(1, "Referred By", "Text", "", "false"), (2, "Consent on File", "Checkbox", "", "false")])  # fmt: skip
        perms = ("ApiReadAll", "ApiAllOthers", "ApiComm", "ApiDocuments", "ApiQueries", "ApiSetup")
        self.insert("SecurityPerms", ("Permission", "HasPermission"), [(p, "true") for p in perms])

    def _preferences(self) -> None:
        clinic_city, state, zip3, area = data.CITIES[0]
        values = {
            "practice": data.CLINICS[0][0], "address": f"{120 + int(self.rand() * 800)} Main St", "city": clinic_city,
            "state": state, "zip": zip3 + self.digits(2), "phone": self.phone(area).replace("(", "").replace(")", ""),
            "default_prov": str(self.providers[0].num),
            "default_billtype": str(self.def_num("BillingTypes", "Standard Account")),
            "no_clinics": "1" if len(self.clinics) == 1 else "0",
            "recall_prophy": str(self.recall_types["Prophy"]), "recall_perio": str(self.recall_types["Perio"]),
            "recall_child": str(self.recall_types["Child Prophy"]),
            "confirm_emailed": str(self.def_num("ApptConfirmed", "Emailed")),
            "confirm_texted": str(self.def_num("ApptConfirmed", "Texted")),
            "confirm_arrived": str(self.def_num("ApptConfirmed", "Arrived")),
            "adj_finance": str(self.def_num("AdjTypes", "Finance Charge")),
            "adj_billing": str(self.def_num("AdjTypes", "Billing Charge")),
            "adj_discount": str(self.def_num("AdjTypes", "Professional Discount")),
        }  # fmt: skip
        rows = [(i + 1, name, value.format(**values)) for i, (name, value) in enumerate(data.PREFERENCES)]
        self.insert("Preferences", ("PrefNum", "PrefName", "ValueString"), rows)

    # --- schedules ----------------------------------------------------------------------------------
    def build_schedules(self) -> None:
        """Provider schedules on weekdays from 8 weeks back to 12 weeks ahead, plus blockouts and holidays."""
        rows: list[Row] = []
        op_rows: list[Row] = []
        staff_meeting = self.def_num("BlockoutTypes", "Staff Meeting")
        lunch = self.def_num("BlockoutTypes", "Lunch")
        for day in range(PAST_DAYS - 56, PAST_DAYS + 84):
            s = day * DAY
            wd = self.weekday(s)
            if wd >= 5:
                continue
            date = self.days[day]
            stamp = self.dt(self.edited(min(s, self.now_s) - 30 * DAY))
            if wd == 4 and day % 35 == 0:  # an occasional practice-wide long weekend
                rows.append((len(rows) + 1, date, "00:00:00", "00:00:00", "Practice", "0", "0", "", "Office closed",
                             "", "0", stamp))  # fmt: skip
                continue
            for prov in self.providers:
                if prov.hidden or prov.op == 0:
                    continue
                start, stop = ("07:00:00", "15:00:00") if prov.is_hygienist else ("08:00:00", "17:00:00")
                num = len(rows) + 1
                rows.append(
                    (num, date, start, stop, "Provider", str(prov.num), "0", "", "", str(prov.op), "0", stamp)
                )
                op_rows.append((len(op_rows) + 1, num, prov.op))
            for clinic, _ in self.clinics:
                ops = [p.op for p in self.providers if p.clinic == clinic and p.op]
                text = ",".join(map(str, ops))
                kind, start, stop, name = (
                    (staff_meeting, "08:00:00", "08:30:00", "Staff Meeting") if wd == 0 else (lunch, "12:00:00", "13:00:00", "Lunch")
                )  # fmt: skip
                num = len(rows) + 1
                rows.append((num, date, start, stop, "Blockout", "0", str(kind), name, "", text, "0", stamp))
                first = len(op_rows) + 1
                op_rows.extend((first + k, num, op) for k, op in enumerate(ops))
        cols = ("ScheduleNum", "SchedDate", "StartTime", "StopTime", "SchedType", "ProvNum", "BlockoutType",
                "blockoutType", "Note", "operatories", "EmployeeNum", "DateTStamp")  # fmt: skip
        self.insert("Schedules", cols, rows)
        self.insert("ScheduleOps", ("ScheduleOpNum", "ScheduleNum", "OperatoryNum"), op_rows)
