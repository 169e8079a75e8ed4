"""Imports run one way (docs/architecture.md, "Layers"): nothing below the session imports it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "odapi_async"
#: Modules the session builds on: none of them may import the session, even for type checking.
BELOW_THE_SESSION = [
    *sorted((PACKAGE / "resources").rglob("*.py")),
    *(
        PACKAGE / name
        for name in (
            "_resource.py",
            "_paging/paginator.py",
            "_request/interface.py",
            "_request/attempt.py",
            "_request/decide.py",
            "_request/routing.py",
            "_throttle/backend.py",
            "_throttle/key.py",
            "_request/pools.py",
            "_hub.py",
            "_blocking_loop.py",
        )
    ),
]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.rsplit(".", 1)[-1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.rsplit(".", 1)[-1] for alias in node.names)
    return found


def test_no_module_below_the_session_imports_it() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in BELOW_THE_SESSION if "_session" in imported_modules(p)]
    assert len(BELOW_THE_SESSION) > 100  # the generated resources are all looked at
    assert offenders == []
