"""``odapi sync --events``: a change at the office reaches the database through its webhook, before any sweep."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sqlite3
import time
from pathlib import Path

from clitools import DEV, odapi_popen

KEY = "k-events"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def apt_nums(db: Path) -> set[int]:
    if not db.exists():
        return set()
    try:
        with sqlite3.connect(db) as conn:
            found = {row[0] for row in conn.execute('SELECT "AptNum" FROM appointments')}
        conn.close()
        return found
    except sqlite3.OperationalError:  # the table is not there yet
        return set()


def wait_for(condition, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_an_appointment_made_at_the_office_arrives_by_webhook(emulator, tmp_path) -> None:
    db = tmp_path / "events.sqlite"
    port = free_port()
    proc = odapi_popen(
        "sync", "--db", str(db), "--resources", "appointments", "--quiet",
        "--events", f"127.0.0.1:{port}", "--polling-seconds", "1", "--sweep-every", "3600", "--for", "30",
        "--endpoint", f"local={emulator.endpoints['local']}", "--mode", "local",
        "--developer-key", DEV, "--customer-key", KEY,
    )  # fmt: skip
    try:
        wait_for(lambda: len(apt_nums(db)) > 100 or proc.poll() is not None, 40, "the first sweep")
        assert proc.poll() is None, proc.communicate(timeout=10)[1][-3000:]
        swept = apt_nums(db)

        async def make() -> int:
            async with emulator.session(KEY) as od:
                pat = (await od.patients.list(Limit=1).first_page())[0]
                op = (await od.operatories.list().collect())[0]
                when = dt.datetime.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=40)
                made = await od.appointments.create(PatNum=pat.PatNum, AptDateTime=when, Op=op.OperatoryNum)
                return made.AptNum

        new = asyncio.run(make())
        assert new not in swept
        # The next sweep is an hour away: only the webhook can bring it.
        wait_for(lambda: new in apt_nums(db), 20, "the webhook's row")
        assert proc.poll() is None  # still following
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except Exception:
            proc.kill()
            _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err, err[-3000:]
