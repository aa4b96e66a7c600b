"""The one error operator tools raise; the command line prints its message."""


class OpsError(Exception):
    """Raised when an operation cannot be done; the message says why."""
