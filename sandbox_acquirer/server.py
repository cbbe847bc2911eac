"""A small threaded HTTP server for the sandbox acquirer (stdlib ``wsgiref``).

Used by ``python -m sandbox_acquirer`` and by the tests. For anything busier, run
``gunicorn sandbox_acquirer.app:application`` instead.
"""

from __future__ import annotations

import socketserver
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """``wsgiref`` server handling each request in its own daemon thread."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: bursts of concurrent clients would be reset.
    request_queue_size = 128


class QuietRequestHandler(WSGIRequestHandler):
    """Request handler that does not log request lines (nothing request-specific is logged)."""

    def log_message(self, format: str, *args: object) -> None:
        """Discard the access-log line."""


def make_server(host: str, port: int, app: Callable) -> ThreadingWSGIServer:
    """Bind a :class:`ThreadingWSGIServer` on ``host``:``port`` (``port`` 0 picks a free port; read
    it back from ``server.server_port``) serving the WSGI ``app``. Call ``serve_forever()`` to run
    it and ``shutdown()`` + ``server_close()`` to stop it. Raises ``OSError`` if the address is in use.
    """
    server = ThreadingWSGIServer((host, port), QuietRequestHandler)
    server.set_app(app)
    return server
