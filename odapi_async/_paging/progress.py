"""A progress display for long collections (``collect()``, ``to_polars()``): rows, pages, rate, elapsed.

The API gives no total, so the display counts up (towards ``max_rows`` when one is given). It is shown only
when asked (``progress=True``) or, with ``progress=None`` (the default), in an interactive session: IPython or
Jupyter, or the plain Python prompt. Scripts, servers and workers stay silent unless they ask; the environment
variable ``ODAPI_PROGRESS`` (``1``/``0``) overrides the guess either way. The display starts only after the
first page, when a second one is needed, so a short list never flickers; it needs ``rich`` (and ``ipywidgets``
in Jupyter: the ``notebook`` extra) and is skipped silently without them unless asked for explicitly.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from types import TracebackType
from typing import Any

from odapi_async._util.optional import MissingExtra

__all__ = ["CollectProgress", "progress_wanted"]

_ENV = "ODAPI_PROGRESS"


def _interactive() -> bool:
    """True in IPython/Jupyter or at the plain Python prompt; False in scripts and servers."""
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        get = getattr(ipython, "get_ipython", None)
        if get is not None and get() is not None:
            return True
    return hasattr(sys, "ps1")


def progress_wanted(progress: bool | None) -> bool:
    """Whether to show progress: the caller's word, else ``ODAPI_PROGRESS``, else interactive sessions only."""
    if progress is not None:
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be True, False or None; got {progress!r}")
        if progress and not _can_draw():
            missing = "rich" if importlib.util.find_spec("rich") is None else "ipywidgets"
            raise MissingExtra("progress=True", "notebook", missing)
        return progress
    env = os.environ.get(_ENV, "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return _can_draw()
    if env in ("0", "false", "no", "off"):
        return False
    return _interactive() and _can_draw()


def _can_draw() -> bool:
    """rich is there, and in a Jupyter kernel so is ipywidgets (rich draws live output through it there)."""
    if importlib.util.find_spec("rich") is None:
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if type(shell).__name__ == "ZMQInteractiveShell":
        return importlib.util.find_spec("ipywidgets") is not None
    return True


def make_console() -> Any:
    """The console the display writes to (stderr; tests replace this to capture it)."""
    from rich.console import Console

    return Console(stderr=True)


class CollectProgress:
    """Counts rows and pages of one collection; draws them with rich once a second page is under way."""

    def __init__(self, what: str, *, enabled: bool, total: int | None = None) -> None:
        self.what = what
        self.enabled = enabled
        self.total = total
        self.rows = 0
        self.pages = 0
        self.started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> CollectProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._draw()
            self._bar.stop()
            self._bar = None

    def page(self, rows: int) -> None:
        """One more page of ``rows`` rows arrived."""
        self.rows += rows
        self.pages += 1
        if not self.enabled:
            return
        if self._bar is None:
            if self.pages < 2:
                return  # a one-page list shows nothing: the display starts with the second page
            self._start()
        self._draw()

    def _start(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        columns: list[Any] = [TextColumn("[bold]{task.description}")]
        if self.total is not None:
            columns.append(BarColumn())
        columns += [TextColumn("{task.fields[summary]}"), TimeElapsedColumn()]
        self._bar = Progress(*columns, console=make_console(), transient=False)
        self._task = self._bar.add_task(self.what, total=self.total, summary="")
        self._bar.start()

    def _draw(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        of = f"/{self.total:,}" if self.total is not None else ""
        summary = f"{self.rows:,}{of} rows, {self.pages:,} pages, {self.rows / elapsed:,.0f} rows/s"
        self._bar.update(self._task, completed=self.rows, summary=summary)
