"""A local webhook receiver for demos, CI and benchmarks: verifies each request with `standardwebhooks`.

    .venv/bin/python -m webhooks.receiver --port 9000 --secret whsec_…   (or WEBHOOK_SECRET=whsec_…)

Answers 204 to a request whose signature verifies and 400 otherwise, and prints one JSON line per request:
`{"verified": true, "id": "evt_…", "type": "payment.captured", "payment": "pay_…", "status": "captured"}`.
With `--log FILE` it also appends those lines to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


def make_handler(secret: str, log_path: str | None) -> type[BaseHTTPRequestHandler]:
    """A request handler class verifying with `secret` and logging to stdout (and `log_path`)."""
    verifier = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                event = verifier.verify(body, dict(self.headers.items()))
                obj = event.get("data", {}).get("object", {})
                line = {
                    "verified": True,
                    "id": event.get("id"),
                    "type": event.get("type"),
                    "payment": obj.get("id"),
                    "status": obj.get("status"),
                }
                self.send_response(204)
            except WebhookVerificationError as exc:
                line = {"verified": False, "error": str(exc)}
                self.send_response(400)
            self.end_headers()
            text = json.dumps(line)
            print(text, flush=True)
            if log_path:
                with open(log_path, "a") as fh:
                    fh.write(text + "\n")

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Run the receiver until interrupted. Exit status 2 when no secret is given."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET", ""))
    parser.add_argument("--log", default=None)
    args = parser.parse_args(argv)
    if not args.secret:
        print("give the endpoint's signing secret with --secret or WEBHOOK_SECRET", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.secret, args.log))
    print(f"listening on http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
