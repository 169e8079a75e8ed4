"""Every Python example of README.md and docs/ runs here, against the emulator: an example that rots fails.

Each page is one session, like a notebook: its blocks run in order in one namespace, with top-level ``await``
(on one event loop per page; a block without ``await`` runs as a script would, so ``asyncio.run`` and
``anyio.run`` work in it). Before the first block the namespace holds only these names (the docs may use them
as placeholders a reader fills in):

- ``od``: an open ``OpenDental`` session on the emulator; ``emu``: the emulator (running in a thread);
- ``OpenDental``, ``DEVELOPER_KEY`` / ``CUSTOMER_KEY`` (the keys the emulator accepts, also in
  ``ODAPI_DEVELOPER_KEY`` / ``ODAPI_CUSTOMER_KEY``), ``since`` (a datetime), ``date``, ``datetime``, ``asyncio``.

The SDK's default endpoints (Local, Service, Remote) point at the emulator's listeners and the emulator
accepts the docs' placeholder keys (``"..."``), so ``OpenDental(developer_key="...", customer_key="...")`` in an
example talks to it. The Remote throttle intervals are shortened (client and emulator alike). A connection to
anything but a loopback address (``service_host="192.168.1.10"``, ``redis.internal``) is refused and fails the
test: the examples never reach beyond this machine. A ``def test_*`` an example defines is called with
``od_session`` / ``od_emulator`` (the pytest plugin's fixture names) bound to the prelude's ``od`` / ``emu``.

The convention for a block that must not run is in ``docblocks.py`` (``<!-- doc-test: skip <reason> -->``).
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import gc
import inspect
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docblocks import ROOT, Block, blocks, is_reference, pages

import odapi_async._session
import odapi_async._settings
from odapi_async import OpenDental
from odapi_async.emulator import Emulator

PLACEHOLDER_KEY = "..."
FAST = {"read_all": 0.02, "full": 0.005, "enterprise": 0.0025}
#: Blocks marked not to run, in all the pages: few, each with its reason (raise only with a good one).
MAX_SKIPPED = 6
BLOCK_SECONDS = 60

RUN_PAGES = [p for p in pages() if not is_reference(p) and blocks(p)]
REFERENCE_PAGES = [p for p in pages() if is_reference(p) and blocks(p)]


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(
        seed=1,
        patients=200,
        developer_key=PLACEHOLDER_KEY,
        customer_keys={PLACEHOLDER_KEY: "full", "docs-read-only": "read_all"},
        intervals=FAST,
    )
    with emu.in_thread():
        yield emu


class OutsideConnection(AssertionError):
    pass


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every socket connect (any thread) to a non-loopback address is refused and recorded."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: Any) -> None:
        if isinstance(address, tuple) and address:
            try:
                loopback = ipaddress.ip_address(address[0]).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                attempts.append(str(address))
                raise OutsideConnection(f"a docs example tried to connect to {address}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts


@pytest.fixture
def docs_world(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, loopback_only: list[str]
) -> Iterator[list[str]]:
    """The SDK's defaults aimed at the emulator; files an example writes land in a temporary folder."""
    for mode, url in emulator.endpoints.items():
        monkeypatch.setitem(odapi_async._session.DEFAULT_ENDPOINTS, mode, url)
    for tier, seconds in FAST.items():
        monkeypatch.setitem(odapi_async._settings.TIER_INTERVALS, tier, seconds)
    monkeypatch.setenv("ODAPI_DEVELOPER_KEY", PLACEHOLDER_KEY)
    monkeypatch.setenv("ODAPI_CUSTOMER_KEY", PLACEHOLDER_KEY)
    monkeypatch.setenv("ODAPI_PROGRESS", "0")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "DLT_DATA_DIR", str(tmp_path / ".dlt")
    )  # dlt keeps pipelines' state here, not in ~/.dlt
    # The offices file the pages name (`offices.toml`): one office, the emulator's Local listener.
    (tmp_path / "offices.toml").write_text(
        '[offices.northside]\ncustomer_key_env = "ODAPI_CUSTOMER_KEY"\n'
        f'[offices.northside.endpoints]\nlocal = "{emulator.endpoints["local"]}"\n'
    )
    thresholds = gc.get_threshold()
    try:
        yield loopback_only
    finally:
        gc.set_threshold(*thresholds)  # docs/throttle.md tunes the collector: not for the rest of the suite
        gc.unfreeze()


def _prelude(emu: Emulator) -> dict[str, Any]:
    return {
        "__name__": "__docs__",
        "od": OpenDental(PLACEHOLDER_KEY, PLACEHOLDER_KEY, modes=("local",)),
        "emu": emu,
        "OpenDental": OpenDental,
        "DEVELOPER_KEY": PLACEHOLDER_KEY,
        "CUSTOMER_KEY": PLACEHOLDER_KEY,
        "since": dt.datetime(2024, 1, 1),
        "date": dt.date,
        "datetime": dt.datetime,
        "asyncio": asyncio,
    }


def _run(
    block: Block, namespace: dict[str, Any], loop: asyncio.AbstractEventLoop, fixtures: dict[str, Any]
) -> None:
    code = compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    before = set(namespace)
    if code.co_flags & inspect.CO_COROUTINE:
        loop.run_until_complete(asyncio.wait_for(eval(code, namespace), BLOCK_SECONDS))
    else:
        exec(code, namespace)
    for name in sorted(set(namespace) - before):
        func = namespace[name]
        if name.startswith("test_") and inspect.iscoroutinefunction(func):
            args = {p: fixtures[p] for p in inspect.signature(func).parameters}
            loop.run_until_complete(asyncio.wait_for(func(**args), BLOCK_SECONDS))


@pytest.mark.parametrize("page", RUN_PAGES, ids=_page_id)
def test_the_examples_of_a_page_run(page: Path, emulator: Emulator, docs_world: list[str]) -> None:
    runnable = [b for b in blocks(page) if b.skip is None]
    if not runnable:
        pytest.skip("every block of this page is marked not to run (each with its reason)")
    loop = asyncio.new_event_loop()
    namespace = _prelude(emulator)
    prelude_session = namespace["od"]
    # the prelude's, even after a block rebinds the names (emulator.md's own ``emu``)
    fixtures = {"od_session": prelude_session, "od_emulator": emulator}
    try:
        for block in runnable:
            try:
                _run(block, namespace, loop, fixtures)
            except BaseException as exc:
                raise AssertionError(f"the example at {block.where} failed: {exc!r}\n{block.code}") from exc
    finally:
        sessions = {id(s): s for s in (prelude_session, namespace.get("od")) if isinstance(s, OpenDental)}
        for session in sessions.values():
            loop.run_until_complete(session.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert docs_world == [], f"examples tried to reach beyond this machine: {docs_world}"


def test_blocks_marked_not_to_run_are_few() -> None:
    skipped = [b for p in pages() if not is_reference(p) for b in blocks(p) if b.skip]
    assert len(skipped) <= MAX_SKIPPED, "\n".join(f"{b.where}: {b.skip}" for b in skipped)
    assert all(len(b.skip or "") >= 10 for b in skipped), "say why in words"


def test_the_pages_have_examples_to_run() -> None:
    """The extractor finds the README's and the docs' blocks (a broken extractor would run nothing)."""
    found = {_page_id(p) for p in RUN_PAGES}
    assert {"README.md", "docs/index.md", "docs/pagination.md", "docs/errors.md"} <= found
    assert sum(len(blocks(p)) for p in RUN_PAGES) >= 25


def _od_calls(tree: ast.AST) -> Iterator[tuple[str, str, list[str]]]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and isinstance(node.func.value.value, ast.Name)
            and node.func.value.value.id == "od"
        ):
            yield node.func.value.attr, node.func.attr, [k.arg for k in node.keywords if k.arg]


@pytest.mark.parametrize("page", REFERENCE_PAGES, ids=_page_id)
def test_the_reference_examples_name_real_operations(page: Path) -> None:
    """Generated with placeholder values, so checked, not run: valid Python, and each ``od.x.y(...)`` names a
    resource and an operation of the session, with parameter names the operation takes."""
    od = OpenDental(PLACEHOLDER_KEY, PLACEHOLDER_KEY, modes=("local",))
    checked = 0
    for block in blocks(page):
        tree = compile(
            block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT | ast.PyCF_ONLY_AST
        )
        for resource, operation, keywords in _od_calls(tree):
            method = getattr(getattr(od, resource, None), operation, None)
            assert method is not None, f"{block.where}: od.{resource}.{operation} does not exist"
            params = inspect.signature(method).parameters
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            typed = _typed_params(params)
            for keyword in keywords:
                assert keyword in params or keyword in typed or (takes_any and not typed), (
                    f"{block.where}: od.{resource}.{operation} takes no {keyword!r}"
                )
            checked += 1
    assert checked, f"{page}: no od.<resource>.<operation>(...) call found in its examples"


def _typed_params(params: Any) -> set[str]:
    """The names of an ``**params: Unpack[TypedDict]`` parameter, if the operation has one."""
    import typing

    names: set[str] = set()
    for p in params.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            for arg in typing.get_args(p.annotation):
                if hasattr(arg, "__annotations__"):
                    names |= set(typing.get_type_hints(arg))
    return names


def test_the_quickstart_example_runs() -> None:
    """``examples/quickstart.py``, which the README names, as a user runs it (web_app, fastapi_app and the
    notebook are run by tests/ergonomics)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAPI_")}
    result = subprocess.run(
        [sys.executable, "examples/quickstart.py"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "created commlog" in result.stdout
