"""moto's server, minus two costs that no AWS endpoint has: a new connection (and server thread) per request, and a scan
of moto's package directory per request.

* Keep-alive: werkzeug's development server answers every request with ``Connection: close`` (``http.server`` cannot
  drain an unread request body before the next request line), so each boto3 call opened a TCP connection and the
  server a thread for it. Here the handler reads the whole body before the application sees it (a ``BytesIO``), so
  nothing is left unread on the connection, and keeps HTTP/1.1 connections open, as AWS endpoints do. werkzeug's
  drain of an unread rest after each response is skipped on such a connection (there is no rest, and the drain would
  read the client's next request, or block on it). A chunked request body still closes its connection.
* ``moto.backends.list_of_moto_modules`` lists moto's package directory and stats each entry on every request, under
  the dispatcher's global lock; the directory does not change while the process runs, so it is listed once.
* moto's DynamoDB checks a write's ``ConditionExpression`` and then writes, with no lock between: two concurrent
  conditional writes of one item can both pass (a thread switch between check and write), which DynamoDB never allows
  (its conditional writes are atomic). The whole-system soak met it: two overlapping reconcile passes both recorded the
  first attempt of one claim and launched a node each for one pod. Item reads and writes run under one lock here.
* moto's Step Functions lexes and parses the whole ASL definition with ANTLR (in pure Python, ~0.5 s for ours) on every
  StartExecution and CreateStateMachine. The parse tree of a definition is read-only once built, so it is kept per
  definition text; the preprocessor still builds fresh evaluation components from it for every execution (they hold
  the execution's state).

Everything else is moto's server unchanged: real HTTP, real request parsing and routing, the same backends.
"""

from __future__ import annotations

import functools
import io
import selectors
import threading
from typing import Any

_patched = [False]
_connection = threading.local()
"""Per server thread (one a connection): whether the request being served keeps its connection open."""


class _NothingToDrain:
    def register(self, *_: Any, **__: Any) -> None:
        return None

    def select(self, timeout: float | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        return None


class _Selectors:
    """``selectors`` as werkzeug's server sees it: on a kept-alive connection the body was read whole, so the drain
    after the response finds nothing to read (instead of reading the client's next request)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(selectors, name)

    @staticmethod
    def DefaultSelector() -> Any:
        return _NothingToDrain() if getattr(_connection, "keep_open", False) else selectors.DefaultSelector()


def _cache_module_list() -> None:
    if _patched[0]:
        return
    from moto import backends
    from werkzeug import serving

    serving.selectors = _Selectors()  # type: ignore[assignment]
    _keep_asl_parse_trees()
    atomic_dynamodb_items()
    listing = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = functools.wraps(backends.list_of_moto_modules)(  # type: ignore[assignment]
        lambda: listing
    )
    _patched[0] = True


_atomic = [False]


def atomic_dynamodb_items() -> None:
    """Make moto's DynamoDB item reads and writes atomic (see the module's docstring), once per process: for the
    server, and for tests that use moto in process (``mock_aws``) from several threads."""
    if _atomic[0]:
        return
    _atomic[0] = True
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def locked(method: Any) -> Any:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name in ("put_item", "update_item", "delete_item", "get_item", "query", "scan", "transact_write_items"):
        setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))


def _keep_asl_parse_trees() -> None:
    from moto.stepfunctions.parser.asl.parse import asl_parser

    parser_class = asl_parser.AmazonStateLanguageParser
    parse = parser_class.parse
    trees: dict[str, Any] = {}
    lock = threading.Lock()

    def parse_kept(definition: str) -> tuple[Any, Any]:
        with lock:
            tree = trees.get(definition)
        if tree is None:
            _, tree = parse(definition)  # raises ASLParserException on a syntax error: nothing is kept
            with lock:
                if len(trees) > 64:
                    trees.clear()
                trees[definition] = tree
        return asl_parser.Preprocessor().visit(tree), tree

    parser_class.parse = staticmethod(parse_kept)  # type: ignore[method-assign]


def moto_server(ip_address: str, port: int) -> Any:
    """A started-on-demand moto server (``start``/``stop``, as ``ThreadedMotoServer``) with kept-alive connections."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    _cache_module_list()

    class KeepAliveHandler(MotoRequestHandler):
        # The handler writes the status line and headers, then the body, in separate sends: with Nagle's algorithm on,
        # the body waits for the client's delayed ACK of the headers (40 ms on Linux) on every kept-alive response.
        disable_nagle_algorithm = True

        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's own reader, and this connection closes
                _connection.keep_open = False
                return environ
            _connection.keep_open = True
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(length) if length > 0 else b"")
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if (
                keyword.lower() == "connection"
                and value.lower() == "close"
                and getattr(_connection, "keep_open", False)
            ):
                return  # HTTP/1.1's default: the connection stays open unless the client closes it
            super().send_header(keyword, value)

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=KeepAliveHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

        def stop(self) -> None:
            server = self._server
            super().stop()
            if server is not None:
                server.server_close()  # the listening socket; kept-alive connections end with their clients

    return Server(ip_address=ip_address, port=port, verbose=False)
