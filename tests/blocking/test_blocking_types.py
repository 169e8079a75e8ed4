"""The blocking client's generated types describe the async resources exactly: same methods, same parameters.

mypy trusts these Protocols (tests/resources/test_typing.py); here they are held to the classes they describe, so a
method added by hand (``resources/_extras.py``) without its blocking counterpart fails.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

from odapi_async import blocking
from odapi_async.resources._generated import RESOURCES
from odapi_async.resources._generated import _blocking_types as types


def public_methods(cls: type) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n)))


@pytest.mark.parametrize(("segment", "name"), sorted(RESOURCES.items()))
def test_each_blocking_protocol_mirrors_its_async_resource(segment: str, name: str) -> None:
    resource = getattr(importlib.import_module(f"odapi_async.resources._generated.{segment}"), name)
    protocol = getattr(types, f"Blocking{name}")
    assert public_methods(protocol) == public_methods(resource)
    for method in public_methods(resource):
        run, declared = (
            inspect.signature(getattr(resource, method)),
            inspect.signature(getattr(protocol, method)),
        )
        assert [(p.name, p.kind, p.default) for p in declared.parameters.values()] == [
            (p.name, p.kind, p.default) for p in run.parameters.values()
        ], f"{segment}.{method}"
        returned = str(declared.return_annotation)
        if inspect.iscoroutinefunction(getattr(resource, method)):
            assert "Paginator" not in returned
        else:  # a list call: the async one returns a Paginator, the blocking one a BlockingPaginator
            assert returned.startswith("BlockingPaginator["), f"{segment}.{method}: {returned}"


def test_the_blocking_session_declares_every_resource_and_holds_none() -> None:
    declared = types.BlockingResources.__annotations__
    assert declared == {segment: f"Blocking{name}" for segment, name in RESOURCES.items()}
    # Declarations only: no class attribute shadows the session's __getattr__, which makes the resources.
    assert not set(declared) & set(vars(types.BlockingResources))
    assert issubclass(blocking.OpenDental, types.BlockingResources)
    with blocking.OpenDental("d", "c") as session:
        assert type(session.patients).__name__ == "_BlockingResource"


def test_importing_the_blocking_client_loads_no_resource_module() -> None:
    # The Protocols import the resource modules for type checkers only: the import stays as fast as before.
    code = (
        "import sys, odapi_async.blocking; "
        "print(sorted(m for m in sys.modules if m.startswith('odapi_async.resources._generated.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "['odapi_async.resources._generated._blocking_types']"
