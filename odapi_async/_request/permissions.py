"""API permission groups: which one an operation needs, said before the request and in the 401.

The docs' permissions table maps every method to a group ("Read All", "Comm", "Appointments", "Insurance"…;
anything unlisted that is not a GET is "AllOthers"); the spec carries it per operation and the generator puts
it on each :class:`~odapi_async._operation.Operation`. A key without the group gets a 401 that the server does
not explain, so the SDK names the group in the error; and a session set up with ``tier="read_all"`` (a key with
only Read All) is warned before it sends a write that cannot succeed.
"""

from __future__ import annotations

import warnings

from odapi_async._exceptions import Unauthorized
from odapi_async._operation import Operation

__all__ = ["READ_ALL", "PermissionWarning", "name_the_permission", "warn_if_read_only"]

READ_ALL = "Read All"


class PermissionWarning(UserWarning):
    """A call that the session's key (by its stated tier) does not have the API permission for."""


def warn_if_read_only(op: Operation, tier: str) -> None:
    """Warn before a request a read-only key cannot make (only when the session says ``tier="read_all"``)."""
    if tier == "read_all" and op.permission and op.permission != READ_ALL:
        warnings.warn(
            f"{op.name}() needs the API permission {op.permission!r}, and this session's key is read-only "
            "(tier='read_all'): the server will answer 401",
            PermissionWarning,
            stacklevel=5,  # the caller of the generated method (for a list: where it is iterated)
        )


def name_the_permission(exc: Unauthorized, op: Operation) -> Unauthorized:
    """``exc``, its message naming the group ``op`` needs (``explanation`` stays the server's own text)."""
    if not op.permission:
        return exc
    exc.permission = op.permission
    # A 401 also means a wrong or disabled key: say both.
    exc.args = (
        f"{exc.args[0] if exc.args else ''} ({op.name} needs the API permission {op.permission!r}; if the keys "
        "are right, ask for it to be granted: docs, API Permissions)",
    )
    return exc
