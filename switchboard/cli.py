"""The ``switchboard`` command line: one entry point for every process and tool."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import typer
from confluent_kafka import KafkaError, KafkaException
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from switchboard import stack as local_stack
from switchboard.console import make_console
from switchboard.logs import configure_logging
from switchboard.settings import (
    DEVELOPMENT_SECRET_KEY,
    Settings,
    database_address,
    get_settings,
)

if TYPE_CHECKING:
    import psycopg

app = typer.Typer(
    help="Switchboard: reliable delivery of alert notifications over Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="The local Kafka, PostgreSQL and MQTT stack.", no_args_is_help=True
)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secret keys.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(topics_app, name="topics")
app.add_typer(secrets_app, name="secrets")

console = make_console()
errors = make_console(stderr=True, soft_wrap=True)
log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Kafka errors that mean no broker answered, as opposed to one that refused.
_KAFKA_UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._MSG_TIMED_OUT,
    }
)

# A server that does not answer at all (a firewall dropping packets) would
# otherwise hold a command for the system's TCP timeout, minutes.
DATABASE_CONNECT_TIMEOUT_S = 10


def fail(message: str) -> typer.Exit:
    """Print one clear error line (and any detail after it) and exit non-zero."""
    first, _, rest = message.partition("\n")
    errors.print(f"[bold red]error:[/] {escape(first)}", highlight=False)
    if rest:
        errors.print(rest, highlight=False, markup=False)
    return typer.Exit(code=1)


def load_settings() -> Settings:
    """Read settings and set up logging, turning bad settings into a clear error."""
    try:
        settings = get_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"SWITCHBOARD_{str(item['loc'][0]).upper()}: {item['msg']}"
            for item in error.errors()
        )
        raise fail(f"invalid settings: {problems}") from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def warn_if_development_key(settings: Settings) -> None:
    """Say so when secrets are protected by the published development key."""
    if settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY:
        log.warning("using the development secret key; set SWITCHBOARD_SECRET_KEY")


def _ops_call(action: Callable[[], _T]) -> _T:
    """Run a command's work, turning refusals and outages into one clear error line.

    An operator refusal (:class:`OpsError`) prints its own message. Kafka or
    PostgreSQL being down, refusing, or a database not migrated (anywhere in the
    error's causes) prints which one, at which address, and what to do. Anything
    else is a bug and keeps its traceback.
    """
    from services.ops.errors import KafkaUnanswered, OpsError

    try:
        return action()
    except typer.Exit:
        raise
    except KafkaUnanswered as error:
        raise fail(_kafka_line(str(error), reachable=False)) from None
    except OpsError as error:
        raise fail(str(error)) from None
    except Exception as error:
        line = _outage_line(error)
        if line is None:
            raise
        raise fail(line) from None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the errors it was raised from or while handling, in order."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None


def _outage_line(error: BaseException) -> str | None:
    """One line for a Kafka or PostgreSQL failure among ``error``'s causes, or None."""
    import psycopg

    for cause in _causes(error):
        if isinstance(cause, KafkaException):
            detail = cause.args[0] if cause.args else cause
            if isinstance(detail, KafkaError):
                return _kafka_line(
                    detail.str(), reachable=detail.code() not in _KAFKA_UNREACHABLE
                )
            return _kafka_line(str(detail), reachable=True)
        if isinstance(cause, psycopg.Error):
            return _database_line(cause)
    return None


def _kafka_line(reason: str, reachable: bool) -> str:
    """What went wrong with Kafka, where, and what to do."""
    address = get_settings().kafka_bootstrap
    if not reachable:
        return (
            f"kafka at {address} does not answer ({reason}); check that it runs "
            "(`switchboard stack status`) and that SWITCHBOARD_KAFKA_BOOTSTRAP "
            "points at it"
        )
    return f"kafka at {address} refused the request: {reason}; see the broker's log"


def _database_line(error: psycopg.Error) -> str:
    """What went wrong with PostgreSQL, where, and what to do; never the password."""
    import psycopg

    settings = get_settings()
    address = database_address(settings.database_url)
    if isinstance(error, psycopg.errors.UndefinedTable):
        return (
            f"postgres at {address}: the database is not migrated; run "
            "`switchboard migrate`"
        )
    # Only the primary message: a detail can quote row values, secrets among them.
    reason = error.diag.message_primary or str(error).strip().splitlines()[0]
    password = urlsplit(settings.database_url).password
    if password:
        reason = reason.replace(password, "***")
    if isinstance(error, psycopg.OperationalError) and error.sqlstate is None:
        # No SQLSTATE: the client never got an answer, or a login was refused.
        return (
            f"postgres at {address}: cannot connect ({reason}); check that it runs "
            "(`switchboard stack status`) and SWITCHBOARD_DATABASE_URL"
        )
    return f"postgres at {address} refused the request: {reason}"


def _connect(settings: Settings) -> psycopg.Connection:
    """An autocommit connection to the application database."""
    import psycopg

    return psycopg.connect(
        settings.database_url,
        autocommit=True,
        connect_timeout=DATABASE_CONNECT_TIMEOUT_S,
    )


def _require_database(settings: Settings) -> None:
    """Refuse to start a service whose database is down or not fully migrated."""
    from alembic.script import ScriptDirectory

    from switchboard import db

    current = _ops_call(lambda: db.current_revision(settings.database_url))
    head = ScriptDirectory.from_config(
        db.alembic_config(settings.database_url)
    ).get_current_head()
    if current != head:
        address = database_address(settings.database_url)
        at = f"at revision {current}" if current else "not migrated"
        raise fail(
            f"postgres at {address}: the database is {at}, this version needs "
            f"{head}; run `switchboard migrate`"
        )


def _report(component: str, outcome: str) -> None:
    console.print(f"  {component:<10} {outcome}", highlight=False)


@stack_app.command("up")
def stack_up() -> None:
    """Start Kafka, PostgreSQL and Mosquitto (those not given by address)."""
    settings = load_settings()
    try:
        local_stack.up(settings, report=_report)
    except local_stack.StackError as error:
        raise fail(str(error)) from None


@stack_app.command("down")
def stack_down() -> None:
    """Stop exactly the processes `stack up` started."""
    settings = load_settings()
    try:
        local_stack.down(settings, report=_report)
    except local_stack.StackError as error:
        raise fail(str(error)) from None


@stack_app.command("status")
def stack_status() -> None:
    """Show each component, its address and whether it answers (exit 1 if not)."""
    settings = load_settings()
    if not print_status(settings):
        raise typer.Exit(code=1)


def print_status(settings: Settings) -> bool:
    """Print the stack's status table; True if every component answers.

    Warns (one line) when channel secrets would be encrypted with the published
    development key, so a deployment that forgot SWITCHBOARD_SECRET_KEY shows it.
    """
    warn_if_development_key(settings)
    table = Table(title="Switchboard stack")
    for column in ("component", "address", "managed", "pid", "answers"):
        table.add_column(column)
    statuses = local_stack.status(settings)
    for item in statuses:
        table.add_row(
            item.name,
            item.address,
            "yes" if item.managed else "external",
            str(item.pid or "-"),
            "[green]yes[/]" if item.answers else "[red]no[/]",
        )
    console.print(table)
    return all(item.answers for item in statuses)


@app.command("migrate")
def migrate_command() -> None:
    """Apply the database migrations (already applied ones are skipped)."""
    from switchboard import db

    settings = load_settings()
    try:
        _ops_call(lambda: db.migrate(settings.database_url))
    except typer.Exit:
        raise
    except Exception as error:
        # Not an outage: a migration itself failed; its first line says why.
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise fail(f"migration failed: {reason}") from None
    revision = _ops_call(lambda: db.current_revision(settings.database_url))
    console.print(f"database at revision {revision}")


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic idempotently; report existing topics with wrong settings."""
    from switchboard.kafka import make_admin
    from switchboard.topics import ensure_topics, topic_specs

    settings = load_settings()
    reports = _ops_call(
        lambda: ensure_topics(make_admin(settings), topic_specs(settings))
    )
    bad = [r for r in reports if r.action in ("mismatch", "failed")]
    created = sum(1 for r in reports if r.action == "created")
    unchanged = len(reports) - created - len(bad)
    console.print(f"{len(reports)} topics: {created} created, {unchanged} ok")
    for report in bad:
        errors.print(f"  {report.name}: {report.action}: {'; '.join(report.problems)}")
    if bad:
        raise typer.Exit(code=1)


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new random key for SWITCHBOARD_SECRET_KEY."""
    from switchboard.secrets import SecretBox

    print(SecretBox.generate_key())


@app.command("bootstrap")
def bootstrap() -> None:
    """Bring the stack up, migrate the database, create topics and show status."""
    stack_up()
    migrate_command()
    topics_create()
    if not print_status(get_settings()):
        raise typer.Exit(code=1)


@app.command("router")
def router_command(
    alerts_topic: str = typer.Option(
        None, help="Alerts topic to route (default: SWITCHBOARD_ALERTS_TOPIC)."
    ),
    transactional_id: str = typer.Option(
        None,
        envvar="SWITCHBOARD_ROUTER_TRANSACTIONAL_ID",
        help="Kafka transactional.id, unique per router process; keeping it across "
        "restarts lets a restarted router fence its crashed predecessor at once "
        "(default: switchboard.router.<host>.<random>).",
    ),
    metrics_port: int = typer.Option(
        None,
        min=0,
        max=65535,
        help="Prometheus port (default: SWITCHBOARD_METRICS_PORT); 0 disables.",
    ),
    batch_size: int = typer.Option(500, min=1, help="Most events per transaction."),
    group: str = typer.Option("switchboard.router", help="Consumer group."),
    jobs_topic: str = typer.Option(
        "notify.jobs", envvar="SWITCHBOARD_ROUTER_JOBS_TOPIC"
    ),
    throttle_topic: str = typer.Option(
        "notify.router.throttle", envvar="SWITCHBOARD_ROUTER_THROTTLE_TOPIC"
    ),
    dlq_topic: str = typer.Option(
        "notify.router.dlq", envvar="SWITCHBOARD_ROUTER_DLQ_TOPIC"
    ),
    delivery_topic_prefix: str = typer.Option(
        "notify.delivery.", envvar="SWITCHBOARD_ROUTER_DELIVERY_TOPIC_PREFIX"
    ),
    config_topic: str = typer.Option(
        "notify.config", envvar="SWITCHBOARD_ROUTER_CONFIG_TOPIC"
    ),
) -> None:
    """Route alert events to delivery jobs, exactly once, until SIGTERM or Ctrl-C."""
    import signal
    import socket
    import threading

    from services.router.app import Router, RouterError, RouterOptions, RouterTopics
    from switchboard.lag import export_lag_of
    from switchboard.metrics import start_metrics_server

    settings = load_settings()
    topics = RouterTopics(
        alerts=alerts_topic or settings.alerts_topic,
        jobs=jobs_topic,
        dlq=dlq_topic,
        throttle=throttle_topic,
        config=config_topic,
        delivery_prefix=delivery_topic_prefix,
    )
    options = RouterOptions(
        transactional_id=transactional_id
        or f"switchboard.router.{socket.gethostname()}.{uuid.uuid4().hex[:8]}",
        group_id=group,
        batch_size=batch_size,
    )
    port = settings.metrics_port if metrics_port is None else metrics_port
    start_metrics_server(port)
    export_lag_of(settings, [group], port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def route() -> None:
        try:
            Router(settings, topics, options).run(stop)
        except RouterError as error:
            raise fail(str(error)) from None

    _ops_call(route)


@app.command("api")
def api_command(
    port: int = typer.Option(
        None, min=1, max=65535, help="Port (default: SWITCHBOARD_API_PORT)."
    ),
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (0.0.0.0 inside a container)."
    ),
    relay: bool = typer.Option(
        True, help="Also publish the configuration outbox from this process."
    ),
) -> None:
    """Serve the configuration API until SIGTERM or Ctrl-C."""
    import uvicorn

    from services.api.app import create_app

    settings = load_settings()
    warn_if_development_key(settings)
    _require_database(settings)
    uvicorn.run(
        create_app(settings, run_relay=relay),
        host=host,
        port=settings.api_port if port is None else port,
        log_config=None,
    )


@app.command("relay")
def relay_command() -> None:
    """Publish the configuration outbox to notify.config until SIGTERM or Ctrl-C."""
    from services.api.relay import run_relay
    from switchboard.metrics import start_metrics_server

    settings = load_settings()
    _require_database(settings)
    start_metrics_server(settings.metrics_port)
    run_relay(settings)


tenant_app = typer.Typer(help="Tenants and their API keys.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")


def _with_tenants(action: Callable[[psycopg.Connection], _T]) -> _T:
    """Run a tenant command's ``action`` on a connection; refusals are one line."""
    from services.api.tenants import TenantError

    settings = load_settings()

    def run() -> _T:
        with _connect(settings) as conn:
            try:
                return action(conn)
            except TenantError as error:
                raise fail(str(error)) from None

    return _ops_call(run)


@tenant_app.command("create")
def tenant_create(name: str) -> None:
    """Create a tenant; prints its id and its first API key (shown only once)."""
    from services.api.tenants import create_tenant

    tenant_id, key = _with_tenants(lambda conn: create_tenant(conn, name))
    print(f"tenant_id {tenant_id}")
    print(f"api_key {key}")


@tenant_app.command("key")
def tenant_key(name: str) -> None:
    """Issue another API key for a tenant; prints it once."""
    from services.api.tenants import issue_key_for

    key = _with_tenants(lambda conn: issue_key_for(conn, name))
    print(f"api_key {key}")


@tenant_app.command("revoke")
def tenant_revoke(key_prefix: str) -> None:
    """Revoke the API key that starts with KEY_PREFIX (sbk_ and 8 characters)."""
    from services.api.tenants import revoke_key

    _with_tenants(lambda conn: revoke_key(conn, key_prefix))
    print("revoked")


@app.command("emit")
def emit_command(
    source: typer.FileBinaryRead = typer.Argument(
        "-", help="JSON lines file, one AlertEvent per line; `-` reads standard input."
    ),
    topic: str = typer.Option(None, help="Topic (default: SWITCHBOARD_ALERTS_TOPIC)."),
) -> None:
    """Publish alert events from JSON lines; bad lines are reported by number.

    A line longer than 4 MiB, or an event larger than Kafka takes (about 1 MB
    encoded), is rejected by number like any other bad line.
    """
    from switchboard.codec import default_codec
    from switchboard.emit import MAX_MESSAGE_BYTES, emit_lines, read_lines
    from switchboard.kafka import make_producer

    settings = load_settings()
    producer = make_producer(settings, **{"message.max.bytes": MAX_MESSAGE_BYTES})
    report = emit_lines(
        read_lines(source),
        producer,
        default_codec(),
        topic or settings.alerts_topic,
    )
    for number, reason in report.rejected:
        errors.print(f"line {number}: {reason}", highlight=False, markup=False)
    for reason in report.failed:
        advice = (
            f"check that Kafka answers at {settings.kafka_bootstrap} "
            "(`switchboard stack status`)"
        )
        errors.print(
            f"not published: {reason}; {advice}", highlight=False, markup=False
        )
    console.print(
        f"{report.published} events published, {len(report.rejected)} lines rejected"
    )
    if report.rejected or report.failed:
        raise typer.Exit(code=1)


groups_app = typer.Typer(
    help="Consumer groups: members, lag and offsets.", invoke_without_command=True
)
dlq_app = typer.Typer(help="Dead-letter topics: list and replay.", no_args_is_help=True)
jobs_app = typer.Typer(help="Delivery jobs.", no_args_is_help=True)
app.add_typer(groups_app, name="groups")
app.add_typer(dlq_app, name="dlq")
app.add_typer(jobs_app, name="jobs")


def _print_json(value: object) -> None:
    """Print ``value`` as JSON on stdout, without Rich markup."""
    from services.ops.render import to_json

    print(to_json(value))


@groups_app.callback()
def groups_list(
    ctx: typer.Context,
    watch: bool = typer.Option(False, "--watch", help="Refresh a live table."),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts."),
    interval_s: float = typer.Option(2.0, "--interval", min=0.5, help="Seconds."),
    prefix: str = typer.Option("switchboard.", help="Only groups starting with it."),
) -> None:
    """List Switchboard's consumer groups with state, members and total lag."""
    if ctx.invoked_subcommand is not None:
        return
    import time

    from rich.live import Live

    from services.ops.groups import list_groups
    from services.ops.render import groups_table
    from switchboard.kafka import make_admin

    admin = make_admin(load_settings())
    groups = _ops_call(lambda: list_groups(admin, prefix))
    if as_json:
        _print_json(groups)
        return
    if not watch:
        console.print(groups_table(groups))
        return
    if not console.is_terminal:
        # A live table redraws in place, which a pipe or file never shows:
        # print a new table each interval instead.
        _watch_printed(admin, prefix, interval_s, groups)
        return
    with Live(groups_table(groups), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval_s)
                groups = _ops_call(lambda: list_groups(admin, prefix))
                live.update(groups_table(groups), refresh=True)
        except KeyboardInterrupt:
            return


def _watch_printed(
    admin: Any, prefix: str, interval_s: float, groups: list[Any]
) -> None:
    """``groups --watch`` for a pipe or a file: one timestamped table per round."""
    import time
    from datetime import UTC, datetime

    from services.ops.groups import list_groups
    from services.ops.render import groups_table

    try:
        while True:
            console.print(datetime.now(UTC).isoformat(timespec="seconds"))
            console.print(groups_table(groups))
            console.file.flush()
            time.sleep(interval_s)
            groups = _ops_call(lambda: list_groups(admin, prefix))
    except KeyboardInterrupt:
        return


def _group_id(value: str) -> str:
    """Check a GROUP argument: a consumer group id is never blank."""
    if not value.strip():
        raise typer.BadParameter("a consumer group id, not an empty string")
    return value


@groups_app.command("describe")
def groups_describe(
    group: str = typer.Argument(..., help="Consumer group id.", callback=_group_id),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts."),
) -> None:
    """Per partition: committed offset, end offset, lag and owning member."""
    from services.ops.groups import describe_group
    from services.ops.render import group_json, group_tables
    from switchboard.kafka import make_admin

    admin = make_admin(load_settings())
    detail = _ops_call(lambda: describe_group(admin, group))
    if as_json:
        _print_json(group_json(detail))
        return
    for table in group_tables(detail):
        console.print(table)


@groups_app.command("reset")
def groups_reset(
    group: str = typer.Argument(..., help="Consumer group id.", callback=_group_id),
    to: str = typer.Option(
        ..., "--to", help="earliest, latest, an ISO time (UTC if no zone) or an offset."
    ),
    topic: str = typer.Option(None, help="Only this topic (default: all committed)."),
    partition: int = typer.Option(None, min=0, help="Only this partition of --topic."),
    execute: bool = typer.Option(False, "--execute", help="Apply; else plan only."),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts."),
) -> None:
    """Move a stopped group's offsets: prints the plan, applies it with --execute.

    The plan is shown while the group has live members too (it changes
    nothing); --execute is refused until they are stopped.
    """
    from services.ops.groups import ResetTarget, apply_reset, plan_reset
    from services.ops.render import live_members_line, reset_table
    from switchboard.kafka import make_admin

    admin = make_admin(load_settings())
    target = _ops_call(lambda: ResetTarget.parse(to))
    plan = _ops_call(lambda: plan_reset(admin, group, target, topic, partition))
    if execute:
        _ops_call(lambda: apply_reset(admin, plan))
    if as_json:
        _print_json({"plan": plan, "executed": execute})
        return
    console.print(reset_table(plan, execute))
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    members = live_members_line(plan)
    if members and not execute:
        console.print(members, highlight=False, markup=False)


ROUTER_DLQ_TYPE = "router"


def _dlq_type(value: str) -> str:
    """Check a TYPE argument: a channel type, or ``router`` for the router's input."""
    from switchboard.topics import CHANNEL_TYPES

    if value != ROUTER_DLQ_TYPE and value not in CHANNEL_TYPES:
        raise typer.BadParameter(f"one of {', '.join(CHANNEL_TYPES)}, or router")
    return value


def _dlq_topic(channel_type: str, topic: str | None) -> tuple[str, bool]:
    """The dead-letter topic to read, and whether it holds the router's input."""
    from switchboard.topics import ROUTER_DLQ_TOPIC, dlq_topic

    if channel_type == ROUTER_DLQ_TYPE:
        return topic or ROUTER_DLQ_TOPIC, True
    chosen = topic or dlq_topic(channel_type)
    return chosen, chosen == ROUTER_DLQ_TOPIC


def _uuid_option(option: str, value: str | None) -> str | None:
    """An id option as Switchboard writes ids (lower-case UUID), or a clear error."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise fail(f"{option} {value!r} is not an id (a UUID)") from None


def _dead_letters(settings: Settings, topic: str) -> list[Any]:
    """Every dead letter now on ``topic``, newest first."""
    from services.ops.dlq import newest_first, read_dead_letters
    from switchboard.codec import default_codec

    return newest_first(
        _ops_call(lambda: read_dead_letters(settings, topic, default_codec()))
    )


def _selection(
    job: str | None,
    channel: str | None,
    tenant: str | None,
    since: str | None,
    reason: str | None,
) -> Any:
    """The dead letters the filter options select; ids are checked to be UUIDs."""
    from services.ops.dlq import Selection
    from services.ops.groups import parse_time

    moment = _ops_call(lambda: parse_time(since)) if since else None
    return Selection(
        job_id=_uuid_option("--job", job),
        channel_id=_uuid_option("--channel", channel),
        tenant_id=_uuid_option("--tenant", tenant),
        since=moment,
        reason=reason,
    )


@dlq_app.command("list")
def dlq_list(
    channel_type: str = typer.Argument(..., callback=_dlq_type, metavar="TYPE"),
    limit: int = typer.Option(50, min=1, help="Dead letters per page."),
    page: int = typer.Option(1, min=1, help="Page number, newest first."),
    job: str = typer.Option(None, help="Only this job id."),
    channel: str = typer.Option(None, help="Only this channel id."),
    tenant: str = typer.Option(None, help="Only this tenant id."),
    since: str = typer.Option(None, help="Dead-lettered at or after (ISO time)."),
    reason: str = typer.Option(
        None, help="Only this reason (e.g. http_4xx; for router: UnknownSchemaError)."
    ),
    topic: str = typer.Option(None, help="Read this topic instead of TYPE's."),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts."),
) -> None:
    """Dead letters of a channel type, or of the router (TYPE `router`).

    For a channel type: job, tenant, channel, reason and time. For the router:
    key, reason, where the input was, and what of it still decodes.
    """
    from services.ops.dlq import page as page_of
    from services.ops.dlq import replays
    from services.ops.render import dead_letter_json, dead_letters_table

    settings = load_settings()
    topic, of_router = _dlq_topic(channel_type, topic)
    if of_router:
        filters = (job, channel, tenant, since, reason)
        _list_router_dead_letters(settings, topic, filters, limit, page, as_json)
        return
    everything = _dead_letters(settings, topic)
    if everything and all(d.from_router for d in everything):
        # A router dead-letter topic by another name: show it as such.
        filters = (job, channel, tenant, since, reason)
        _list_router_dead_letters(settings, topic, filters, limit, page, as_json)
        return
    selection = _selection(job, channel, tenant, since, reason)
    letters = [d for d in everything if selection.matches(d)]
    shown = page_of(letters, limit, page)

    def read_replays() -> dict[tuple[int, int], Any]:
        with _connect(settings) as conn:
            return replays(conn, topic)

    done = _ops_call(read_replays)
    if as_json:
        items = [dead_letter_json(d, done.get((d.partition, d.offset))) for d in shown]
        _print_json(
            {"topic": topic, "total": len(letters), "page": page, "items": items}
        )
        return
    pages = max((len(letters) + limit - 1) // limit, 1)
    title = f"{topic}: {len(letters)} dead letter(s), page {page} of {pages}"
    console.print(dead_letters_table(title, shown, done))


def _list_router_dead_letters(
    settings: Settings,
    topic: str,
    filters: tuple[str | None, ...],
    limit: int,
    page: int,
    as_json: bool,
) -> None:
    """Print a page of the router's dead letters and how to publish them again."""
    from services.ops.dlq import (
        ROUTER_REPUBLISH_HINT,
        RouterSelection,
        newest_first,
        read_router_dead_letters,
    )
    from services.ops.dlq import page as page_of
    from services.ops.groups import parse_time
    from services.ops.render import router_dead_letter_json, router_dead_letters_table
    from switchboard.codec import default_codec

    job, channel, tenant, since, reason = filters
    if job or channel:
        raise fail(
            "--job and --channel do not apply to the router's dead letters: they "
            "never became jobs; use --tenant, --since or --reason"
        )
    selection = RouterSelection(
        tenant_id=tenant,
        since=_ops_call(lambda: parse_time(since)) if since else None,
        error_class=reason,
    )
    found = _ops_call(
        lambda: read_router_dead_letters(settings, topic, default_codec())
    )
    letters = [d for d in newest_first(found) if selection.matches(d)]
    shown = page_of(letters, limit, page)
    if as_json:
        items = [router_dead_letter_json(d) for d in shown]
        document = {"topic": topic, "total": len(letters), "page": page}
        _print_json({**document, "items": items, "republish": ROUTER_REPUBLISH_HINT})
        return
    pages = max((len(letters) + limit - 1) // limit, 1)
    title = f"{topic}: {len(letters)} dead letter(s), page {page} of {pages}"
    console.print(router_dead_letters_table(title, shown))
    console.print(ROUTER_REPUBLISH_HINT, highlight=False, markup=False)


@dlq_app.command("replay")
def dlq_replay(
    channel_type: str = typer.Argument(..., callback=_dlq_type, metavar="TYPE"),
    job: str = typer.Option(None, help="Only this job id."),
    channel: str = typer.Option(None, help="Only this channel id."),
    tenant: str = typer.Option(None, help="Only this tenant id."),
    since: str = typer.Option(None, help="Dead-lettered at or after (ISO time)."),
    reason: str = typer.Option(None, help="Only this reason (e.g. http_4xx)."),
    replay_all: bool = typer.Option(False, "--all", help="Everything on the topic."),
    again: bool = typer.Option(False, "--again", help="Also those replayed before."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show, change nothing."),
    topic: str = typer.Option(None, help="Read this topic instead of TYPE's."),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts."),
) -> None:
    """Queue selected dead letters again as the next attempts of their jobs."""
    from services.ops.dlq import ROUTER_REPUBLISH_HINT, Replayer, ReplayOutcome
    from services.ops.render import replay_json, replay_table
    from switchboard.codec import default_codec
    from switchboard.kafka import make_producer

    settings = load_settings()
    topic, of_router = _dlq_topic(channel_type, topic)
    if of_router:
        raise fail(ROUTER_REPUBLISH_HINT)
    selection = _selection(job, channel, tenant, since, reason)
    if selection.empty and not replay_all:
        raise fail(
            "choose dead letters with --job, --channel, --tenant, --since or "
            "--reason, or --all"
        )
    everything = _dead_letters(settings, topic)
    if everything and all(d.from_router for d in everything):
        raise fail(ROUTER_REPUBLISH_HINT)
    letters = [d for d in everything if selection.matches(d)]
    producer = make_producer(settings)

    def replay() -> list[Any]:
        with _connect(settings) as conn:
            replayer = Replayer(conn, producer, default_codec())
            return replayer.run(letters, again=again, dry_run=dry_run)

    results = _ops_call(replay)
    if as_json:
        _print_json(replay_json(results))
    else:
        console.print(replay_table(results, dry_run))
    if any(r.outcome is ReplayOutcome.FAILED for r in results):
        raise typer.Exit(code=1)


@jobs_app.command("retry")
def jobs_retry(
    tenant: str = typer.Option(None, help="Only this tenant id."),
    channel: str = typer.Option(None, help="Only this channel id."),
    reason: str = typer.Option(None, help="Only jobs whose last reason is this."),
    since: str = typer.Option(None, help="Died at or after (ISO time)."),
    retry_all: bool = typer.Option(False, "--all", help="Every dead job."),
    limit: int = typer.Option(1000, min=1, help="At most this many jobs."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show, change nothing."),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts."),
) -> None:
    """Re-queue dead jobs, through the same path as the API's retry."""
    from services.ops.groups import parse_time
    from services.ops.jobs import DeadJobFilter, dead_jobs, retry_jobs
    from services.ops.render import retry_json, retry_table
    from switchboard.codec import default_codec
    from switchboard.kafka import make_producer

    settings = load_settings()
    tenant_id = _uuid_option("--tenant", tenant)
    channel_id = _uuid_option("--channel", channel)
    selection = DeadJobFilter(
        tenant_id=uuid.UUID(tenant_id) if tenant_id else None,
        channel_id=uuid.UUID(channel_id) if channel_id else None,
        reason=reason,
        since=_ops_call(lambda: parse_time(since)) if since else None,
        limit=limit,
    )
    if selection.empty and not retry_all:
        raise fail(
            "choose jobs with --tenant, --channel, --reason or --since, or --all"
        )

    def retry() -> list[Any]:
        with _connect(settings) as conn:
            jobs = dead_jobs(conn, selection)
            producer = make_producer(settings)
            return retry_jobs(conn, producer, default_codec(), jobs, dry_run)

    results = _ops_call(retry)
    if as_json:
        _print_json(retry_json(results))
    else:
        console.print(retry_table(results, dry_run))
    if any(r.kafka_refused for r in results):
        raise typer.Exit(code=1)


@secrets_app.command("rotate")
def secrets_rotate(
    tenant: str = typer.Option(None, help="Only this tenant's channels."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count, change nothing."),
) -> None:
    """Re-encrypt stored channel secrets under SWITCHBOARD_SECRET_KEY, row by row."""
    from services.ops.render import rotation_line
    from services.ops.rotate_secrets import RotationReport, SecretRotator
    from switchboard.codec import default_codec

    settings = load_settings()
    tenant_id = _uuid_option("--tenant", tenant)
    warn_if_development_key(settings)

    def rotate() -> RotationReport:
        with _connect(settings) as conn:
            rotator = SecretRotator(settings, conn, default_codec())
            return rotator.run(uuid.UUID(tenant_id) if tenant_id else None, dry_run)

    report = _ops_call(rotate)
    console.print(rotation_line(report), highlight=False)
    if report.unreadable:
        raise typer.Exit(code=1)


@app.command("deliverer")
def deliverer_command(
    types: str = typer.Option(
        ..., "--type", help="Channel types to deliver, comma separated (e.g. webhook)."
    ),
) -> None:
    """Deliver commands of the given channel types until SIGTERM or Ctrl-C."""
    from services.deliverer.service import DelivererError, run_deliverer
    from switchboard.domain import ChannelType
    from switchboard.lag import export_lag_of
    from switchboard.metrics import start_metrics_server
    from switchboard.topics import deliverer_group, deliverer_retry_group

    settings = load_settings()
    warn_if_development_key(settings)
    channel_types = [t.strip() for t in types.split(",") if t.strip()]
    unknown = sorted(set(channel_types) - {str(t) for t in ChannelType})
    if unknown or not channel_types:
        raise fail(f"unknown channel types: {', '.join(unknown) or '(none given)'}")
    channel_types = list(dict.fromkeys(channel_types))
    start_metrics_server(settings.metrics_port)
    groups = [deliverer_group(t) for t in channel_types]
    groups += [deliverer_retry_group(t) for t in channel_types]
    export_lag_of(settings, groups, settings.metrics_port)

    def deliver() -> None:
        try:
            run_deliverer(settings, channel_types)
        except DelivererError as error:
            raise fail(str(error)) from None

    _ops_call(deliver)


@app.command("recorder")
def recorder_command() -> None:
    """Record notify.jobs into the job tables until SIGTERM or Ctrl-C."""
    from services.recorder.service import run_recorder
    from switchboard.lag import export_lag_of
    from switchboard.metrics import start_metrics_server
    from switchboard.topics import RECORDER_GROUP

    settings = load_settings()
    _require_database(settings)
    start_metrics_server(settings.metrics_port)
    export_lag_of(settings, [RECORDER_GROUP], settings.metrics_port)
    _ops_call(lambda: run_recorder(settings))


@app.command("cutover")
def cutover_command(
    source_url: str = typer.Option(
        None,
        help="Database holding the old integrations tables "
        "(default: SWITCHBOARD_DATABASE_URL).",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    apply: bool = typer.Option(
        False, "--apply", help="Create the channels and rules (one transaction)."
    ),
    with_history: bool = typer.Option(
        False, "--with-history", help="With --apply: copy finished jobs and attempts."
    ),
    skip_history: bool = typer.Option(
        False,
        "--skip-history",
        help="Leave the old finished jobs and attempts behind (not with "
        "--with-history), so they do not hold back --drop-legacy.",
    ),
    drop_legacy: bool = typer.Option(
        False,
        "--drop-legacy",
        help="Drop the old tables once every old row is converted or skipped.",
    ),
    skip: list[str] = typer.Option(  # noqa: B008 - typer's way to declare a list
        None,
        "--skip",
        help="Old row id to leave out (repeatable, or comma-separated); an "
        "integration's id also covers its routes and jobs.",
    ),
) -> None:
    """Convert the old integrations system: plan (default), apply, then drop it."""
    import json

    from services.cutover.report import result_json
    from services.cutover.run import run_cutover

    settings = load_settings()
    if with_history and not apply:
        raise fail(
            "--with-history copies the old jobs as part of --apply; add --apply "
            "(without it the cutover only plans and writes nothing)"
        )
    ids = _skip_ids(skip or [])
    try:
        result = run_cutover(
            settings,
            source_url=source_url,
            apply=apply,
            with_history=with_history,
            skip_history=skip_history,
            drop=drop_legacy,
            skip=ids,
        )
    except Exception as error:
        raise fail(_cutover_failure(error)) from None
    if json_output:
        report = result_json(
            result.plan, result.applied, result.dropped, result.refused
        )
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_cutover(result, apply, with_history)
    if result.refused:
        raise typer.Exit(code=1)


def _skip_ids(values: list[str]) -> list[str]:
    """The --skip ids, split at commas; each must be an old row's id.

    Integrations, routes and jobs have UUIDs; attempts have whatever id the old
    table gave them, a number in the old system's schema.
    """
    ids = [part.strip() for value in values for part in value.split(",")]
    for value in ids:
        if value and not value.isdigit() and _uuid_or_none(value) is None:
            raise fail(
                f"--skip {value!r} is not an old row id: give the UUID of an "
                "integration, route or job, or the number of an attempt"
            )
    return [value for value in ids if value]


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _cutover_failure(error: Exception) -> str:
    """One line for a failed cutover; a database's own detail may quote row values."""
    import psycopg

    if isinstance(error, psycopg.errors.UndefinedTable):
        return "the Switchboard database is not migrated; run `switchboard migrate`"
    if isinstance(error, psycopg.Error):
        primary = error.diag.message_primary or str(error).splitlines()[0]
        return f"cutover stopped and its transaction was rolled back: {primary}"
    return f"cutover failed: {error}"


def _print_cutover(result, apply: bool, with_history: bool) -> None:  # noqa: ANN001
    """Print a cutover run for people: the plan, then what was applied and dropped."""
    from services.cutover.report import plan_text

    title = "Legacy cutover" if apply else "Legacy cutover plan (nothing written)"
    print(title)
    for line in plan_text(result.plan, with_history=with_history and apply):
        print(line)
    if result.applied is not None:
        counts = result.applied
        done = (
            "nothing new"
            if counts.nothing
            else f"{counts.tenants} tenants, {counts.channels} channels, "
            f"{counts.rules} rules, {counts.jobs} jobs, {counts.attempts} attempts"
        )
        print(f"\nApplied in one transaction: {done}")
    if result.dropped is not None:
        tables = ", ".join(f"{t} ({n} rows)" for t, n in result.dropped.tables.items())
        print(f"\nDropped in one transaction: {tables}")
    if result.refused:
        print("\nNot dropping the old tables:")
        for reason in result.refused:
            print(f"  {reason}")


@app.command("demo")
def demo_command(
    devices: int = typer.Option(240, min=1, help="Devices in the alert stream."),
    duration: float = typer.Option(40.0, min=5, help="Seconds over which to publish."),
    keep_running: bool = typer.Option(
        False,
        "--keep-running",
        help="Leave everything up after the verdict, restart services that exit, "
        "print the addresses; Ctrl-C stops it.",
    ),
    retry_delays: str = typer.Option(
        "1s,5s,15s", help="Retry tiers of the demo's processes (short, for a demo)."
    ),
    outage: float = typer.Option(
        20.0, min=0, help="Seconds the Teams receiver answers 503 from the start."
    ),
    one_deliverer: bool = typer.Option(
        True, help="One deliverer for all seven types (else one per type)."
    ),
) -> None:
    """Run the whole pipeline on a realistic alert stream and check every delivery.

    Its API uses SWITCHBOARD_API_PORT (another free port, said so, when that one
    is taken). A service that exits during the run ends it with one line naming
    the service and its log. With --keep-running everything stays up after the
    verdict and a service that exits is restarted, until Ctrl-C.

    The demo leaves behind, for inspection: its tenant (demo-<id>) with seven
    channels, its rules and every job and attempt, in the configured database; a
    probe tenant (demo-<id>-probe) whose channel and rule it deletes; and the
    services' logs under /tmp/switchboard-demo-*/logs. `switchboard tenant key
    demo-<id>` issues an API key to read its jobs.
    """
    from services.demo.run import DemoOptions, run_demo

    options = DemoOptions(
        devices=devices,
        duration_s=duration,
        retry_delays=retry_delays,
        outage_s=outage,
        one_deliverer=one_deliverer,
        keep_running=keep_running,
    )
    settings = load_settings()

    def demo() -> int:
        try:
            return run_demo(settings, options, console)
        except local_stack.StackError as error:
            raise fail(str(error)) from None

    raise typer.Exit(code=_ops_call(demo))


def main() -> None:
    """Entry point for ``python -m switchboard.cli``."""
    app()


if __name__ == "__main__":
    sys.exit(main())
