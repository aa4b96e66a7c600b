"""The plan: what the cutover creates, carries over, skips and cannot convert.

A plan is computed from a snapshot of the old tables and from what the
Switchboard database already holds (tenants, and the ledger of old rows
converted by earlier runs), so planning twice gives the same answer and
planning after an apply shows nothing left to create. Every old row ends up in
exactly one place: to create, already converted, skipped, pending (unfinished
jobs, never copied) or unconvertible with the reasons.

History: finished old jobs are carried over as job events (see
:mod:`services.cutover.history`) with ``--with-history``, or left behind on
purpose with ``skip_history`` (``--skip-history``), in which case they are not
planned at all and do not block the drop. Unfinished jobs are never carried
over either way.

Tenants: Switchboard identifies tenants by uuid, and alerts name them by the
same id the old system used. An old tenant id that is not yet in ``tenants`` is
created with that id (so its alerts keep routing), named ``legacy-<id>`` and
without an API key; the plan lists these tenants. An old tenant id that is not
a uuid cannot be a Switchboard tenant, and its rows are unconvertible.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg

from services.cutover.convert import CREDENTIAL_HEADER, Draft, Unconvertible, convert
from services.cutover.create import (
    InvalidInput,
    ValidChannel,
    validate_channel,
    validate_rule,
)
from services.cutover.history import JobCopy, copy_job, terminal_state, unfinished
from services.cutover.legacy import (
    LegacyIntegration,
    LegacyJob,
    LegacyRoute,
    LegacySnapshot,
)
from services.cutover.routes import may_both_match, rule_fields
from services.deliverer.channels.webhook.config import credential_variants
from services.deliverer.redact import redact, secret_values

INTEGRATIONS, ROUTES, JOBS = "integrations", "integration_routes", "delivery_jobs"
ATTEMPTS = "delivery_attempts"
# How many ids a warning lists before "and N more".
MAX_IDS_SHOWN = 20
# Old config keys that hold secrets, whatever the type: removed from any text shown.
SECRET_KEYS = ("secret", "community", "auth_key", "priv_key", "password")
PRIVATE_TARGET_HINT = (
    " (the API refuses such targets; an operator may allow them with "
    "SWITCHBOARD_ALLOW_PRIVATE_TARGETS=true)"
)


# Channel and rule ids derive from the old row's id, so the ids a plan shows are
# the ids the apply creates.
ID_NAMESPACE = uuid.UUID("3f6a9f0e-2c1d-4b8a-9e57-6c0d2b1a7f42")


def channel_id_for(integration_id: uuid.UUID) -> uuid.UUID:
    """The id of the channel converted from an old integration."""
    return uuid.uuid5(ID_NAMESPACE, f"integration/{integration_id}")


def rule_id_for(route_id: uuid.UUID) -> uuid.UUID:
    """The id of the rule converted from an old route."""
    return uuid.uuid5(ID_NAMESPACE, f"route/{route_id}")


def tenant_name(tenant_id: uuid.UUID) -> str:
    """The name a tenant created by the cutover gets."""
    return f"legacy-{tenant_id}"


@dataclass(frozen=True)
class UnconvertibleRow:
    """An old row that cannot be converted, with every reason (field, problem)."""

    table: str
    legacy_id: str
    tenant_id: str
    name: str | None
    problems: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ChannelItem:
    """A channel to create from an integration, or one an earlier run created."""

    legacy_id: uuid.UUID
    tenant_id: uuid.UUID
    channel_id: uuid.UUID
    channel_type: str
    name: str
    enabled: bool
    exists: bool
    channel: ValidChannel | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleItem:
    """A rule to create from a route, or one an earlier run created."""

    legacy_id: uuid.UUID
    tenant_id: uuid.UUID
    rule_id: uuid.UUID
    channel_type: str
    name: str
    exists: bool
    channel_name: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobItem:
    """A finished old job to carry over, or one an earlier run carried over."""

    legacy_id: uuid.UUID
    tenant_id: uuid.UUID
    channel_type: str
    state: str
    exists: bool
    copy: JobCopy | None = None


@dataclass(frozen=True)
class PendingJob:
    """An old job the old system had not finished: reported, never copied."""

    legacy_id: uuid.UUID
    tenant_id: str
    status: str
    integration_id: uuid.UUID | None


@dataclass
class Plan:
    """Everything the cutover would do, and everything it cannot."""

    legacy_tables: tuple[str, ...]
    tenants_to_create: list[uuid.UUID] = field(default_factory=list)
    channels: list[ChannelItem] = field(default_factory=list)
    rules: list[RuleItem] = field(default_factory=list)
    jobs: list[JobItem] = field(default_factory=list)
    pending_jobs: list[PendingJob] = field(default_factory=list)
    unconvertible: list[UnconvertibleRow] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # With skip_history: the finished old jobs and attempts left behind.
    skip_history: bool = False
    history_left_behind: list[str] = field(default_factory=list)
    attempts_left_behind: int = 0

    @property
    def new_channels(self) -> list[ChannelItem]:
        """Channels this plan creates."""
        return [item for item in self.channels if not item.exists]

    @property
    def new_rules(self) -> list[RuleItem]:
        """Rules this plan creates."""
        return [item for item in self.rules if not item.exists]

    @property
    def new_jobs(self) -> list[JobItem]:
        """Old jobs this plan copies (with history)."""
        return [item for item in self.jobs if not item.exists]


@dataclass(frozen=True)
class TargetState:
    """What the Switchboard database already holds that the plan depends on."""

    ledger: dict[tuple[str, uuid.UUID], uuid.UUID]
    tenants: frozenset[uuid.UUID]
    # Channels created by earlier runs that still exist (customers may delete them).
    live_channels: frozenset[uuid.UUID]
    applied: bool


def read_target_state(conn: psycopg.Connection) -> TargetState:
    """Read the ledger, the tenants and the surviving converted channels."""
    ledger = {
        (table, legacy_id): new_id
        for table, legacy_id, new_id in conn.execute(
            "SELECT legacy_table, legacy_id, new_id FROM legacy_cutover_items"
        ).fetchall()
    }
    tenants = frozenset(row[0] for row in conn.execute("SELECT id FROM tenants"))
    live = frozenset(
        row[0]
        for row in conn.execute(
            "SELECT c.id FROM notification_channels c JOIN legacy_cutover_items i"
            " ON i.new_id = c.id AND i.legacy_table = 'integrations'"
        )
    )
    applied = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM legacy_cutover_runs WHERE action = 'apply')"
    ).fetchone()
    return TargetState(ledger, tenants, live, bool(applied and applied[0]))


def build_plan(
    snapshot: LegacySnapshot,
    state: TargetState,
    skip: Iterable[str] = (),
    *,
    allow_private_targets: bool = False,
    skip_history: bool = False,
) -> Plan:
    """The plan for ``snapshot`` given what the database already holds.

    With ``skip_history`` the finished old jobs are left behind: not planned,
    only counted.
    """
    planner = _Planner(snapshot, state, skip, allow_private_targets, skip_history)
    return planner.plan()


def _parse_tenant(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text).strip())
    except ValueError:
        return None


def _not_uuid(tenant_id: str) -> tuple[str, str]:
    return ("tenant_id", f"{tenant_id!r} is not a uuid; Switchboard tenants are uuids")


@dataclass(frozen=True)
class _Target:
    """Where an old integration's routes and jobs now go."""

    channel_id: uuid.UUID
    channel_type: str
    name: str
    tenant_id: uuid.UUID
    live: bool


class _Planner:
    """Walks the snapshot once: integrations, then routes, then jobs."""

    def __init__(
        self,
        snapshot: LegacySnapshot,
        state: TargetState,
        skip: Iterable[str],
        allow_private_targets: bool,
        skip_history: bool = False,
    ) -> None:
        """Prepare to plan ``snapshot`` against ``state``."""
        self.snapshot = snapshot
        self.state = state
        self.skip = {str(value).strip().lower() for value in skip}
        self.allow_private = allow_private_targets
        self.result = Plan(legacy_tables=snapshot.present, skip_history=skip_history)
        self.hidden: dict[uuid.UUID, tuple[str, ...]] = {}
        self.integrations = {i.id: i for i in snapshot.integrations}
        self.targets: dict[uuid.UUID, _Target] = {}
        self.skipped_integrations: set[uuid.UUID] = set()

    def plan(self) -> Plan:
        """Place every old row: to create, converted before, skipped or refused."""
        for integration in self.snapshot.integrations:
            self._integration(integration)
        for route in self.snapshot.routes:
            self._route(route)
        for job in self.snapshot.jobs:
            self._job(job)
        self._tenants()
        self._notes()
        return self.result

    def _skipped(self, table: str, legacy_id: uuid.UUID) -> bool:
        if str(legacy_id).lower() in self.skip:
            self.result.skipped.append((table, str(legacy_id)))
            return True
        return False

    def _refuse(
        self, table: str, row: Any, problems: Iterable[tuple[str, str]]
    ) -> None:
        self.result.unconvertible.append(
            UnconvertibleRow(
                table,
                str(row.id),
                str(row.tenant_id),
                getattr(row, "name", None),
                tuple(problems),
            )
        )

    def _integration(self, integration: LegacyIntegration) -> None:
        if self._skipped(INTEGRATIONS, integration.id):
            self.skipped_integrations.add(integration.id)
            return
        tenant = _parse_tenant(integration.tenant_id)
        if tenant is None:
            self._refuse(INTEGRATIONS, integration, [_not_uuid(integration.tenant_id)])
            return
        earlier = self.state.ledger.get((INTEGRATIONS, integration.id))
        if earlier is not None:
            self._remember_existing(integration, tenant, earlier)
            return
        try:
            draft = convert(integration)
        except Unconvertible as error:
            self._refuse(INTEGRATIONS, integration, [(error.field, error.problem)])
            return
        self._validated(integration, tenant, draft)

    def _remember_existing(
        self, integration: LegacyIntegration, tenant: uuid.UUID, channel_id: uuid.UUID
    ) -> None:
        channel_type = str(integration.type).strip().lower()
        name = _channel_name(integration)
        live = channel_id in self.state.live_channels
        self.targets[integration.id] = _Target(
            channel_id, channel_type, name, tenant, live
        )
        self.result.channels.append(
            ChannelItem(
                integration.id,
                tenant,
                channel_id,
                channel_type,
                name,
                integration.enabled,
                exists=True,
            )
        )

    def _validated(
        self, integration: LegacyIntegration, tenant: uuid.UUID, draft: Draft
    ) -> None:
        problems = list(draft.problems)
        channel = None
        try:
            channel = validate_channel(
                draft.channel_type,
                _channel_name(integration),
                integration.enabled,
                draft.config,
                draft.secrets,
                allow_private_targets=self.allow_private,
            )
        except InvalidInput as error:
            problems += error.problems
        if problems or channel is None:
            self._refuse(
                INTEGRATIONS, integration, _explained(problems, draft, integration)
            )
            return
        channel_id = channel_id_for(integration.id)
        self.targets[integration.id] = _Target(
            channel_id, channel.channel_type, channel.name, tenant, True
        )
        self.result.channels.append(
            ChannelItem(
                integration.id,
                tenant,
                channel_id,
                channel.channel_type,
                channel.name,
                channel.enabled,
                exists=False,
                channel=channel,
                warnings=draft.warnings + _engine_note(channel, channel_id),
            )
        )

    def _route(self, route: LegacyRoute) -> None:
        if route.integration_id in self.skipped_integrations:
            self.result.skipped.append((ROUTES, str(route.id)))
            return
        if self._skipped(ROUTES, route.id):
            return
        earlier = self.state.ledger.get((ROUTES, route.id))
        target = (
            self.targets.get(route.integration_id) if route.integration_id else None
        )
        if earlier is not None:
            # Only a route with a uuid tenant was ever converted.
            self.result.rules.append(
                RuleItem(
                    route.id,
                    uuid.UUID(route.tenant_id.strip()),
                    earlier,
                    target.channel_type if target else "",
                    route.name or "",
                    exists=True,
                )
            )
            return
        problems = self._route_problems(route, target)
        if problems:
            self._refuse(ROUTES, route, problems)
            return
        assert target is not None
        self._validated_route(route, target)

    def _route_problems(
        self, route: LegacyRoute, target: _Target | None
    ) -> list[tuple[str, str]]:
        tenant = _parse_tenant(route.tenant_id)
        if tenant is None:
            return [_not_uuid(route.tenant_id)]
        if route.integration_id not in self.integrations:
            return [
                (
                    "integration_id",
                    f"route to a missing integration {route.integration_id}",
                )
            ]
        if target is None:
            return [
                (
                    "integration_id",
                    f"its integration {route.integration_id} cannot be converted",
                )
            ]
        if target.tenant_id != tenant:
            return [
                (
                    "tenant_id",
                    "the route and its integration belong to different tenants",
                )
            ]
        if not target.live:
            return [
                (
                    "integration_id",
                    f"the channel {target.channel_id} converted "
                    "from its integration was deleted since",
                )
            ]
        return []

    def _validated_route(self, route: LegacyRoute, target: _Target) -> None:
        fields = rule_fields(route, target.channel_id, target.name)
        try:
            rule = validate_rule(fields)
        except InvalidInput as error:
            self._refuse(ROUTES, route, error.problems)
            return
        self.result.rules.append(
            RuleItem(
                route.id,
                target.tenant_id,
                rule_id_for(route.id),
                target.channel_type,
                rule.name,
                exists=False,
                channel_name=target.name,
                fields=rule.model_dump(mode="json"),
            )
        )

    def _job(self, job: LegacyJob) -> None:
        if job.integration_id in self.skipped_integrations:
            self.result.skipped.append((JOBS, str(job.id)))
            return
        if self._skipped(JOBS, job.id):
            return
        if unfinished(job):
            self.result.pending_jobs.append(
                PendingJob(
                    job.id, job.tenant_id, str(job.status).upper(), job.integration_id
                )
            )
            return
        if self.result.skip_history:
            self.result.history_left_behind.append(str(job.id))
            self.result.attempts_left_behind += len(job.attempt_rows)
            return
        self._finished_job(job)

    def _finished_job(self, job: LegacyJob) -> None:
        state = terminal_state(job)
        target = self.targets.get(job.integration_id) if job.integration_id else None
        tenant = _parse_tenant(job.tenant_id)
        if state is None:
            self._refuse(JOBS, job, [("status", f"unknown job status {job.status!r}")])
        elif tenant is None:
            self._refuse(JOBS, job, [_not_uuid(job.tenant_id)])
        elif target is None:
            self._refuse(
                JOBS,
                job,
                [
                    (
                        "integration_id",
                        f"its integration {job.integration_id} is not converted",
                    )
                ],
            )
        elif (JOBS, job.id) in self.state.ledger:
            self.result.jobs.append(
                JobItem(job.id, tenant, target.channel_type, str(state), exists=True)
            )
        elif target.tenant_id != tenant:
            # Copied, the job would show one tenant another tenant's channel.
            self._refuse(
                JOBS,
                job,
                [
                    (
                        "tenant_id",
                        "the job and its integration belong to different tenants",
                    )
                ],
            )
        else:
            assert job.integration_id is not None
            copy = copy_job(
                job,
                tenant,
                target.channel_id,
                target.channel_type,
                self._hidden(job.integration_id),
            )
            self.result.jobs.append(
                JobItem(
                    job.id,
                    tenant,
                    target.channel_type,
                    str(state),
                    exists=False,
                    copy=copy,
                )
            )

    def _tenants(self) -> None:
        needed = {item.tenant_id for item in self.result.new_channels}
        self.result.tenants_to_create = sorted(needed - self.state.tenants, key=str)

    def _notes(self) -> None:
        known = {str(row.id).lower() for row in self._all_rows()}
        known |= {a.lower() for a in self.snapshot.orphan_attempt_ids}
        unknown = sorted(self.skip - known)
        if unknown:
            self.result.warnings.append(
                f"--skip ids that match no old row: {', '.join(unknown)}"
            )
        self._orphan_attempts()
        self._overlaps()

    def _hidden(self, integration_id: uuid.UUID) -> tuple[str, ...]:
        """The secret values of an old integration, to remove from its jobs' text."""
        if integration_id not in self.hidden:
            integration = self.integrations[integration_id]
            draft = None
            try:
                draft = convert(integration)
            except Unconvertible:
                pass
            self.hidden[integration_id] = secret_values(_secrets_of(draft, integration))
        return self.hidden[integration_id]

    def _orphan_attempts(self) -> None:
        """Attempts of no job are never copied: skipped by id, or a warning."""
        orphans = self.snapshot.orphan_attempt_ids
        left = [a for a in orphans if a.lower() not in self.skip]
        self.result.skipped += [(ATTEMPTS, a) for a in orphans if a not in left]
        if self.result.skip_history:
            # History left behind: they neither warn nor block the drop.
            self.result.attempts_left_behind += len(left)
            return
        if not left:
            return
        shown = ", ".join(left[:MAX_IDS_SHOWN])
        if len(left) > MAX_IDS_SHOWN:
            shown += f" and {len(left) - MAX_IDS_SHOWN} more"
        self.result.warnings.append(
            f"{len(left)} attempts belong to no job and are not carried over; skip "
            f"them to drop the old tables: {shown}"
        )

    def _overlaps(self) -> None:
        """Warn where one alert could match two rules of the same channel.

        Old jobs were per integration, not per route; a rule is a job of its own,
        so such an alert is now delivered once per matching rule.
        """
        by_channel: dict[str, list[RuleItem]] = {}
        for rule in self.result.new_rules:
            by_channel.setdefault(rule.fields["channel_id"], []).append(rule)
        for rules in by_channel.values():
            for index, first in enumerate(rules):
                for second in rules[index + 1 :]:
                    if may_both_match(first.fields, second.fields):
                        self.result.warnings.append(
                            f"routes {first.legacy_id} and {second.legacy_id} can both "
                            f"match one alert; {first.channel_name!r} then gets it "
                            "once per rule"
                        )

    def _all_rows(self) -> Iterable[Any]:
        yield from self.snapshot.integrations
        yield from self.snapshot.routes
        yield from self.snapshot.jobs


def _engine_note(channel: ValidChannel, channel_id: uuid.UUID) -> tuple[str, ...]:
    """For SNMPv3: the engine id receivers must know, since the old one is gone."""
    config = channel.config
    if channel.channel_type != "snmp" or config.get("version") != "v3":
        return ()
    if config.get("engine_id"):
        return ()
    from services.deliverer.channels.snmp.sender import engine_id_for

    engine_id = engine_id_for(str(channel_id), config["enterprise_oid"])
    return (
        f"SNMPv3 traps will come from engine id {engine_id}; receivers' user "
        "entries must name it",
    )


def _channel_name(integration: LegacyIntegration) -> str:
    if isinstance(integration.name, str) and integration.name.strip():
        return integration.name
    return f"{integration.type} integration {str(integration.id)[:8]}"


def _explained(
    problems: list[tuple[str, str]], draft: Draft, integration: LegacyIntegration
) -> list[tuple[str, str]]:
    """Problems under the new field name and the old key, with secrets removed."""
    hidden = secret_values(_secrets_of(draft, integration))
    explained = []
    for name, problem in problems:
        origin = _origin(name, draft.origins)
        where = f"{name} (old {origin})" if origin and origin != name else name
        text = redact(problem, hidden) or problem
        if "not a public address" in text or "internal host" in text:
            text += PRIVATE_TARGET_HINT
        explained.append((where, text))
    return explained


def _origin(name: str, origins: dict[str, str]) -> str | None:
    """The old key of a new field path, also inside lists ("config.to.1")."""
    head, rest = name, ""
    while head:
        if head in origins:
            return origins[head] + rest
        head, dot, tail = head.rpartition(".")
        rest = f"{dot}{tail}{rest}"
    return None


def _secrets_of(draft: Draft | None, integration: LegacyIntegration) -> dict[str, Any]:
    """Every secret value of an old integration and of what it converts to.

    Besides the keys that hold secrets, the old config's credential-looking
    headers and its URL's password and query values, where tokens often sit.
    """
    old = integration.config if isinstance(integration.config, dict) else {}
    values: dict[str, Any] = {
        f"old_{key}": old.get(key) for key in SECRET_KEYS if old.get(key)
    }
    headers = old.get("headers")
    if isinstance(headers, dict):
        credentials = {
            str(k): v
            for k, v in headers.items()
            if CREDENTIAL_HEADER.search(str(k)) and isinstance(v, str)
        }
        # Servers that refuse a credential often quote only its token.
        values["old_headers"] = [
            *credentials.values(),
            *credential_variants(credentials),
        ]
    url = old.get("url")
    if isinstance(url, str):
        values["old_url"] = _url_secrets(url)
    return {**values, **(draft.secrets if draft is not None else {})}


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [value for _, value in parse_qsl(parts.query)]
    return found + ([password] if password else [])
