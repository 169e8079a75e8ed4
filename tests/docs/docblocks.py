"""The Python code blocks of the README and of every docs page, for the tests that run them.

A fenced block whose info string is ``python`` or ``py`` is an example, and the tests run it. A block that
cannot run (it needs an office's proxy, a sketch of a structure, ...) says so on the line just above its fence:

    <!-- doc-test: skip <why, in words> -->

The reason is required, and such blocks must stay few (the test counts them). Generated reference pages
(``docs/reference/``) are checked, not run: their examples carry placeholder values.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = frozenset({"python", "py", "python3"})
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)[^`]*$")
_SKIP = re.compile(r"^\s*<!--\s*doc-test:\s*skip\b(?P<reason>.*?)-->\s*$")
_MARK = re.compile(r"<!--\s*doc-test:")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    code: str
    skip: str | None  # the reason, when the block is marked not to run

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


class MarkError(ValueError):
    """A ``doc-test`` mark that is malformed or not directly above a Python block."""


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/ (new pages are picked up as they are added)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def is_reference(path: Path) -> bool:
    return (ROOT / "docs" / "reference") in path.parents


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    pending: tuple[int, str] | None = None  # a skip mark waiting for its block
    i = 0
    while i < len(lines):
        line = lines[i]
        skip = _SKIP.match(line)
        if skip:
            reason = skip.group("reason").strip(" :-")
            if not reason:
                raise MarkError(f"{path}:{i + 1}: a doc-test skip mark needs a reason")
            pending = (i + 1, reason)
            i += 1
            continue
        if _MARK.search(line):
            raise MarkError(f"{path}:{i + 1}: unknown doc-test mark (only 'skip <reason>')")
        opening = _OPEN.match(line)
        if opening is None:
            if line.strip() and pending is not None:
                raise MarkError(f"{path}:{pending[0]}: a doc-test mark must stand just above a code block")
            i += 1
            continue
        fence, indent = opening.group("fence"), opening.group("indent")
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence[0] * len(fence)):
            end += 1
        body = [text[len(indent) :] if text.startswith(indent) else text for text in lines[i + 1 : end]]
        if opening.group("info").lower() in LANGUAGES:
            code = textwrap.dedent("\n".join(body)) + "\n"
            found.append(Block(path, i + 1, code, pending[1] if pending else None))
        elif pending is not None:
            raise MarkError(f"{path}:{pending[0]}: a doc-test mark above a block that is not Python")
        pending = None
        i = end + 1
    return found
