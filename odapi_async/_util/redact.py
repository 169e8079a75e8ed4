"""Taking keys out of text the SDK passes on (error messages, snippets of answers, network errors).

Two rules, both cheap enough for error paths:

- The ``Authorization`` form ``ODFHIR {developer}/{customer}`` is blanked wherever it appears, whatever the keys:
  a server that echoes request headers (an HTML error page, a proxy's debug answer) shows the key in that form,
  and this needs no knowledge of the keys.
- A key given to :func:`scrub` is replaced where it can actually appear. A long key (real keys are long) is
  replaced anywhere: no word of a message contains it by chance, and a key glued to other text (``Key=abc…``,
  percent-encoded in a URL) must not leak. A short key (``"c"``, common against the emulator) is replaced only
  as a whole token, so that "All connection attempts failed" keeps its letters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

#: What replaces a key.
MASK = "***"
#: Keys at least this long are replaced anywhere in a text; shorter ones only as whole tokens.
SUBSTRING_MIN = 8

# The scheme name, then whatever follows up to the next blank: the keys may hold any printable character, so
# blanking a little too much (a closing tag or quote after the keys) is the safe side.
_AUTHORIZATION = re.compile(r"(ODFHIR)[ \t]+\S+", re.IGNORECASE)


class Secret:
    """A key that never prints: its repr and str are ``'***'``; :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


def scrub_authorization(text: str) -> str:
    """``text`` with every ``ODFHIR …`` credential blanked."""
    if "odfhir" not in text.lower():
        return text
    return _AUTHORIZATION.sub(r"\1 " + MASK, text)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the ``Authorization`` form and without any of ``secrets``."""
    text = scrub_authorization(text)
    for secret in secrets:
        if secret:
            text = _pattern(secret).sub(MASK, text)
    return text


def _pattern(secret: str) -> re.Pattern[str]:
    # Not cached: a cache would keep every key (in a pattern whose repr shows it) for the life of the process.
    forms = sorted({secret, quote(secret, safe=""), quote(secret, safe="/")}, key=len, reverse=True)
    alternatives = "|".join(re.escape(form) for form in forms)
    if len(secret) >= SUBSTRING_MIN:
        return re.compile(alternatives)
    # A whole token: no letter or digit on either side (punctuation, blanks and the ends of the text are fine:
    # "ODFHIR d/c", "key 'c'", "c." all count).
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")
