"""An offices-file entry becomes the session the same flags would make; events read the key from the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from odapi_async import ConfigurationError
from odapi_async.cli._common import Connection, office_from_entry
from odapi_async.sync import OfficeConfig, OfficeEntry, SyncStore
from odapi_async.sync._follow import make_event_receiver

ENTRY = OfficeEntry(
    name="north",
    customer_key="cust-north",
    tier="full",
    modes=("service", "remote"),
    service_host="10.0.0.5",
    endpoints={"remote": "http://remote.test/api/v1"},
    intervals={"full": 0.5},
)


def test_the_file_sets_the_session_and_the_flags_win() -> None:
    office = office_from_entry(ENTRY, "dev-file", Connection(developer_key="dev-flag"))
    assert office.name == "north" and office.customer_key == "cust-north"
    assert "cust-north" not in repr(office)
    od = office.session()
    assert od._core.auth.reveal() == "ODFHIR dev-file/cust-north"  # the file's developer key first
    assert od.modes == ("service", "remote")
    assert od._core.base_urls["service"] == "http://10.0.0.5:30223/api/v1"
    assert od._core.base_urls["remote"] == "http://remote.test/api/v1"

    # --endpoint without --mode: the cascade is the modes that have an endpoint, file's and flag's.
    flags = Connection(developer_key="dev-flag", endpoints={"local": "http://127.0.0.1:9/api/v1"})
    od = office_from_entry(ENTRY, None, flags).session()
    assert od._core.auth.reveal() == "ODFHIR dev-flag/cust-north"
    assert od.modes == ("local", "remote")
    assert od._core.base_urls["local"] == "http://127.0.0.1:9/api/v1"

    od = office_from_entry(ENTRY, None, Connection(developer_key="d", modes=("remote",))).session()
    assert od.modes == ("remote",)


def test_the_events_receiver_takes_each_office_key_from_its_config(tmp_path: Path) -> None:
    with SyncStore(tmp_path / "s.sqlite") as store:
        offices = [office_from_entry(ENTRY, "dev", Connection()), Connection(customer_key=" k2 ").office("b")]
        receiver = make_event_receiver(offices, store, ["appointments"])
        assert dict(receiver._keys) == {"north": b"cust-north", "b": b"k2"}

        def no_session() -> None:
            raise AssertionError("a session was made only to read its key")

        with pytest.raises(ConfigurationError, match="office 'hand-made'.*customer key"):
            make_event_receiver([OfficeConfig("hand-made", no_session)], store, ["appointments"])  # type: ignore[arg-type]
