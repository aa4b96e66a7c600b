"""The cutover's one exception: a step failed, and what that left behind.

::

    CutoverFailed      a step failed; the message says which, and whether
                       anything was written (plan: never; apply and drop: rolled
                       back whole, except where the message says otherwise)

A refused drop is not a failure: :class:`services.cutover.drop.DropRefused`
carries the reasons, and the run reports them.
"""

from __future__ import annotations


class CutoverFailed(Exception):
    """Raised when a cutover step failed; the message says what was kept."""
