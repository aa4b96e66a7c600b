"""The one-shot cutover from the old integrations system to Switchboard.

The old system kept webhook, SNMP, email and MQTT integrations in four tables
(``integrations``, ``integration_routes``, ``delivery_jobs``,
``delivery_attempts``). The cutover works in three steps, each safe to repeat
(docs/cutover.md is the operator's guide):

- plan (:mod:`services.cutover.plan`): read the old tables
  (:mod:`services.cutover.legacy`), convert every row (:mod:`.convert` for
  integrations, :mod:`.routes` for routes, :mod:`.history` for jobs) and
  validate it exactly as the API validates a request (:mod:`.create`); nothing
  is written.
- apply (:mod:`services.cutover.apply`): write the plan in one transaction, with
  outbox rows so running routers and deliverers pick the channels and rules up,
  and remember each converted old row in ``legacy_cutover_items`` so a re-run
  creates nothing new. With history, the finished old jobs become job events in
  ``job_outbox``: the relay publishes them to notify.jobs and the recorder
  writes the job tables from them, so the cutover never writes those tables and
  a replay of notify.jobs rebuilds the copied history like any other.
- drop (:mod:`services.cutover.drop`): remove the old tables once every old row
  was converted or explicitly skipped, or, with ``skip_history``, once every
  integration, route and unfinished job was, leaving the finished history behind.

Failures are :class:`services.cutover.errors.CutoverFailed`, whose message says
which step failed and what it left (a plan writes nothing; an apply or a drop is
rolled back whole).
"""
