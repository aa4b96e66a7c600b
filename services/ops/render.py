"""Tables for people and JSON for scripts, for every operator command."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from services.ops.dlq import DeadLetter, Replay, ReplayResult, RouterDeadLetter
from services.ops.groups import GroupDetail, GroupSummary, ResetPlan
from services.ops.jobs import RetryResult
from services.ops.rotate_secrets import RotationReport

ERROR_WIDTH = 60


def _table(title: str) -> Table:
    """A table whose title is plain text: names in it are never read as markup."""
    return Table(title=Text(title))


def _add(table: Table, *cells: str) -> None:
    """Add a row of plain-text cells."""
    # A key, an error or a name can hold "[/x]", which Rich would read as
    # markup and then refuse to print at all.
    table.add_row(*(Text(cell) for cell in cells))


def to_json(value: Any) -> str:
    """JSON text of dataclasses, lists and dicts; times in ISO 8601."""
    return json.dumps(value, indent=2, default=_default, sort_keys=True)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


def _time(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


def _short(text: str | None, width: int = ERROR_WIDTH) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def groups_table(groups: list[GroupSummary]) -> Table:
    """One row per group: state, members, partitions and total lag."""
    table = _table("Consumer groups")
    for column in ("group", "state", "members", "partitions", "lag"):
        justify = "left" if column == "group" else "right"
        table.add_column(column, justify=justify, overflow="fold")
    for g in groups:
        _add(table, g.group, g.state, str(g.members), str(g.partitions), f"{g.lag:,}")
    return table


def group_tables(detail: GroupDetail) -> list[Table | Text]:
    """A group's members, then each partition's offsets, lag and owner."""
    members: Table | Text = Text(f"{detail.group} ({detail.state}): no live members")
    if detail.members:
        members = _table(f"{detail.group} ({detail.state}): members")
        for column in ("member", "client", "host", "partitions"):
            members.add_column(column)
    for m in detail.members:
        owned = ", ".join(f"{t}[{p}]" for t, p in m.partitions)
        _add(members, m.member_id, m.client_id, m.host, owned or "-")
    partitions = _table(f"{detail.group}: partitions")
    for column in ("topic", "partition", "committed", "end", "lag", "member"):
        partitions.add_column(column)
    for p in detail.partitions:
        _add(
            partitions,
            p.topic,
            str(p.partition),
            "-" if p.committed is None else str(p.committed),
            str(p.end),
            f"{p.lag:,}",
            p.member or "-",
        )
    return [members, partitions]


def group_json(detail: GroupDetail) -> dict[str, Any]:
    """A group's description with each partition's lag spelled out."""
    return {
        "group": detail.group,
        "state": detail.state,
        "members": [asdict(m) for m in detail.members],
        "partitions": [{**asdict(p), "lag": p.lag} for p in detail.partitions],
        "lag": sum(p.lag for p in detail.partitions),
    }


def reset_table(plan: ResetPlan, executed: bool) -> Table:
    """The old and new offset of every partition a reset moves."""
    verb = "applied" if executed else "plan only; add --execute to apply"
    table = _table(f"Reset {plan.group} to {plan.target.kind} ({verb})")
    for column in ("topic", "partition", "old", "new", "note"):
        table.add_column(column)
    for m in plan.moves:
        old = "-" if m.old is None else str(m.old)
        _add(table, m.topic, str(m.partition), old, str(m.new), m.note)
    return table


def live_members_line(plan: ResetPlan) -> str | None:
    """The line naming a planned group's live members, if it has any."""
    if not plan.members:
        return None
    names = ", ".join(f"{m.client_id}@{m.host} ({m.member_id})" for m in plan.members)
    return f"live members: {names}; stop them before --execute"


def dead_letter_json(letter: DeadLetter, replay: Replay | None) -> dict[str, Any]:
    """A dead letter as scripts see it (the alert itself left out)."""
    return {
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "time": letter.timestamp,
        "job_id": letter.job_id,
        "tenant_id": letter.tenant_id,
        "channel_id": letter.channel_id,
        "attempt": letter.attempt,
        "reason": letter.reason,
        "final": letter.final,
        "error": letter.error,
        "replayed": asdict(replay) if replay else None,
    }


def dead_letters_table(
    title: str, letters: list[DeadLetter], replays: dict[tuple[int, int], Replay]
) -> Table:
    """One row per dead letter: where, when, which job, why, and any replay."""
    table = _table(title)
    for column in (
        "time",
        "at",
        "job",
        "tenant",
        "channel",
        "try",
        "reason",
        "error",
        "replayed",
    ):
        table.add_column(column, overflow="fold" if column == "job" else "ellipsis")
    for d in letters:
        replay = replays.get((d.partition, d.offset))
        _add(
            table,
            _time(d.timestamp),
            f"{d.partition}:{d.offset}",
            d.job_id or "-",
            d.tenant_id or "-",
            d.channel_id or "-",
            str(d.attempt or "-"),
            f"{d.reason} ({d.final})" if d.final else d.reason,
            _short(d.error),
            f"x{replay.count} {_time(replay.replayed_at)}" if replay else "",
        )
    return table


def router_dead_letter_json(letter: RouterDeadLetter) -> dict[str, Any]:
    """A router dead letter as scripts see it, with the alert when it decodes."""
    return {
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "time": letter.timestamp,
        "key": letter.key,
        "reason": letter.reason,
        "error_class": letter.error_class,
        "source": letter.source,
        "size": letter.size,
        "original": letter.original,
        "alert": letter.alert,
    }


def router_dead_letters_table(title: str, letters: list[RouterDeadLetter]) -> Table:
    """One row per router dead letter: where, when, its key, why, what it holds."""
    table = _table(title)
    for column in ("time", "at", "key", "reason", "source", "original"):
        table.add_column(column, overflow="fold")
    for d in letters:
        reason = f"{d.error_class}: {d.reason}" if d.error_class else d.reason
        _add(
            table,
            _time(d.timestamp),
            f"{d.partition}:{d.offset}",
            d.key if d.key is not None else "-",
            _short(reason, ERROR_WIDTH * 2),
            d.source or "-",
            _short(d.original, ERROR_WIDTH * 2),
        )
    return table


def replay_table(results: list[ReplayResult], dry_run: bool) -> Table:
    """What a replay did (or would do) with each selected dead letter."""
    table = _table("Dead-letter replay" + (" (dry run)" if dry_run else ""))
    for column in ("at", "job", "channel", "outcome", "attempt", "detail"):
        table.add_column(column)
    for r in results:
        _add(
            table,
            f"{r.letter.partition}:{r.letter.offset}",
            r.letter.job_id or "-",
            r.letter.channel_id or "-",
            str(r.outcome),
            str(r.attempt or "-"),
            r.detail,
        )
    return table


def replay_json(results: list[ReplayResult]) -> list[dict[str, Any]]:
    """Replay outcomes for scripts."""
    return [
        {
            "partition": r.letter.partition,
            "offset": r.letter.offset,
            "job_id": r.letter.job_id,
            "outcome": str(r.outcome),
            "attempt": r.attempt,
            "detail": r.detail,
        }
        for r in results
    ]


def retry_table(results: list[RetryResult], dry_run: bool) -> Table:
    """Each dead job: the attempt queued (or that would be) or why not."""
    table = _table("Dead jobs re-queued" + (" (dry run)" if dry_run else ""))
    for column in ("job", "tenant", "channel", "reason", "died", "attempt", "result"):
        table.add_column(column)
    for r in results:
        outcome = "queued" if r.queued else (r.detail or "would queue")
        _add(
            table,
            str(r.job["job_id"]),
            str(r.job["tenant_id"]),
            str(r.job["channel_id"]),
            r.job["last_reason"] or "-",
            _time(r.job["updated_at"]),
            str(r.attempt or "-"),
            outcome,
        )
    return table


def retry_json(results: list[RetryResult]) -> list[dict[str, Any]]:
    """Re-queue outcomes for scripts."""
    return [
        {
            "job_id": str(r.job["job_id"]),
            "queued": r.queued,
            "attempt": r.attempt,
            "detail": r.detail,
        }
        for r in results
    ]


def rotation_line(report: RotationReport) -> str:
    """One line saying what a rotation did."""
    verb = "would re-encrypt" if report.dry_run else "re-encrypted"
    line = (
        f"{verb} {report.rotated} channel(s); "
        f"{report.current} already under the current key"
    )
    if report.unreadable:
        line += f"; {len(report.unreadable)} unreadable: {', '.join(report.unreadable)}"
    return line
