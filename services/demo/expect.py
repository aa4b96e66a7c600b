"""What the rules call for, computed independently of the router.

A plain reading of the design's routing section: rules in ascending priority;
a rule matches when every non-empty matcher matches; ``stop_on_match`` ends
evaluation; disabled rules (or rules of a disabled channel) never match; a
throttled rule suppresses a repeat of the same kind of event for the same alert
inside the window that starts when it last sent one, in event time. Each match
is one job whose id derives from (event, rule, channel).

Then :func:`compare` holds what arrived at the receivers against it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.demo.receivers import Arrival
from switchboard.domain import job_id_for

SEVERITY_RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "INFO": 0}


@dataclass(frozen=True)
class ExpectedJob:
    """One job the rules call for."""

    job_id: str
    channel_type: str
    channel_id: str
    rule_id: str
    event: dict[str, Any]
    suppressed: bool


def matches(rule: dict[str, Any], alert: dict[str, Any]) -> bool:
    """Whether every non-empty matcher of ``rule`` matches ``alert``."""
    device = alert.get("device_id") or ""
    checks = [
        not rule.get("site_ids") or alert.get("site_id") in rule["site_ids"],
        not rule.get("device_prefixes")
        or any(device.startswith(p) for p in rule["device_prefixes"]),
        not rule.get("alert_types") or alert["alert_type"] in rule["alert_types"],
        not rule.get("min_severity")
        or SEVERITY_RANK[alert["severity"]] >= SEVERITY_RANK[rule["min_severity"]],
        not rule.get("deliver_on") or alert["kind"] in rule["deliver_on"],
    ]
    return all(checks)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Reference:
    """The reference router over one tenant's rules and channels."""

    rules: list[dict[str, Any]]
    channel_types: dict[str, str]
    disabled_channels: set[str] = field(default_factory=set)
    _last_sent_ms: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def route(self, alert: dict[str, Any]) -> list[ExpectedJob]:
        """The jobs one event calls for, updating throttle windows."""
        jobs = []
        for rule in sorted(self.rules, key=lambda r: r.get("priority", 100)):
            if not self._live(rule) or not matches(rule, alert):
                continue
            jobs.append(self._job(rule, alert))
            if rule.get("stop_on_match"):
                break
        return jobs

    def _live(self, rule: dict[str, Any]) -> bool:
        return (
            rule.get("enabled", True)
            and rule["channel_id"] not in self.disabled_channels
        )

    def _job(self, rule: dict[str, Any], alert: dict[str, Any]) -> ExpectedJob:
        channel_id = rule["channel_id"]
        return ExpectedJob(
            job_id_for(alert["event_id"], rule["id"], channel_id),
            self.channel_types[channel_id],
            channel_id,
            rule["id"],
            alert,
            self._throttled(rule, alert),
        )

    def _throttled(self, rule: dict[str, Any], alert: dict[str, Any]) -> bool:
        minutes = rule.get("throttle_minutes") or 0
        if not minutes:
            return False
        key = (rule["id"], alert["kind"], alert["alert_id"])
        now_ms = _epoch_ms(alert["occurred_at"])
        last_ms = self._last_sent_ms.get(key)
        # A follow-up always passes once the alert was opened again after it.
        opened_ms = self._last_sent_ms.get((rule["id"], "OPEN", alert["alert_id"]))
        reopened = (
            alert["kind"] != "OPEN"
            and last_ms is not None
            and opened_ms is not None
            and opened_ms >= last_ms
        )
        if last_ms is not None and now_ms - last_ms < minutes * 60_000 and not reopened:
            return True
        self._last_sent_ms[key] = now_ms
        return False


def expected_jobs(
    reference: Reference, alerts: list[dict[str, Any]]
) -> list[ExpectedJob]:
    """Every job the stream calls for, in publish order."""
    return [job for alert in alerts for job in reference.route(alert)]


@dataclass
class Verdict:
    """How the receivers' arrivals compare with the expected jobs."""

    missing: list[ExpectedJob] = field(default_factory=list)
    wrong_receiver: list[tuple[str, str]] = field(default_factory=list)
    unexpected: list[Arrival] = field(default_factory=list)
    suppressed_but_sent: list[ExpectedJob] = field(default_factory=list)
    wrong_identity: list[tuple[str, str]] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    first_arrival: dict[str, Arrival] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Everything arrived where and as expected (duplicates are only reported)."""
        return not (
            self.missing
            or self.wrong_receiver
            or self.unexpected
            or self.suppressed_but_sent
            or self.wrong_identity
        )

    def problems(self) -> list[str]:
        """One line per kind of problem, for people."""
        lines = []
        for label, items in (
            ("expected but never arrived", self.missing),
            ("arrived at the wrong receiver", self.wrong_receiver),
            ("arrived but no rule calls for it", self.unexpected),
            ("throttled by the rules but delivered", self.suppressed_but_sent),
            ("arrived with the wrong identity", self.wrong_identity),
        ):
            if items:
                lines.append(f"{len(items)} {label}")
        return lines


def compare(expected: list[ExpectedJob], arrivals: list[Arrival]) -> Verdict:
    """Hold ``arrivals`` against ``expected``."""
    verdict = Verdict()
    by_id = {job.job_id: job for job in expected}
    arrivals = _identify_pagerduty(expected, by_id, arrivals)
    counts = Counter(a.job_id for a in arrivals)
    for arrival in arrivals:
        _check_arrival(verdict, by_id, arrival)
    _check_dedup_keys(verdict, by_id, arrivals)
    verdict.duplicates = {job: n for job, n in counts.items() if n > 1 and job}
    for job in expected:
        if not job.suppressed and job.job_id not in verdict.first_arrival:
            verdict.missing.append(job)
    return verdict


def _check_arrival(
    verdict: Verdict, by_id: dict[str, ExpectedJob], arrival: Arrival
) -> None:
    job = by_id.get(arrival.job_id or "")
    if job is None:
        verdict.unexpected.append(arrival)
        return
    if job.suppressed:
        verdict.suppressed_but_sent.append(job)
        return
    if arrival.channel_type != job.channel_type:
        verdict.wrong_receiver.append((job.job_id, arrival.channel_type))
        return
    if arrival.event_id is not None and arrival.event_id != str(job.event["event_id"]):
        verdict.wrong_identity.append((job.job_id, f"event {arrival.event_id}"))
        return
    verdict.first_arrival.setdefault(job.job_id, arrival)


def _identify_pagerduty(
    expected: list[ExpectedJob], by_id: dict[str, ExpectedJob], arrivals: list[Arrival]
) -> list[Arrival]:
    """Give acknowledge and resolve events the job id they stand for.

    A trigger names its job; its dedup key then stands for its alert, and an
    acknowledge or resolve with that key is the alert's job of that kind.
    """
    alert_of_key = {
        a.dedup_key: by_id[a.job_id].event["alert_id"]
        for a in arrivals
        if a.channel_type == "pagerduty" and a.job_id in by_id
    }
    job_of = {
        (job.event["alert_id"], job.event["kind"]): job.job_id
        for job in expected
        if job.channel_type == "pagerduty" and not job.suppressed
    }
    identified = []
    for arrival in arrivals:
        if arrival.channel_type == "pagerduty" and arrival.job_id is None:
            alert_id = alert_of_key.get(arrival.dedup_key)
            job_id = job_of.get((alert_id, arrival.kind))
            arrival = replace(arrival, job_id=job_id)
        identified.append(arrival)
    return identified


def _check_dedup_keys(
    verdict: Verdict, by_id: dict[str, ExpectedJob], arrivals: list[Arrival]
) -> None:
    """PagerDuty's dedup key must be one per alert, and differ between alerts."""
    keys_of_alert: dict[str, set[str | None]] = defaultdict(set)
    alerts_of_key: dict[str | None, set[str]] = defaultdict(set)
    for arrival in arrivals:
        job = by_id.get(arrival.job_id or "")
        if arrival.channel_type == "pagerduty" and job is not None:
            keys_of_alert[job.event["alert_id"]].add(arrival.dedup_key)
            alerts_of_key[arrival.dedup_key].add(job.event["alert_id"])
    for alert_id, keys in keys_of_alert.items():
        if len(keys) > 1 or None in keys:
            verdict.wrong_identity.append((alert_id, ", ".join(map(str, keys))))
    for key, alerts in alerts_of_key.items():
        if len(alerts) > 1:
            verdict.wrong_identity.append((", ".join(sorted(alerts)), str(key)))


def per_type(expected: list[ExpectedJob]) -> dict[str, Counter]:
    """Expected delivered and suppressed counts per channel type."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for job in expected:
        counts[job.channel_type]["suppressed" if job.suppressed else "delivered"] += 1
    return counts
