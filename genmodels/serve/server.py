"""The HTTP side of ``genmodels serve``: the page's files and the JSON API, on the standard
library's threading HTTP server.

    GET  /                      the page (genmodels/serve/static/index.html)
    GET  /static/NAME           its script and style sheet
    GET  /api/info              the model: kind, image shape, methods, masks, limits
    GET  /api/digit?index=I     test image I and its label
    GET  /api/mask?kind=K&seed=S   a named mask (genmodels.inpaint.MASK_KINDS)
    POST /api/inpaint           {"image", "mask", "method"?, "samples"?, "steps"?, "seed"?}
    GET  /api/game?seed=S&mask=M   15 test digits with erased pixels (no truth)
    POST /api/game              {"seed", "mask"?, "guesses"} → truth, model guesses, scores

Answers are JSON; a bad request gets ``{"error": message}`` with a 4xx status and the server
stays up; a bug gets a 500 with its message (the traceback goes to the server's stderr).
"""

from __future__ import annotations

import json
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

from genmodels.serve.service import InpaintingService, RequestError

MAX_BODY = 2**20  # bytes of a request body: a 28×28 image and mask take about 10 kB
STATIC = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}


def static_file(name: str) -> bytes:
    """The bytes of one of the page's files, shipped in the package."""
    return resources.files("genmodels.serve").joinpath("static", name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    """Routes one request to the :class:`InpaintingService` of its server."""

    server: ApiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        url = urlparse(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        service = self.server.service
        if url.path in ("/", "/index.html"):
            return self._file("index.html")
        if url.path.startswith("/static/") and url.path[len("/static/"):] in STATIC:
            return self._file(url.path[len("/static/"):])
        routes = {"/api/info": lambda: service.info(),
                  "/api/digit": lambda: service.digit(_query_int(query, "index", 0)),
                  "/api/mask": lambda: service.mask(query.get("kind", "top"),
                                                    _query_int(query, "seed", 0)),
                  "/api/game": lambda: service.game(_query_int(query, "seed", 0),
                                                    query.get("mask", "top"))}
        self._answer(routes.get(url.path))

    def do_POST(self) -> None:  # noqa: N802
        service = self.server.service
        routes = {"/api/inpaint": service.inpaint, "/api/game": service.answer}
        route = routes.get(urlparse(self.path).path)
        self._answer(None if route is None else lambda: route(self._body()))

    def _body(self) -> object:
        try:
            length = int(self.headers.get("Content-Length", 0))
        except ValueError:
            raise RequestError("the Content-Length header is not a number") from None
        if length > MAX_BODY:
            self._discard(length)  # so that the client reads the answer, not a broken pipe
            raise RequestError(f"the request body has {length} bytes; at most {MAX_BODY}",
                               status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RequestError(f"the request body is not valid JSON ({err})") from None

    def _discard(self, length: int) -> None:
        """Read and drop a request body too large to use (up to 64 MiB; past that the
        connection is closed after the answer)."""
        self.close_connection = True
        left = length if length <= 64 * MAX_BODY else 0
        while left > 0:
            chunk = self.rfile.read(min(left, 2**16))
            if not chunk:
                break
            left -= len(chunk)

    def _answer(self, route) -> None:
        if route is None:
            return self._json({"error": f"no such address: {self.command} {self.path}; see "
                                        "docs/serve.md for the API"}, HTTPStatus.NOT_FOUND)
        try:
            body, status = route(), HTTPStatus.OK
        except RequestError as err:
            body, status = {"error": str(err)}, err.status
        except Exception as err:  # a bug: say so, keep serving, keep the traceback
            traceback.print_exc(file=sys.stderr)
            body, status = {"error": f"internal error: {type(err).__name__}: {err}"}, 500
        self._json(body, status)

    def _json(self, body: object, status: int) -> None:
        self._send(json.dumps(body).encode(), "application/json", status)

    def _file(self, name: str) -> None:
        self._send(static_file(name), f"{STATIC[name]}; charset=utf-8", HTTPStatus.OK)

    def _send(self, data: bytes, content_type: str, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)


def _query_int(query: dict[str, str], key: str, default: int) -> int:
    text = query.get(key)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise RequestError(f"?{key}= should be an integer, got {text!r}") from None


class ApiServer(ThreadingHTTPServer):
    """A threading HTTP server that answers with ``service``; port 0 picks a free one
    (``server.server_address``)."""

    daemon_threads = True

    def __init__(self, service: InpaintingService, host: str = "127.0.0.1", port: int = 8000,
                 verbose: bool = False) -> None:
        super().__init__((host, port), Handler)
        self.service, self.verbose = service, verbose

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"
