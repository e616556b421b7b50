"""The review page's HTTP server: stdlib only, bound to 127.0.0.1, one page and two JSON calls.

Protocol:

- ``GET /`` the page; ``GET /review.js`` and ``GET /review.css`` its script and style (and
  ``204`` for the ``/favicon.ico`` browsers ask for);
- ``GET /api/state`` the sample, the labels and the figures (:meth:`ReviewSession.state`);
- ``POST /api/label`` with a JSON :class:`~apigen_local.review.session.LabelRequest`: records it
  (fsynced) and answers the new state; a bad label is ``400`` with ``{"error": "..."}`` saying
  whether the label was saved.

Since a page on another site can send requests to 127.0.0.1, every request must name this
server in its ``Host`` header (against DNS rebinding), a ``POST`` must be ``application/json``
(a cross-site page cannot send that without a preflight, which is never answered) and come from
this origin when the browser says where it comes from. Responses forbid every source but this
server (``Content-Security-Policy``), so nothing the page shows, including model-written text,
can make the browser reach anywhere else.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ..errors import ApigenError, ConfigError
from .session import ReviewSession

HOST = "127.0.0.1"
MAX_BODY = 64 * 1024
_STATIC = {"/": ("review.html", "text/html"), "/review.js": ("review.js", "text/javascript"),
           "/review.css": ("review.css", "text/css")}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

log = logging.getLogger(__name__)


class ReviewServer(ThreadingHTTPServer):
    """Serves one :class:`ReviewSession` on 127.0.0.1; ``on_label`` runs after each saved label."""

    daemon_threads = True

    def __init__(self, session: ReviewSession, port: int = 0, *,
                 on_label: Callable[[], None] | None = None) -> None:
        self.session = session
        self.on_label = on_label
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port must be 0 to 65535, not {port}")
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {HOST} is taken: give another with --port, "
                                  "or --port 0 for any free one") from None
            raise ConfigError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
        self.port = self.server_address[1]
        self.url = f"http://{HOST}:{self.port}/"
        self.origins = {f"http://{HOST}:{self.port}", f"http://localhost:{self.port}"}

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests and embedding); :meth:`shutdown` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="review-server", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "apigen-local-review"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("review: " + format, *args)

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        path = self.path.split("?", 1)[0]
        if path == "/api/state":
            self._answer_json(self.server.session.state)
        elif path == "/favicon.ico":  # browsers ask for one; there is none
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif path in _STATIC:
            name, kind = _STATIC[path]
            body = resources.files(__package__).joinpath("static", name).read_bytes()
            self._send(HTTPStatus.OK, body, f"{kind}; charset=utf-8")
        else:
            self._error(HTTPStatus.NOT_FOUND, "no such page")

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        if self.path != "/api/label":
            self._error(HTTPStatus.NOT_FOUND, "no such call")
            return
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            self._error(HTTPStatus.FORBIDDEN, "requests from other origins are refused")
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length")
            return
        if not 0 <= length <= MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "a label is small")
            return
        body = self.rfile.read(length)

        try:
            self.server.session.label(body)
        except ApigenError as exc:
            self._error(HTTPStatus.BAD_REQUEST, f"the label was not saved: {exc}")
            return
        if self.server.on_label is not None:
            self.server.on_label()

        def saved_state() -> dict[str, Any]:
            try:
                return self.server.session.state()
            except ApigenError as exc:
                raise ConfigError(f"the label is saved, but the page could not be brought up to date ({exc}): "
                                  "reload it") from exc

        self._answer_json(saved_state)

    def _host_allowed(self) -> bool:
        host = self.headers.get("Host", "")
        if f"http://{host}" in self.server.origins:
            return True
        self._error(HTTPStatus.FORBIDDEN, "this server answers only to its own address")
        return False

    def _answer_json(self, produce: Callable[[], dict[str, Any]]) -> None:
        try:
            payload = produce()
        except ApigenError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        self._send(HTTPStatus.OK, json.dumps(payload, ensure_ascii=False).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
