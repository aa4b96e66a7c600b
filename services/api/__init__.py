"""The configuration API (``switchboard api``) and the outbox relay.

``app`` builds the FastAPI application; ``routes`` holds one module per
resource and ``models`` their bodies; ``deps`` authenticates tenants;
``outbox`` writes configuration changes for ``relay`` to publish to
``notify.config``; ``targets`` refuses private channel targets; ``tenants``
backs the ``switchboard tenant`` commands.
"""
