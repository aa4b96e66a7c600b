"""One cutover run as the command line starts it: plan, apply, drop, in that order.

The old tables are read from ``source_url`` when given (the old system's own
database) and otherwise from Switchboard's database; everything new is written
to Switchboard's database. Dropping always happens after the apply of the same
run has committed, so a refused drop never undoes an apply.

A database error is raised as :class:`CutoverFailed`, whose message says which
step failed and what that means for the data: a plan writes nothing, an apply
or a drop is rolled back whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from services.cutover.apply import Applied, apply_plan
from services.cutover.drop import Dropped, DropRefused, drop_legacy
from services.cutover.errors import CutoverFailed
from services.cutover.legacy import read_snapshot
from services.cutover.plan import Plan, build_plan, read_target_state
from switchboard.settings import Settings

NOT_MIGRATED = "the Switchboard database is not migrated; run `switchboard migrate`"
# What a failed step leaves, for its message.
NOTHING_WRITTEN = "nothing was written"
ROLLED_BACK = "rolled back, nothing was written"
DROP_ROLLED_BACK = "rolled back, the old tables are unchanged"


@dataclass(frozen=True)
class CutoverResult:
    """What one run planned, applied and dropped (or why it did not drop)."""

    plan: Plan
    applied: Applied | None = None
    dropped: Dropped | None = None
    refused: list[str] | None = None


@dataclass(frozen=True)
class _Options:
    apply: bool
    with_history: bool
    skip_history: bool
    drop: bool
    skip: tuple[str, ...]


def run_cutover(
    settings: Settings,
    *,
    source_url: str | None = None,
    apply: bool = False,
    with_history: bool = False,
    skip_history: bool = False,
    drop: bool = False,
    skip: Iterable[str] = (),
) -> CutoverResult:
    """Plan (always), apply (``apply``) and drop the old tables (``drop``).

    ``with_history`` copies the finished old jobs with the apply;
    ``skip_history`` leaves them behind instead, so they do not block the drop.
    """
    if with_history and skip_history:
        raise CutoverFailed(
            "--with-history copies the old jobs and --skip-history leaves them "
            "behind; give one of them"
        )
    options = _Options(apply, with_history, skip_history, drop, tuple(skip))
    with _step("connecting to the Switchboard database", NOTHING_WRITTEN):
        target = psycopg.connect(settings.database_url, autocommit=True)
    with target:
        source = target
        if source_url:
            with _step(
                "connecting to the old database (--source-url)", NOTHING_WRITTEN
            ):
                source = psycopg.connect(source_url, autocommit=True)
        try:
            return _run(settings, source, target, options)
        finally:
            if source is not target:
                source.close()


def _run(
    settings: Settings,
    source: psycopg.Connection,
    target: psycopg.Connection,
    options: _Options,
) -> CutoverResult:
    with _step("reading the old tables", NOTHING_WRITTEN):
        snapshot = read_snapshot(source)
    applied = None
    if options.apply:
        with _step("the apply", ROLLED_BACK):
            plan, applied = apply_plan(
                target,
                snapshot,
                settings,
                options.skip,
                with_history=options.with_history,
                skip_history=options.skip_history,
            )
    else:
        with _step("planning", NOTHING_WRITTEN):
            plan = build_plan(
                snapshot,
                read_target_state(target),
                options.skip,
                allow_private_targets=settings.allow_private_targets,
                skip_history=options.skip_history,
            )
    if not options.drop:
        return CutoverResult(plan, applied)
    try:
        with _step("dropping the old tables", DROP_ROLLED_BACK):
            dropped = drop_legacy(
                source, target, options.skip, skip_history=options.skip_history
            )
    except DropRefused as refusal:
        return CutoverResult(plan, applied, refused=refusal.reasons)
    return CutoverResult(plan, applied, dropped=dropped)


@contextmanager
def _step(name: str, kept: str) -> Iterator[None]:
    """Turn a database error inside one step into :class:`CutoverFailed`.

    ``kept`` says what the failure leaves behind. Only the error's primary
    message is kept: its detail may quote row values, secrets among them.
    """
    try:
        yield
    except psycopg.errors.UndefinedTable as error:
        # The old tables are looked up before they are read, so a missing
        # table is one of Switchboard's own.
        raise CutoverFailed(NOT_MIGRATED) from error
    except psycopg.Error as error:
        primary = error.diag.message_primary or str(error).splitlines()[0]
        raise CutoverFailed(f"{name} failed ({kept}): {primary}") from error
