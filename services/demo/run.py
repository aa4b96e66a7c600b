"""``switchboard demo``: the whole pipeline on a realistic stream, checked.

Brings the local stack up (or uses the configured one), migrates, creates the
topics (with short retry tiers, so the demo ends in a couple of minutes), starts
the receivers in this process and the API, outbox relay, router, deliverer and
recorder as separate processes, configures a tenant through the HTTP API, publishes the
stream while one receiver is down for a while, and watches until every job has
settled. Then it prints a summary per channel type read from the API and exits
non-zero if anything the rules call for did not arrive exactly as expected. A
service that exits during the run ends it, naming the service and its log.

With ``--keep-running`` everything stays up after the verdict, a service that
exits (a fault drill's SIGKILL, say) is reported and restarted, until Ctrl-C or
SIGTERM. Either way the demo leaves behind what :data:`LEFT_BEHIND` says.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from services.demo.expect import ExpectedJob, Verdict, compare, expected_jobs
from services.demo.processes import Pipeline, ServiceExited, Supervisor, free_port
from services.demo.readiness import wait_for_partition_leaders
from services.demo.receivers import CHANNEL_TYPES, Receivers
from services.demo.scenario import PlannedEvent, demo_rules, plan_stream, utc_now
from services.demo.tenant_api import TenantApi, new_tenant, unique_name
from services.demo.world import AlertPublisher, Configured, configure
from switchboard import db
from switchboard import stack as local_stack
from switchboard.codec import default_codec
from switchboard.kafka import make_admin
from switchboard.settings import Settings
from switchboard.topics import ensure_topics, topic_specs

POLL_S = 1.0
SUPERVISE_S = 1.0

# What a run leaves in place, for the demo's --help and the end of a run. The
# tenant's data is the run's result, and the logs explain it, so neither is
# deleted; only the readiness probe's channel and rule, pointing at a receiver
# that is gone when the demo ends, are the demo's own scratch state.
LEFT_BEHIND = (
    "The demo leaves behind, for inspection: its tenant (demo-<id>) with seven "
    "channels, its rules and every job and attempt, in the configured database; "
    "a probe tenant (demo-<id>-probe) whose channel and rule it deletes; and the "
    "services' logs under /tmp/switchboard-demo-*/logs. Routers load the "
    "tenant's rules from notify.config; `switchboard tenant key demo-<id>` "
    "issues an API key to read its jobs."
)


@dataclass(frozen=True)
class DemoOptions:
    """What the demo does; the command line sets these."""

    devices: int = 240
    duration_s: float = 40.0
    retry_delays: str = "1s,5s,15s"
    max_attempts: int = 6
    outage_type: str = "teams"
    outage_s: float = 20.0
    outage_status: int = 503
    one_deliverer: bool = True
    settle_timeout_s: float = 150.0
    keep_running: bool = False
    work_dir: Path | None = None


@dataclass
class Outcome:
    """The published alerts, the jobs they call for, and what came of them."""

    alerts: list[dict[str, Any]]
    expected: list[ExpectedJob]
    verdict: Verdict
    jobs: list[dict[str, Any]]
    mismatched_states: list[str]


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> int:
    """Run the demo; the exit status is 0 only if every notification arrived right."""
    settings = settings.model_copy(
        update={
            "retry_delays": options.retry_delays,
            "max_attempts": options.max_attempts,
        }
    )
    signal.signal(signal.SIGTERM, _interrupt)
    started = _prepare_stack(settings, console)
    work_dir = options.work_dir or Path(tempfile.mkdtemp(prefix="switchboard-demo-"))
    tag = unique_name("demo")
    receivers = Receivers(work_dir, settings.mqtt_host, settings.mqtt_port, tag)
    pipeline = _pipeline(settings, options, work_dir, console)
    try:
        return _run(settings, options, console, receivers, pipeline, tag, started)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; stopping everything the demo started[/]")
        return 130
    except ServiceExited as exited:
        # One line, not a traceback: which service, and where to read why.
        console.print(f"[bold red]error:[/] {escape(str(exited))}", highlight=False)
        return 1
    finally:
        _shutdown(console, pipeline, receivers, settings, started, options)


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def _prepare_stack(settings: Settings, console: Console) -> list[str]:
    """Stack up, migrate, create topics; returns the components this run started."""
    started: list[str] = []

    def report(component: str, outcome: str) -> None:
        console.print(f"  {component:<10} {outcome}", highlight=False)
        if outcome.startswith("started"):
            started.append(component)

    console.print("[bold]Local stack[/]")
    local_stack.up(settings, report=report)
    db.migrate(settings.database_url)
    failed = [
        r
        for r in ensure_topics(make_admin(settings), topic_specs(settings))
        if r.action == "failed"
    ]
    if failed:
        raise RuntimeError(f"topics could not be created: {failed}")
    wait_for_partition_leaders(settings)
    return started


def _pipeline(
    settings: Settings, options: DemoOptions, work_dir: Path, console: Console
) -> Pipeline:
    # Everything the services reach comes from the demo's settings, so they
    # use the same stack and topic as the demo itself, whatever the defaults.
    environment = {
        "SWITCHBOARD_RETRY_DELAYS": options.retry_delays,
        "SWITCHBOARD_MAX_ATTEMPTS": str(options.max_attempts),
        "SWITCHBOARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SWITCHBOARD_DATABASE_URL": settings.database_url,
        "SWITCHBOARD_ALERTS_TOPIC": settings.alerts_topic,
        "SWITCHBOARD_MQTT_HOST": settings.mqtt_host,
        "SWITCHBOARD_MQTT_PORT": str(settings.mqtt_port),
    }
    pipeline = Pipeline.create(
        work_dir / "logs",
        environment,
        CHANNEL_TYPES,
        options.one_deliverer,
        # One SWITCHBOARD_METRICS_PORT cannot serve five processes; each gets
        # its own port, listed with --keep-running.
        metrics=settings.metrics_port != 0,
    )
    pipeline.api_port, note = choose_api_port(settings.api_port)
    pipeline.environment["SWITCHBOARD_API_PORT"] = str(pipeline.api_port)
    if note:
        console.print(f"[yellow]{note}[/]", highlight=False)
    return pipeline


def choose_api_port(wanted: int) -> tuple[int, str | None]:
    """The demo API's port: ``wanted`` (SWITCHBOARD_API_PORT) if free, else another.

    The second value says so when the port was taken (by another stack's API,
    say), since the demo's addresses then differ from the configured ones.
    """
    if _port_free(wanted):
        return wanted, None
    port = free_port()
    return port, (
        f"Port {wanted} (SWITCHBOARD_API_PORT) is in use, perhaps by another "
        f"stack's API; the demo's API listens on port {port} instead"
    )


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _run(
    settings: Settings,
    options: DemoOptions,
    console: Console,
    receivers: Receivers,
    pipeline: Pipeline,
    tag: str,
    started: list[str],
) -> int:
    console.print(
        f"[bold]Retry tiers for this demo: {options.retry_delays}[/] "
        f"(max {options.max_attempts} attempts; production defaults are longer)"
    )
    receivers.start()
    console.print(
        "Starting the API, relay, router, deliverer and recorder "
        f"(logs in {pipeline.log_dir})"
    )
    pipeline.start()
    tenant_id, key = new_tenant(settings.database_url, tag)
    api = TenantApi(pipeline.api_url, key)
    publisher = AlertPublisher(settings, default_codec())
    configured = configure(
        api,
        receivers,
        settings.database_url,
        demo_rules,
        publisher=publisher,
        probe_name=f"{tag}-probe",
        alive=pipeline.check,
    )
    console.print(
        f"Tenant {tag} ({tenant_id}): {len(configured.channels)} channels and "
        f"{len(configured.rules)} rules created through {pipeline.api_url}",
        highlight=False,
    )
    outcome = _stream_and_watch(
        publisher, options, console, receivers, pipeline, api, configured, tenant_id
    )
    ok = _report(console, outcome)
    if options.keep_running:
        _print_addresses(console, pipeline, receivers, key, tag, started)
        _supervise(console, pipeline)
    _print_left_behind(console, pipeline, tag, tenant_id, configured, outcome, started)
    api.close()
    return 0 if ok else 1


def _stream_and_watch(
    publisher: AlertPublisher,
    options: DemoOptions,
    console: Console,
    receivers: Receivers,
    pipeline: Pipeline,
    api: TenantApi,
    configured: Configured,
    tenant_id: str,
) -> Outcome:
    stream = plan_stream(options.devices, options.duration_s)
    console.print(
        f"Publishing {len(stream.events)} events from {stream.devices} devices over "
        f"~{options.duration_s:.0f}s; {options.outage_type} answers "
        f"{options.outage_status} for the first {options.outage_s:.0f}s"
    )
    receivers.outage(options.outage_type, options.outage_s, options.outage_status)
    with _progress(console) as progress:
        watch = _Watch(progress, receivers, api, len(stream.events), pipeline)
        alerts = _publish(stream.events, publisher, tenant_id, watch)
        expected = expected_jobs(configured.reference, alerts)
        watch.expect(expected)
        watch.until_settled(options.settle_timeout_s)
    jobs = api.jobs()
    verdict = compare(expected, receivers.arrivals())
    return Outcome(alerts, expected, verdict, jobs, _state_mismatches(expected, jobs))


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TextColumn("{task.completed:>6.0f} {task.fields[of]}"),
        console=console,
        transient=False,
    )


def _publish(
    events: list[PlannedEvent], publisher: AlertPublisher, tenant_id: str, watch: _Watch
) -> list[dict[str, Any]]:
    """Publish in planned order and pace; occurred_at is the publish time."""
    alerts = []
    start = time.monotonic()
    for event in events:
        delay = start + event.at_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        alert = event.to_alert(tenant_id, utc_now())
        publisher.publish(alert)
        alerts.append(alert)
        watch.published(len(alerts))
    publisher.flush()
    return alerts


class _Watch:
    """Keeps the progress display current; ends the run if a service exited."""

    def __init__(
        self,
        progress: Progress,
        receivers: Receivers,
        api: TenantApi,
        events: int,
        pipeline: Pipeline,
    ) -> None:
        self.progress, self.receivers, self.api = progress, receivers, api
        self.pipeline = pipeline
        self.expected_jobs: list[ExpectedJob] = []
        self.expected: set[str] = set()
        self.all_expected: set[str] = set()
        self.tasks = {
            "published": progress.add_task(
                "events published", total=events, of=f"of {events}"
            ),
            "delivered": progress.add_task("jobs delivered", total=1, of=""),
            "retrying": progress.add_task("jobs retrying", total=1, of=""),
            "dead": progress.add_task("jobs dead", total=1, of=""),
        }
        self._last_poll = 0.0

    def published(self, count: int) -> None:
        self.progress.update(self.tasks["published"], completed=count)
        if time.monotonic() - self._last_poll > POLL_S:
            self.poll()

    def expect(self, expected: list[ExpectedJob]) -> None:
        self.expected_jobs = expected
        self.expected = {j.job_id for j in expected if not j.suppressed}
        self.all_expected = {j.job_id for j in expected}
        self.progress.update(
            self.tasks["delivered"],
            total=len(self.expected),
            of=f"of {len(self.expected)}",
        )

    def poll(self) -> tuple[int, int, int]:
        self._last_poll = time.monotonic()
        self.pipeline.check()
        arrivals = self.receivers.arrivals()
        if self.expected_jobs:
            delivered = len(compare(self.expected_jobs, arrivals).first_arrival)
        else:
            delivered = len({a.job_id for a in arrivals})
        retrying = len(self.api.jobs(status="retrying"))
        dead = len(self.api.jobs(status="dead"))
        self.progress.update(self.tasks["delivered"], completed=delivered)
        self.progress.update(
            self.tasks["retrying"], completed=retrying, total=max(retrying, 1)
        )
        self.progress.update(self.tasks["dead"], completed=dead, total=max(dead, 1))
        return delivered, retrying, dead

    def until_settled(self, timeout_s: float) -> None:
        """Until every expected job arrived and none is retrying (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            delivered, retrying, _dead = self.poll()
            if delivered >= len(self.expected) and retrying == 0 and self._recorded():
                return
            time.sleep(POLL_S)

    def _recorded(self) -> bool:
        """Whether the recorder has every expected job in a final state."""
        final = self.api.jobs(status="delivered") + self.api.jobs(status="suppressed")
        return len({j["job_id"] for j in final} & self.all_expected) == len(
            self.all_expected
        )


def _state_mismatches(
    expected: list[ExpectedJob], jobs: list[dict[str, Any]]
) -> list[str]:
    """Jobs whose recorded state differs from what the rules call for."""
    states = {job["job_id"]: job["state"] for job in jobs}
    problems = []
    for job in expected:
        wanted = "suppressed" if job.suppressed else "delivered"
        if states.get(job.job_id) != wanted:
            problems.append(
                f"{job.job_id}: {states.get(job.job_id)} (expected {wanted})"
            )
    unexpected = set(states) - {job.job_id for job in expected}
    problems += [
        f"{job_id}: recorded but not expected" for job_id in sorted(unexpected)
    ]
    return problems


def _report(console: Console, outcome: Outcome) -> bool:
    console.print(_summary_table(outcome))
    verdict = outcome.verdict
    problems = verdict.problems()
    # The demo injects no crash, so nothing may be sent twice: a duplicate here
    # is a defect even though it carries the job's idempotency key.
    if verdict.duplicates:
        problems.append(f"{len(verdict.duplicates)} jobs arrived more than once")
    if outcome.mismatched_states:
        problems.append(
            f"{len(outcome.mismatched_states)} job states differ from the rules"
        )
        for line in outcome.mismatched_states[:5]:
            problems.append(f"  {line}")
    for job in verdict.missing[:5]:
        problems.append(f"  missing {job.channel_type} job {job.job_id}")
    if problems:
        console.print("[bold red]FAILED[/]")
        for line in problems:
            console.print(f"  {line}", highlight=False)
        return False
    console.print(
        f"[bold green]OK[/]: all {len(verdict.first_arrival)} notifications the rules "
        "call for arrived at the right receiver, once per job"
    )
    return True


def _summary_table(outcome: Outcome) -> Table:
    table = Table(title="Per channel type (jobs read from the API)")
    for column in (
        "type",
        "delivered",
        "suppr.",
        "retried",
        "dead",
        "dupes",
        "p50 ms",
        "p99 ms",
    ):
        table.add_column(column, justify="right" if column != "type" else "left")
    latencies = _latencies(outcome)
    duplicates = Counter(
        outcome.verdict.first_arrival[j].channel_type
        for j in outcome.verdict.duplicates
        if j in outcome.verdict.first_arrival
    )
    for channel_type in CHANNEL_TYPES:
        jobs = [j for j in outcome.jobs if j["channel_type"] == channel_type]
        states = Counter(j["state"] for j in jobs)
        retried = sum(1 for j in jobs if j["attempts"] > 1)
        table.add_row(
            channel_type,
            str(states["delivered"]),
            str(states["suppressed"]),
            str(retried),
            str(states["dead"]),
            str(duplicates[channel_type]),
            *_percentiles(latencies[channel_type]),
        )
    return table


def _latencies(outcome: Outcome) -> dict[str, list[float]]:
    """Milliseconds from occurred_at to the first receipt, per channel type."""
    found: dict[str, list[float]] = defaultdict(list)
    by_id = {job.job_id: job for job in outcome.expected}
    for job_id, arrival in outcome.verdict.first_arrival.items():
        occurred = by_id[job_id].event["occurred_at"].timestamp()
        found[arrival.channel_type].append((arrival.received_at - occurred) * 1000)
    return found


def _percentiles(values: list[float]) -> tuple[str, str]:
    if not values:
        return "-", "-"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):.0f}", f"{p99:.0f}"


def _print_addresses(
    console: Console,
    pipeline: Pipeline,
    receivers: Receivers,
    key: str,
    tag: str,
    started: list[str],
) -> None:
    console.print(
        "[bold]Everything stays up; a service that exits is restarted.[/]",
    )
    lines = [
        ("API", f"{pipeline.api_url}/docs"),
        ("Web page", f"{pipeline.api_url}/ui"),
        ("tenant", tag),
        ("API key", key),
        *receivers.addresses().items(),
        *(
            (f"metrics {name}", f"http://127.0.0.1:{port}/metrics")
            for name, port in pipeline.metrics_ports.items()
        ),
        ("logs", str(pipeline.log_dir)),
    ]
    for label, value in lines:
        console.print(f"  {label:<10} {value}", highlight=False, markup=False)
    stack = f" and the stack's {', '.join(started)}" if started else ""
    console.print(
        f"[bold]To stop it[/]: Ctrl-C here, or `kill {os.getpid()}` from another "
        f"terminal; either stops the demo's processes and receivers{stack}.",
        highlight=False,
    )


def _supervise(console: Console, pipeline: Pipeline) -> None:
    """Restart services that exit, one line each, until Ctrl-C or SIGTERM."""
    supervisor = Supervisor(
        pipeline,
        lambda line: console.print(f"[yellow]{escape(line)}[/]", highlight=False),
    )
    while True:
        supervisor.step()
        time.sleep(SUPERVISE_S)


def _print_left_behind(
    console: Console,
    pipeline: Pipeline,
    tag: str,
    tenant_id: str,
    configured: Configured,
    outcome: Outcome,
    started: list[str],
) -> None:
    """Say what the run leaves in place, so a later look can find (or skip) it.

    The demo stops the stack components it started itself, so the data stays
    readable at once only when the stack was already up.
    """
    where = (
        "start the stack with `switchboard stack up`, then"
        if started
        else "the local stack is left running;"
    )
    console.print("Left in place for inspection:", highlight=False)
    console.print(
        f"  tenant {tag} ({tenant_id}): {len(configured.channels)} channels, "
        f"{len(configured.rules)} rules, {len(outcome.jobs)} jobs; {where} "
        f"`switchboard tenant key {tag}` issues an API key to read them from "
        "`switchboard api`",
        highlight=False,
        markup=False,
    )
    console.print(f"  logs   {pipeline.log_dir}", highlight=False, markup=False)


def _shutdown(
    console: Console,
    pipeline: Pipeline,
    receivers: Receivers,
    settings: Settings,
    started: list[str],
    options: DemoOptions,
) -> None:
    console.print("Stopping the demo's processes")
    pipeline.stop()
    receivers.stop()
    for component in local_stack.components(settings):
        if component.name in started:
            console.print(f"  {component.name:<10} {component.down()}", highlight=False)
