"""One cutover run as the command line starts it: plan, apply, drop, in that order.

The old tables are read from ``source_url`` when given (the old system's own
database) and otherwise from Switchboard's database; everything new is written
to Switchboard's database. Dropping always happens after the apply of the same
run has committed, so a refused drop never undoes an apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from services.cutover.apply import Applied, apply_plan
from services.cutover.drop import Dropped, DropRefused, drop_legacy
from services.cutover.legacy import read_snapshot
from services.cutover.plan import Plan, build_plan, read_target_state
from switchboard.settings import Settings


@dataclass(frozen=True)
class CutoverResult:
    """What one run planned, applied and dropped (or why it did not drop)."""

    plan: Plan
    applied: Applied | None = None
    dropped: Dropped | None = None
    refused: list[str] | None = None


def run_cutover(
    settings: Settings,
    *,
    source_url: str | None = None,
    apply: bool = False,
    with_history: bool = False,
    drop: bool = False,
    skip: Iterable[str] = (),
) -> CutoverResult:
    """Plan (always), apply (``apply``) and drop the old tables (``drop``)."""
    skip = tuple(skip)
    with psycopg.connect(settings.database_url, autocommit=True) as target:
        source = psycopg.connect(source_url, autocommit=True) if source_url else target
        try:
            return _run(settings, source, target, apply, with_history, drop, skip)
        finally:
            if source is not target:
                source.close()


def _run(
    settings: Settings,
    source: psycopg.Connection,
    target: psycopg.Connection,
    apply: bool,
    with_history: bool,
    drop: bool,
    skip: tuple[str, ...],
) -> CutoverResult:
    snapshot = read_snapshot(source)
    applied = None
    if apply:
        plan, applied = apply_plan(
            target, snapshot, settings, skip, with_history=with_history
        )
    else:
        plan = build_plan(
            snapshot,
            read_target_state(target),
            skip,
            allow_private_targets=settings.allow_private_targets,
        )
    if not drop:
        return CutoverResult(plan, applied)
    try:
        return CutoverResult(plan, applied, dropped=drop_legacy(source, target, skip))
    except DropRefused as refusal:
        return CutoverResult(plan, applied, refused=refusal.reasons)
