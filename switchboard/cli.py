"""The ``switchboard`` command line: one entry point for every process and tool."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.table import Table

from switchboard import stack as local_stack
from switchboard.logs import configure_logging
from switchboard.settings import DEVELOPMENT_SECRET_KEY, Settings, get_settings

app = typer.Typer(
    help="Switchboard: reliable delivery of alert notifications over Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(help="The local Kafka, PostgreSQL and MQTT stack.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secret keys.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(topics_app, name="topics")
app.add_typer(secrets_app, name="secrets")

console = Console()
errors = Console(stderr=True)
log = logging.getLogger(__name__)


def fail(message: str) -> typer.Exit:
    """Print one clear error line (and any detail after it) and exit non-zero."""
    first, _, rest = message.partition("\n")
    errors.print(f"[bold red]error:[/] {first}", highlight=False)
    if rest:
        errors.print(rest, highlight=False, markup=False)
    return typer.Exit(code=1)


def load_settings() -> Settings:
    """Read settings and set up logging, turning bad settings into a clear error."""
    try:
        settings = get_settings()
    except Exception as error:
        raise fail(f"invalid settings: {error}") from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def warn_if_development_key(settings: Settings) -> None:
    """Say so when secrets are protected by the published development key."""
    if settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY:
        log.warning("using the development secret key; set SWITCHBOARD_SECRET_KEY")


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
    """Show each component, its address and whether it answers."""
    settings = load_settings()
    print_status(settings)


def print_status(settings: Settings) -> bool:
    """Print the stack's status table; True if every component answers."""
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
        db.migrate(settings.database_url)
    except Exception as error:
        raise fail(f"migration failed: {error}") from None
    console.print(f"database at revision {db.current_revision(settings.database_url)}")


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic idempotently; report existing topics with wrong settings."""
    from switchboard.kafka import make_admin
    from switchboard.topics import ensure_topics, topic_specs

    settings = load_settings()
    reports = ensure_topics(make_admin(settings), topic_specs(settings))
    bad = [r for r in reports if r.action in ("mismatch", "failed")]
    created = sum(1 for r in reports if r.action == "created")
    console.print(f"{len(reports)} topics: {created} created, {len(reports) - created - len(bad)} ok")
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
        None, help="Prometheus port (default: SWITCHBOARD_METRICS_PORT); 0 disables."
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
    import uuid

    from services.router.app import Router, RouterError, RouterOptions, RouterTopics
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
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        Router(settings, topics, options).run(stop)
    except RouterError as error:
        raise fail(str(error)) from None


@app.command("api")
def api_command(
    port: int = typer.Option(None, help="Port (default: SWITCHBOARD_API_PORT)."),
    relay: bool = typer.Option(
        True, help="Also publish the configuration outbox from this process."
    ),
) -> None:
    """Serve the configuration API on 127.0.0.1 until SIGTERM or Ctrl-C."""
    import uvicorn

    from services.api.app import create_app

    settings = load_settings()
    warn_if_development_key(settings)
    uvicorn.run(
        create_app(settings, run_relay=relay),
        host="127.0.0.1",
        port=settings.api_port if port is None else port,
        log_config=None,
    )


@app.command("relay")
def relay_command() -> None:
    """Publish the configuration outbox to notify.config until SIGTERM or Ctrl-C."""
    from services.api.relay import run_relay
    from switchboard.metrics import start_metrics_server

    settings = load_settings()
    start_metrics_server(settings.metrics_port)
    run_relay(settings)


tenant_app = typer.Typer(help="Tenants and their API keys.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")


def _tenant_connection():  # noqa: ANN202 - psycopg.Connection, imported lazily
    import psycopg

    return psycopg.connect(load_settings().database_url, autocommit=True)


@tenant_app.command("create")
def tenant_create(name: str) -> None:
    """Create a tenant; prints its id and its first API key (shown only once)."""
    from services.api.tenants import TenantError, create_tenant

    with _tenant_connection() as conn:
        try:
            tenant_id, key = create_tenant(conn, name)
        except TenantError as error:
            raise fail(str(error)) from None
    print(f"tenant_id {tenant_id}")
    print(f"api_key {key}")


@tenant_app.command("key")
def tenant_key(name: str) -> None:
    """Issue another API key for a tenant; prints it once."""
    from services.api.tenants import TenantError, issue_key_for

    with _tenant_connection() as conn:
        try:
            key = issue_key_for(conn, name)
        except TenantError as error:
            raise fail(str(error)) from None
    print(f"api_key {key}")


@tenant_app.command("revoke")
def tenant_revoke(key_prefix: str) -> None:
    """Revoke the API key that starts with KEY_PREFIX (sbk_ and 8 characters)."""
    from services.api.tenants import TenantError, revoke_key

    with _tenant_connection() as conn:
        try:
            revoke_key(conn, key_prefix)
        except TenantError as error:
            raise fail(str(error)) from None
    print("revoked")


@app.command("emit")
def emit_command(
    source: typer.FileText = typer.Argument(
        "-", help="JSON lines file, one AlertEvent per line; `-` reads standard input."
    ),
    topic: str = typer.Option(None, help="Topic (default: SWITCHBOARD_ALERTS_TOPIC)."),
) -> None:
    """Publish alert events from JSON lines; bad lines are reported by number."""
    from switchboard.codec import default_codec
    from switchboard.emit import emit_lines
    from switchboard.kafka import make_producer

    settings = load_settings()
    report = emit_lines(
        source, make_producer(settings), default_codec(), topic or settings.alerts_topic
    )
    for number, reason in report.rejected:
        errors.print(f"line {number}: {reason}", highlight=False, markup=False)
    for reason in report.failed:
        errors.print(f"not published: {reason}", highlight=False, markup=False)
    console.print(
        f"{report.published} events published, {len(report.rejected)} lines rejected"
    )
    if report.rejected or report.failed:
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
    from switchboard.metrics import start_metrics_server

    settings = load_settings()
    warn_if_development_key(settings)
    channel_types = [t.strip() for t in types.split(",") if t.strip()]
    unknown = sorted(set(channel_types) - {str(t) for t in ChannelType})
    if unknown or not channel_types:
        raise fail(f"unknown channel types: {', '.join(unknown) or '(none given)'}")
    start_metrics_server(settings.metrics_port)
    try:
        run_deliverer(settings, list(dict.fromkeys(channel_types)))
    except DelivererError as error:
        raise fail(str(error)) from None


@app.command("recorder")
def recorder_command() -> None:
    """Record notify.jobs into the job tables until SIGTERM or Ctrl-C."""
    from services.recorder.service import run_recorder
    from switchboard.metrics import start_metrics_server

    settings = load_settings()
    start_metrics_server(settings.metrics_port)
    run_recorder(settings)


def main() -> None:
    """Entry point for ``python -m switchboard.cli``."""
    app()


if __name__ == "__main__":
    sys.exit(main())
