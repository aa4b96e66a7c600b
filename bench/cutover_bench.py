"""How long the legacy cutover takes for an installation of a given size.

Run: ``.venv/bin/python bench/cutover_bench.py [--integrations 2000] [--jobs 20000]``.
It creates its own scratch database (removed at the end) holding Switchboard's
schema and the old tables, fills the old tables with generated rows (two routes
per integration, two attempts per job, webhook/SNMP/email/MQTT in turn, 100
tenants) and times each step: plan, apply with history, apply again (nothing
new), drop.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from services.cutover.run import run_cutover
from switchboard.db import migrate
from switchboard.settings import Settings

sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "cutover"))
from cutover_fixture import LEGACY_SCHEMA  # noqa: E402 - shared with the tests

TENANTS = 100
# Public address literals: the private-target check must not wait on DNS.
CONFIGS = {
    "webhook": """jsonb_build_object('url', 'https://93.184.215.14/h/' || n,
                  'secret', 'bench-secret-0123456789abcdef-' || n)""",
    "snmp": """jsonb_build_object('host', '93.184.215.15', 'version', '2c',
               'community', 'c-' || n)""",
    "email": """jsonb_build_object('smtp_host', '93.184.215.16', 'smtp_tls', true,
                'from_address', 'alerts@example.com',
                'recipients', jsonb_build_array('noc' || n || '@example.com'))""",
    "mqtt": """jsonb_build_object('broker_host', '93.184.215.17',
               'topic', 'alerts/' || n, 'password', 'p-' || n)""",
}


def fill(url: str, integrations: int, jobs: int) -> None:
    """Generate the old rows with SQL (fast enough for any size worth timing)."""
    kinds = list(CONFIGS)
    cases = " ".join(f"WHEN {i} THEN {CONFIGS[kind]}" for i, kind in enumerate(kinds))
    with psycopg.connect(url) as conn:
        conn.execute(LEGACY_SCHEMA)
        tenants = [uuid.uuid4() for _ in range(TENANTS)]
        conn.execute(
            "CREATE TEMP TABLE bench_tenants AS SELECT row_number() OVER () - 1 AS i,"
            " t AS id FROM unnest(%s::uuid[]) AS t",
            (tenants,),
        )
        conn.execute(
            f"""INSERT INTO integrations (id, tenant_id, name, type, enabled, config)
            SELECT gen_random_uuid(), t.id, 'integration ' || n,
                   (ARRAY{kinds})[mod(n, 4) + 1], mod(n, 10) <> 0,
                   CASE mod(n, 4) {cases} END
            FROM generate_series(0, %s - 1) AS n
            JOIN bench_tenants t ON t.i = mod(n, {TENANTS})""",
            (integrations,),
        )
        conn.execute(
            """INSERT INTO integration_routes (id, tenant_id, integration_id, name,
                   enabled, site_ids, deliver_on, min_severity, priority)
            SELECT gen_random_uuid(), i.tenant_id, i.id, 'route ' || r, true,
                   CASE WHEN r = 1 THEN ARRAY['site-' || r] END,
                   ARRAY['open', 'closed'], 'medium', r * 10
            FROM integrations i CROSS JOIN generate_series(1, 2) AS r"""
        )
        conn.execute(
            "CREATE TEMP TABLE bench_integrations AS SELECT"
            " row_number() OVER (ORDER BY id) - 1 AS i, id, tenant_id FROM integrations"
        )
        conn.execute(
            """INSERT INTO delivery_jobs (id, tenant_id, integration_id, alert_id,
                   event_kind, status, attempts, payload)
            SELECT gen_random_uuid(), i.tenant_id, i.id, 'alert-' || n, 'OPEN',
                   CASE WHEN mod(n, 5) = 0 THEN 'FAILED' ELSE 'COMPLETED' END, 2,
                   jsonb_build_object('severity', 'HIGH')
            FROM generate_series(0, %s - 1) AS n
            JOIN bench_integrations i ON i.i = mod(n, %s)""",
            (jobs, integrations),
        )
        conn.execute(
            """INSERT INTO delivery_attempts (job_id, attempt_no, ok, http_status,
                   started_at, finished_at)
            SELECT j.id, a, a = 2 AND j.status = 'COMPLETED', 500 - (a - 1) * 300,
                   now(), now() + interval '120 milliseconds'
            FROM delivery_jobs j CROSS JOIN generate_series(1, 2) AS a"""
        )


def timed(label: str, step: Callable[[], Any]) -> Any:
    """Run ``step`` and print how long it took."""
    started = time.perf_counter()
    result = step()
    print(f"  {label:<28} {time.perf_counter() - started:7.2f} s", flush=True)
    return result


def main() -> None:
    """Create, fill, time and remove the scratch database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--integrations", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=20000)
    args = parser.parse_args()
    base = Settings()
    name = f"bench_cutover_{uuid.uuid4().hex[:8]}"
    admin_url = base.database_url.rsplit("/", 1)[0] + "/postgres"
    url = base.database_url.rsplit("/", 1)[0] + f"/{name}"
    settings = base.model_copy(update={"database_url": url})
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(url)
        print(
            f"{args.integrations} integrations, {2 * args.integrations} routes, "
            f"{args.jobs} jobs, {2 * args.jobs} attempts, {TENANTS} tenants"
        )
        timed("fill old tables", lambda: fill(url, args.integrations, args.jobs))
        plan = timed("plan", lambda: run_cutover(settings).plan)
        print(
            f"    {len(plan.new_channels)} channels, {len(plan.new_rules)} rules, "
            f"{len(plan.new_jobs)} jobs, {len(plan.unconvertible)} unconvertible"
        )
        timed(
            "apply --with-history",
            lambda: run_cutover(settings, apply=True, with_history=True),
        )
        timed(
            "apply again (nothing new)",
            lambda: run_cutover(settings, apply=True, with_history=True),
        )
        timed("drop", lambda: run_cutover(settings, drop=True))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
