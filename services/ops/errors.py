"""The errors operator tools raise; the command line prints their messages."""


class OpsError(Exception):
    """Raised when an operation cannot be done; the message says why."""


class KafkaUnanswered(OpsError):
    """Raised when Kafka left a request unanswered; the message says which."""
