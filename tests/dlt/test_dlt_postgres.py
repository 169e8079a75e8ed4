"""docs/dlt.md's PostgreSQL pipeline against a real server: the same rows as ``odapi sync``, PostgreSQL's types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pytest
from dlttools import canonical, office_rows, offices_file, store_columns, store_form

from odapi_async.dlt import opendental_source

pg_support = pytest.importorskip(
    "pg_support", reason="tests/pg_support.py (the throwaway cluster) is not here"
)
pytest.importorskip("psycopg2", reason="dlt's PostgreSQL destination is not installed (dlt[postgres])")

pytestmark = [pytest.mark.integration, pytest.mark.slow("a PostgreSQL cluster and a dlt load (7 s)")]

RESOURCES = ["appointments", "patients"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    yield from pg_support.start_cluster()


def test_the_postgresql_example_loads_the_office_rows(emulator, cluster, tmp_path) -> None:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    database = pg_support.fresh_database(cluster)
    offices = offices_file(tmp_path / "offices.toml", emulator, {"north": "k-north"})
    pipeline = dlt.pipeline(
        "opendental_pg",
        destination=dlt.destinations.postgres(cluster.url(database)),
        dataset_name="opendental",
        pipelines_dir=str(tmp_path / "dlt"),
    )
    pipeline.run(opendental_source(offices, RESOURCES))
    naming = NamingConvention()
    with cluster.admin(database) as conn:
        for resource in RESOURCES:
            want = office_rows(emulator, "k-north", resource, "north")
            cols = ", ".join(naming.normalize_path(c) for c in store_columns(resource))
            rows = conn.execute(f"SELECT {cols} FROM opendental.{resource} WHERE office = %s", ("north",))
            have = {canonical(resource, tuple(store_form(v) for v in row)) for row in rows.fetchall()}
            assert want and have == want, resource
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'opendental' AND table_name = 'appointments'"
            ).fetchall()
        )
    assert types["apt_date_time"] == "timestamp without time zone"  # the office's wall clock
    assert types["is_new_patient"] == "boolean" and types["apt_num"] == "bigint"
