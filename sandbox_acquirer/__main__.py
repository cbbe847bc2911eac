"""Run the sandbox acquirer on a threaded wsgiref server.

``python -m sandbox_acquirer [--host 127.0.0.1] [--port 8001] [--db PATH]``; the other
settings come from the environment (see ``sandbox_acquirer.app``).
"""

from __future__ import annotations

import argparse
import sys

from .app import create_app
from .server import make_server


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), serve until interrupted, return the exit status.
    ``--db`` overrides ``SANDBOX_ACQUIRER_DB``."""
    parser = argparse.ArgumentParser(prog="python -m sandbox_acquirer", description="Sandbox acquirer")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to bind (default 8001)")
    parser.add_argument(
        "--db", default=None, help="SQLite file (default $SANDBOX_ACQUIRER_DB or .data/sandbox_acquirer.sqlite3)"
    )
    args = parser.parse_args(argv)
    app = create_app(db_path=args.db)
    server = make_server(args.host, args.port, app)
    print(
        f"Sandbox acquirer listening on http://{args.host}:{server.server_port} (db {app.store.path})", file=sys.stderr
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
