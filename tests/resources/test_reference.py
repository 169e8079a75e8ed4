"""The per-resource reference pages: regenerated from the spec they match the committed ones, and every example
on them is valid Python that names a real method."""

from __future__ import annotations

import ast
import filecmp
import re
import subprocess
import sys
from pathlib import Path

from odapi_async import Hub, OpenDental

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "docs" / "reference"


def test_reference_matches_the_spec(tmp_path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_reference.py"), "--out", str(tmp_path)], check=True
    )
    names = sorted(p.name for p in PAGES.glob("*.md"))
    assert names == sorted(p.name for p in tmp_path.glob("*.md"))
    _, mismatch, errors = filecmp.cmpfiles(PAGES, tmp_path, names, shallow=False)
    assert mismatch == [] and errors == [], f"regenerate with `nox -s generate`: {mismatch}"


def test_every_resource_has_a_page_and_every_example_names_a_real_method() -> None:
    od = OpenDental("dev", "cust-reference", modes=("local",), hub=Hub())
    from odapi_async.resources._generated import RESOURCES

    assert {p.stem for p in PAGES.glob("*.md")} == {*RESOURCES, "index"}
    examples = 0
    for page in PAGES.glob("*.md"):
        for code in re.findall(r"```python\n(.*?)```", page.read_text(), re.S):
            ast.parse(code, mode="exec", feature_version=(3, 10))  # top-level await parses at module level
            call = re.search(r"od\.(\w+)\.(\w+)\(", code)
            assert call is not None, code
            assert callable(getattr(getattr(od, call[1]), call[2])), code
            examples += 1
    assert examples >= 356  # one per operation of the spec
