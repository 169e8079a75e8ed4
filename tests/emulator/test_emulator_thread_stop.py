"""``with Emulator().in_thread():`` ends even when the block is empty (a stop right after the start)."""

from __future__ import annotations

import threading

import pytest

from odapi_async.emulator import Emulator


@pytest.mark.slow("twenty emulator start/stop cycles, each seeding a practice: ~8 s, more under load")
def test_a_quick_start_and_stop_ends() -> None:
    """The stop used to be a ``loop.stop()`` that could land while the start-up ``run_until_complete`` was
    ending: it was lost and the thread served forever. Twenty quick cycles, each bounded."""

    def cycles() -> None:
        for _ in range(20):
            with Emulator(patients=10).in_thread():
                pass

    worker = threading.Thread(target=cycles, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "an emulator thread did not stop"
