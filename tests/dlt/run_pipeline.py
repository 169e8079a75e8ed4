"""Run the dlt source once, as a user's script would: ``python run_pipeline.py OFFICES DUCKDB PIPELINES RESOURCES``.

The tests start it as a subprocess so that they can kill it at any point.
"""

from __future__ import annotations

import sys

import dlt

from odapi_async.dlt import failed_offices, opendental_source


def main(offices: str, duckdb_path: str, pipelines_dir: str, resources: str) -> int:
    pipeline = dlt.pipeline(
        "killed",
        destination=dlt.destinations.duckdb(duckdb_path),
        dataset_name="od",
        pipelines_dir=pipelines_dir,
    )
    pipeline.run(opendental_source(offices, resources.split(",")))
    return 1 if failed_offices(pipeline) else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
