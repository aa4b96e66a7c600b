"""The check the demo and the end-to-end tests hold the receivers to.

No pipeline here: expected jobs from the reference router, arrivals made up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.demo.expect import Reference, compare, expected_jobs
from services.demo.receivers import Arrival

RULES = [
    {"id": "r-web", "channel_id": "ch-web", "priority": 1},
    {
        "id": "r-pd",
        "channel_id": "ch-pd",
        "priority": 2,
        "min_severity": "HIGH",
        "throttle_minutes": 10,
    },
]
TYPES = {"ch-web": "webhook", "ch-pd": "pagerduty"}
START = datetime(2026, 12, 4, tzinfo=UTC)


def event(n: int, kind: str = "OPEN", alert_id: str = "a-1", **fields: Any) -> dict:
    """An alert event ``n`` seconds after the start."""
    return {
        "event_id": f"e-{n}",
        "alert_id": alert_id,
        "kind": kind,
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": "s",
        "device_id": "d",
        "occurred_at": START + timedelta(seconds=n),
        **fields,
    }


def setup() -> tuple[list, dict[str, Any]]:
    """Expected jobs of a small stream, and the job of each (rule, event)."""
    alerts = [event(0), event(1), event(2, "CLOSED")]
    expected = expected_jobs(Reference(RULES, TYPES), alerts)
    return expected, {(j.rule_id, j.event["event_id"]): j for j in expected}


def arrival(job: Any, **fields: Any) -> Arrival:
    """The arrival a correct pipeline gives for ``job``."""
    values: dict[str, Any] = {
        "channel_type": job.channel_type,
        "job_id": job.job_id,
        "received_at": 0.0,
    }
    if job.channel_type == "webhook":
        values["event_id"] = job.event["event_id"]
    else:
        values["dedup_key"] = f"key-{job.event['alert_id']}"
    values.update(fields)
    return Arrival(**values)


def correct(expected: list) -> list[Arrival]:
    """Arrivals for every job the rules call for, once each."""
    return [arrival(job) for job in expected if not job.suppressed]


def test_the_reference_throttles_and_lets_the_close_through() -> None:
    """The repeat OPEN is suppressed on the throttled rule; the CLOSED is not."""
    _expected, jobs = setup()

    assert jobs[("r-pd", "e-1")].suppressed
    assert not jobs[("r-pd", "e-2")].suppressed
    assert not any(j.suppressed for (rule, _e), j in jobs.items() if rule == "r-web")


def test_everything_once_where_expected_is_ok() -> None:
    expected, _jobs = setup()

    verdict = compare(expected, correct(expected))

    assert verdict.ok and not verdict.duplicates
    assert len(verdict.first_arrival) == 5


def test_each_kind_of_wrong_arrival_is_caught() -> None:
    """Missing, wrong receiver, unexpected, throttled but sent, wrong content."""
    expected, jobs = setup()
    cases = {
        "missing": correct(expected)[1:],
        "wrong_receiver": [
            *correct(expected)[1:],
            arrival(jobs[("r-web", "e-0")], channel_type="mqtt"),
        ],
        "unexpected": [*correct(expected), arrival(jobs[("r-web", "e-0")], job_id="x")],
        "suppressed_but_sent": [*correct(expected), arrival(jobs[("r-pd", "e-1")])],
        "wrong_identity": [
            *correct(expected)[1:],
            arrival(jobs[("r-web", "e-0")], event_id="e-1"),
        ],
    }

    for problem, arrivals in cases.items():
        verdict = compare(expected, arrivals)
        assert not verdict.ok, problem
        assert getattr(verdict, problem), problem


def test_a_repeat_is_reported_as_a_duplicate() -> None:
    expected, _jobs = setup()
    arrivals = correct(expected)

    verdict = compare(expected, [*arrivals, arrivals[0]])

    assert verdict.duplicates == {arrivals[0].job_id: 2}
