"""What the end of a demo run tells the user about what it leaves behind."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from services.demo.expect import Reference, Verdict
from services.demo.processes import Pipeline
from services.demo.run import LEFT_BEHIND, Outcome, _print_left_behind
from services.demo.world import Configured


def test_a_normal_run_names_its_tenant_and_its_logs(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    pipeline = Pipeline(tmp_path / "logs", {}, [])
    configured = Configured(
        {"webhook": {"id": "c-1"}}, [{"id": "r-1"}], Reference([], {})
    )
    outcome = Outcome([], [], Verdict(), [{"job_id": "j-1"}, {"job_id": "j-2"}], [])

    _print_left_behind(
        console, pipeline, "demo-1234abcd", "t-1", configured, outcome, []
    )

    text = console.export_text()
    assert "tenant demo-1234abcd (t-1): 1 channels, 1 rules, 2 jobs" in text
    assert "the local stack is left running" in text
    assert "switchboard tenant key demo-1234abcd" in text
    assert str(tmp_path / "logs") in text


def test_a_run_that_started_the_stack_says_to_start_it_again(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    pipeline = Pipeline(tmp_path / "logs", {}, [])
    configured = Configured({}, [], Reference([], {}))
    outcome = Outcome([], [], Verdict(), [], [])

    _print_left_behind(
        console, pipeline, "demo-1234abcd", "t-1", configured, outcome, ["kafka"]
    )

    text = console.export_text()
    assert "left running" not in text
    assert "switchboard stack up" in text


def test_the_help_text_says_what_stays_behind() -> None:
    for thing in ("demo-<id>", "demo-<id>-probe", "/tmp/switchboard-demo-*/logs"):
        assert thing in LEFT_BEHIND
