"""The benchmark's webhook receiver: verifies every signature and remembers when each event arrived.

    .venv/bin/python -m bench.receiver --port 8502 --secret whsec_…

A dedicated, asyncio (aiohttp) variant of webhooks/receiver.py that can take thousands of requests per second
without becoming the bottleneck. `POST /` verifies the Standard Webhooks signature with the `standardwebhooks`
library (204 when it verifies, 400 otherwise) and records (event type, payment id, arrival time). The harness
reads what arrived with:

- `GET /stats[?since=T]` → `{"verified": n, "rejected": n, "duplicates": n, "by_type": {"payment.captured": n, …}}`
  (with `since`, `by_type` counts only payments created at or after T, unix seconds, from the event body);
- `GET /events?type=payment.captured` → `{"events": [[payment_id, unix_seconds], …]}` (first arrival of each
  payment, so retries do not count twice).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from datetime import datetime
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError


def make_app(secret: str) -> web.Application:
    """The receiver's aiohttp application, verifying with the endpoint's `whsec_…` `secret`."""
    verifier = Webhook(secret)
    arrived: dict[str, dict[str, float]] = {}
    created: dict[str, float] = {}  # payment id → its `created` (unix seconds), from the event body
    counts: Counter[str] = Counter()

    async def hook(request: web.Request) -> web.Response:
        """POST /: 204 when the signature verifies (and record the arrival), else 400."""
        body = await request.read()
        now = time.time()
        try:
            event: dict[str, Any] = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            counts["rejected"] += 1
            return web.Response(status=400)
        counts["verified"] += 1
        kind = str(event.get("type"))
        obj = event.get("data", {}).get("object", {})
        payment = str(obj.get("id"))
        if payment not in created and obj.get("created"):
            created[payment] = datetime.fromisoformat(str(obj["created"]).replace("Z", "+00:00")).timestamp()
        seen = arrived.setdefault(kind, {})
        if payment in seen:
            counts["duplicates"] += 1
        else:
            seen[payment] = now
        return web.Response(status=204)

    async def get_stats(request: web.Request) -> web.Response:
        """GET /stats[?since=unix seconds]: counters; `by_type` counts only payments created at or after `since`."""
        since = float(request.query.get("since", "0"))
        by_type = {
            kind: sum(1 for p in seen if created.get(p, 0.0) >= since) if since else len(seen)
            for kind, seen in arrived.items()
        }
        return web.json_response(
            {
                "verified": counts["verified"],
                "rejected": counts["rejected"],
                "duplicates": counts["duplicates"],
                "by_type": by_type,
            }
        )

    async def get_events(request: web.Request) -> web.Response:
        """GET /events?type=…: first arrival (unix seconds) of each payment's event of that type."""
        seen = arrived.get(request.query.get("type", ""), {})
        return web.json_response({"events": [[p, t] for p, t in seen.items()]})

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/", hook)
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/events", get_events)
    return app


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT. Exit status 2 without a secret."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8502)
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET", ""))
    args = parser.parse_args(argv)
    if not args.secret:
        print("give the endpoint's signing secret with --secret or WEBHOOK_SECRET", file=sys.stderr)
        return 2
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(make_app(args.secret), host=args.host, port=args.port, access_log=None, print=None, loop=loop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
