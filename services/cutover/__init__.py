"""The one-shot cutover from the old integrations system to Switchboard.

The old system kept webhook, SNMP, email and MQTT integrations in four tables
(``integrations``, ``integration_routes``, ``delivery_jobs``,
``delivery_attempts``). The cutover works in three steps, each safe to repeat:

- plan (:mod:`services.cutover.plan`): read the old tables
  (:mod:`services.cutover.legacy`), convert every row (:mod:`.convert` for
  integrations, :mod:`.routes` for routes, :mod:`.history` for jobs) and
  validate it exactly as the API validates a request (:mod:`.create`); nothing
  is written.
- apply (:mod:`services.cutover.apply`): write the plan in one transaction, with
  outbox rows so running routers and deliverers pick the channels and rules up,
  and remember each converted old row in ``legacy_cutover_items`` so a re-run
  creates nothing new.
- drop (:mod:`services.cutover.drop`): remove the old tables once every old row
  was converted or explicitly skipped.
"""
