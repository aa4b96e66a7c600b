"""Options the command line refuses before doing anything, with one clear line."""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from switchboard.cli import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["cutover", "--with-history"],
            "--with-history copies the old jobs as part of --apply; add --apply",
        ),
        (["cutover", "--skip", "abc"], "--skip 'abc' is not an old row id"),
        (
            ["cutover", "--skip", f"{uuid.uuid4()},12,x-1"],
            "--skip 'x-1' is not an old row id",
        ),
        (
            ["cutover", "--apply", "--with-history", "--skip-history"],
            "cutover failed: --with-history copies the old jobs and --skip-history",
        ),
        (["jobs", "retry", "--channel", "not-a-uuid"], "--channel 'not-a-uuid'"),
        (["secrets", "rotate", "--tenant", "acme"], "--tenant 'acme' is not an id"),
    ],
    ids=[
        "history-without-apply",
        "skip-word",
        "skip-list",
        "history-both-ways",
        "jobs-id",
        "rotate-id",
    ],
)
def test_a_bad_option_is_refused_in_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 1
    assert result.output.startswith(f"error: {message}"), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_skip_takes_uuids_and_attempt_numbers(settings) -> None:
    # A plan only reads: with no old tables it converts nothing.
    result = CliRunner().invoke(
        app, ["cutover", "--skip", f"{uuid.uuid4()}, 12", "--skip", "7"]
    )

    assert result.exit_code == 0, result.output
    assert "Legacy cutover plan (nothing written)" in result.output
