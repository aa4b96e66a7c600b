"""Every HTTP status an HTTP channel may meet and what the deliverer does with it.

Shared by every HTTP channel's tests: a sender passes when, for each row, the
outcome of a real request answered with that status has the kind and reason of
the row. 307 and 308 are missing on purpose: the webhook channel follows them
once (tested on their own), and a channel that does not follow them must treat
them like the other redirects.
"""

from __future__ import annotations

from services.deliverer.outcome import OutcomeKind, Reason

DELIVERED, RETRYABLE, PERMANENT = (
    OutcomeKind.DELIVERED,
    OutcomeKind.RETRYABLE,
    OutcomeKind.PERMANENT,
)

HTTP_STATUS_DECISIONS: list[tuple[int, OutcomeKind, Reason]] = [
    (200, DELIVERED, Reason.DELIVERED),
    (201, DELIVERED, Reason.DELIVERED),
    (202, DELIVERED, Reason.DELIVERED),
    (204, DELIVERED, Reason.DELIVERED),
    (299, DELIVERED, Reason.DELIVERED),
    (300, PERMANENT, Reason.HTTP_REDIRECT),
    (301, PERMANENT, Reason.HTTP_REDIRECT),
    (302, PERMANENT, Reason.HTTP_REDIRECT),
    (303, PERMANENT, Reason.HTTP_REDIRECT),
    (304, PERMANENT, Reason.HTTP_REDIRECT),
    (400, PERMANENT, Reason.HTTP_4XX),
    (401, PERMANENT, Reason.HTTP_4XX),
    (403, PERMANENT, Reason.HTTP_4XX),
    (404, PERMANENT, Reason.HTTP_4XX),
    (405, PERMANENT, Reason.HTTP_4XX),
    (408, RETRYABLE, Reason.HTTP_RETRYABLE_4XX),
    (409, PERMANENT, Reason.HTTP_4XX),
    (410, PERMANENT, Reason.HTTP_4XX),
    (413, PERMANENT, Reason.HTTP_4XX),
    (415, PERMANENT, Reason.HTTP_4XX),
    (422, PERMANENT, Reason.HTTP_4XX),
    (425, RETRYABLE, Reason.HTTP_RETRYABLE_4XX),
    (429, RETRYABLE, Reason.HTTP_429),
    (431, PERMANENT, Reason.HTTP_4XX),
    (451, PERMANENT, Reason.HTTP_4XX),
    (500, RETRYABLE, Reason.HTTP_5XX),
    (501, RETRYABLE, Reason.HTTP_5XX),
    (502, RETRYABLE, Reason.HTTP_5XX),
    (503, RETRYABLE, Reason.HTTP_5XX),
    (504, RETRYABLE, Reason.HTTP_5XX),
    (599, RETRYABLE, Reason.HTTP_5XX),
]
