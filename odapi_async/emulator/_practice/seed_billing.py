"""Money for the synthetic practice: claims with claim procedures and claim payments, insurance estimates,
patient payments with splits, adjustments; and the running balances the patients table reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from odapi_async.emulator._practice.schema import ZERO_DATE
from odapi_async.emulator._practice.seed_setup import DAY, PracticeBuilder, Provider, Row

Proc = tuple[int, int, float, int]  # (ProcNum, code position, fee, ProvNum)


@dataclass
class Insurance:
    """One patient's coverage by one plan."""

    plan_num: int
    sub_num: int
    relat: str
    ppo: bool
    fee_sched: int


class BillingMixin:
    """Claim, payment and adjustment generation; mixed into the patient generator that owns the state."""

    builder: PracticeBuilder
    rand: Callable[[], float]
    rows: dict[str, list[Row]]
    bal: list[float]
    pending: list[float]
    defs: dict[str, list[tuple[int, str]]]
    coverage: list[int]
    billable: list[bool]
    f_split_edit: Callable[[int], str]
    f_cp_edit: Callable[[int], str]
    f_cp_entry: Callable[[int], str]

    def _complete_visit(self, pat: int, s: int, procs: list[Proc], ins1: Insurance | None,
                        ins2: Insurance | None, clinic: int, doc: Provider, guar: int) -> None:  # fmt: skip
        builder, rand = self.builder, self.rand
        i = pat - 1
        total = sum(p[2] for p in procs)
        self.bal[i] += total
        ins_part = [0.0] * len(procs)
        billable = [p for p in procs if self.billable[p[1]]]
        if ins1 is not None and billable and total > 0:
            ins_part = self._claim(pat, s, procs, ins1, ins2, clinic, doc)
        if rand() < 0.08:
            num, _c, fee, _ = procs[0]
            if fee > 0:
                kind = builder.pick(("Professional Discount", "Cash Discount", "Senior Discount"))
                self._adjustment(pat, s, num, -round(fee * 0.1, 2), doc, clinic, kind)
        portion = [round(p[2] - ins_part[k], 2) for k, p in enumerate(procs)]
        owed = round(sum(portion), 2)
        if owed <= 0.5 or rand() >= 0.8:
            return
        pay_s = s + 1800 if rand() < 0.6 else min(builder.now_s - 3600, s + (1 + int(rand() * 40)) * DAY)
        if rand() < 0.1:
            portion = [round(x / 2, 2) for x in portion]
            owed = round(sum(portion), 2)
        pay_type = builder.pick(self.defs["PaymentTypes"])
        pay_num = len(self.rows["payments"]) + 1
        date = builder.d(pay_s)
        edit = builder.edited(pay_s)
        self.rows["payments"].append((
            pay_num, pay_type[0], pay_type[1], date, f"{owed:.2f}", builder.digits(4) if pay_type[1] == "Check" else "",
            "", "", guar, str(clinic), date, "false", builder.pick(builder.users), builder.dt(edit), ZERO_DATE, "false",
        ))  # fmt: skip
        splits = self.rows["paysplits"]
        split_edit = self.f_split_edit(edit)
        for k, (proc_num, _, _, prov_num) in enumerate(procs):
            if portion[k] > 0:
                splits.append(
                    (
                        len(splits) + 1,
                        portion[k],
                        pat,
                        pay_num,
                        prov_num,
                        date,
                        proc_num,
                        date,
                        clinic,
                        split_edit,
                    )
                )
        self.bal[i] -= owed

    def _claim(self, pat: int, s: int, procs: list[Proc], ins1: Insurance, ins2: Insurance | None,
               clinic: int, doc: Provider) -> list[float]:  # fmt: skip
        builder, rand = self.builder, self.rand
        i = pat - 1
        age = (builder.now_s - s) // DAY
        x = rand()
        if age > 45:
            status = "R" if x < 0.93 else "S"
        elif age > 14:
            status = "R" if x < 0.5 else "S"
        elif age > 3:
            status = "S" if x < 0.6 else "W" if x < 0.8 else "H"
        else:
            status = "U" if x < 0.6 else "W"
        received = status == "R"
        sent_s = s + (1 + int(rand() * 3)) * DAY if status in ("S", "R") else 0
        recv_s = min(builder.now_s - 3600, sent_s + (10 + int(rand() * 25)) * DAY) if received else 0
        claim_num = len(self.rows["claims"]) + 1
        pay_num = 0
        fees = builder.fees.get(ins1.fee_sched) if ins1.ppo else None
        ins_part: list[float] = []
        cp_rows = self.rows["claimprocs"]
        date, recv_date = builder.d(s), builder.d(recv_s) if received else ZERO_DATE
        if received:
            pay_num = len(self.rows["claimpayments"]) + 1
        ded_left = 50.0 if rand() < 0.15 else 0.0
        totals = [0.0, 0.0, 0.0, 0.0, 0.0]  # fee, estimate, paid, deductible, write-off
        edit_s = builder.edited(recv_s or sent_s or s)
        cp_edit = builder.dt(edit_s)
        user = builder.pick(builder.users)
        sec_entry = builder.d(s)
        for proc_num, c, fee, prov_num in procs:
            if not self.billable[c]:
                ins_part.append(0.0)
                continue
            allowed = fees[c] if fees is not None else fee
            pct = self.coverage[c]
            est = round(allowed * pct / 100, 2)
            ded = min(ded_left, est)
            ded_left -= ded
            write_off = round(fee - allowed, 2) if fees is not None else 0.0
            paid = round(est - ded, 2) if received else 0.0
            totals[0] += fee
            totals[1] += est
            totals[2] += paid
            totals[3] += ded
            totals[4] += write_off
            ins_part.append(round(est - ded + write_off, 2))
            cp_rows.append((
                len(cp_rows) + 1, proc_num, claim_num, pat, prov_num, fee, est, ded,
                "Received" if received else "NotReceived", paid, pay_num, ins1.plan_num, recv_date, write_off,
                builder.codes[c][1], -1.0, pct, -1, -1.0, -1.0, est, date, date, ded, -1.0, est, -1.0, -1.0,
                write_off, -1.0, clinic, ins1.sub_num, 1 if received else 0, user, sec_entry, cp_edit,
                recv_date, recv_date,
            ))  # fmt: skip
        tracking = builder.pick(self.defs["ClaimCustomTracking"]) if status == "S" and age > 30 else (0, "")
        self.rows["claims"].append((
            claim_num, pat, date, builder.d(sent_s) if sent_s else ZERO_DATE, status, recv_date, ins1.plan_num, doc.num,
            round(totals[0], 2), round(totals[1], 2), round(totals[2], 2), round(totals[3], 2), "N",
            "", "P", doc.num, ins1.relat, ins2.plan_num if ins2 else 0, ins2.relat if ins2 else "Self",
            round(totals[4], 2), "1", ins1.sub_num, ins2.sub_num if ins2 else 0, tracking[0], tracking[1], cp_edit,
        ))  # fmt: skip
        if received:
            pay_type = builder.pick(self.defs["InsurancePaymentType"])
            group = self.defs["ClaimPaymentGroups"][0]
            carrier = builder.plans[ins1.plan_num - 1].carrier
            self.rows["claimpayments"].append((
                pay_num, recv_date, f"{totals[2]:.2f}", builder.digits(6), "", "", clinic, 0, carrier, recv_date, "false",
                pay_type[0], pay_type[1], self.f_cp_entry(recv_s), self.f_cp_edit(edit_s), group[0], group[1],
            ))  # fmt: skip
            self.bal[i] -= totals[2] + totals[4]
        else:
            self.pending[i] += totals[1] - totals[3] + totals[4]
        return ins_part

    def _estimates(self, pat: int, procs: list[Proc], ins: Insurance, clinic: int, created: int) -> None:
        builder = self.builder
        rows = self.rows["claimprocs"]
        fees = builder.fees.get(ins.fee_sched) if ins.ppo else None
        entry = builder.d(created)
        edit = builder.dt(builder.edited(created))
        for proc_num, c, fee, prov_num in procs:
            if not self.billable[c]:
                continue
            allowed = fees[c] if fees is not None else fee
            pct = self.coverage[c]
            est = round(allowed * pct / 100, 2)
            write_off = round(fee - allowed, 2) if fees is not None else 0.0
            rows.append((
                len(rows) + 1, proc_num, 0, pat, prov_num, 0.0, est, 0.0, "Estimate", 0.0, 0, ins.plan_num,
                ZERO_DATE, 0.0, "", -1.0, pct, -1, -1.0, -1.0, est, ZERO_DATE, ZERO_DATE, 0.0, -1.0, est, -1.0, -1.0,
                write_off, -1.0, clinic, ins.sub_num, 0, 0, entry, edit, ZERO_DATE, ZERO_DATE,
            ))  # fmt: skip

    def _adjustment(
        self, pat: int, s: int, proc_num: int, amount: float, doc: Provider, clinic: int, kind: str
    ) -> None:
        builder, rand = self.builder, self.rand
        if amount == 0.0:
            amount = float(5 + int(rand() * 20))
        rows = self.rows["adjustments"]
        date = builder.d(s)
        rows.append((len(rows) + 1, date, amount, pat, builder.def_num("AdjTypes", kind), kind, doc.num, kind, date,
                     proc_num, date, clinic, builder.pick(builder.users), builder.dt(builder.edited(s))))  # fmt: skip
        self.bal[pat - 1] += amount
