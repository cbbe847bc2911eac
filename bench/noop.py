"""The no-op outbox subscriber of the relay scenario: `bench.noop` on topic `bench.noop`.

Rows for it measure what the outbox relay itself costs per event (claim, lease, handler call, mark done),
with nothing done by the handler.
"""

from __future__ import annotations

from config.platform.outbox import engine as outbox

SUBSCRIBER = "bench.noop"
TOPIC = "bench.noop"


@outbox.subscriber(SUBSCRIBER, topics=[TOPIC])
def noop(message: outbox.Message) -> None:
    """Do nothing with `message`."""
    return None
