"""ASGI entry point: AI work (``AI_PATHS``: the gateway and synchronous tasks) as coroutines.

``uvicorn celaest.asgi:application`` serves every path; in production the proxy sends only
``AI_PATHS`` here and the rest to the WSGI workers (README, "Serving in production").

A call waiting seconds on a provider must hold neither a thread nor a database connection, so AI
paths go to ``AIHandler``: Django's ASGI handler with the middleware of ``AI_MIDDLEWARE`` (each a
coroutine under ASGI) and without the per-request thread Django's handler gives each request for
its synchronous code. Their views are coroutines whose database steps are short calls
(``celaest.aio.sync_step``) on a small pool of threads, each with its database connection, free
again while providers answer. Other paths get Django's handler as it is.
"""

import asyncio
import contextlib
import gc
import json
import os
import tempfile

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

from celaest.aio import serving_loop_mark, sync_steps_stop
from celaest.errors import error_body, gateway_error_body
from celaest.hooks import serving_loop_stop_observers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celaest.settings")
django_application = get_asgi_application()


class AIHandler(ASGIHandler):
    #: resolved paths kept, at most (a path that resolves to nothing is not kept)
    MAX_RESOLVED = 256

    def __init__(self, middleware: list[str], *, request_signals: bool = True):
        self.middleware = middleware
        self.request_signals = request_signals
        self.resolved: dict = {}
        super().__init__()

    def resolve_request(self, request):
        # The AI views sit after every /api/ route: resolving walked them all, 12% of a request's
        # CPU under load. The few AI paths resolve once per process.
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        match = self.resolved.get(request.path_info)
        if match is None:
            match = super().resolve_request(request)
            if len(self.resolved) < self.MAX_RESOLVED:
                self.resolved[request.path_info] = match
        request.resolver_match = match
        return match

    def load_middleware(self, is_async=False):
        saved = settings.MIDDLEWARE
        try:
            settings.MIDDLEWARE = self.middleware
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = saved

    async def __call__(self, scope, receive, send):
        # As ASGIHandler.__call__, without ``ThreadSensitiveContext``: its per-request executor
        # would start a thread for each request and keep it until the answer is complete.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            await self.handle(scope, receive, send)
        except _BodyTooLarge:
            await _send_json(send, 413, gateway_error_body(_too_large_body(), 413, scope.get("path", "")))

    async def handle(self, scope, receive, send):
        if self.request_signals:
            return await super().handle(scope, receive, send)
        # Django's, without ``request_started``/``request_finished``: their receivers (closing
        # the thread's old database connections, resetting its query log, caches and urlconf)
        # are synchronous, so each signal was a hop to asgiref's one shared thread, three per
        # request, for a thread these requests never use: their middleware is async-native, and
        # their database steps run on the pool of ``celaest.aio``, which closes connections
        # after each step itself.
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            _close_quietly(error_response)
            return

        async def process_request():
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client left while sent to
                await self.send_response(response, send)
            return response

        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # the view sees the client leave
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        answered = tasks[1]
        if not answered.cancelled() and answered.exception() is None:
            _close_quietly(answered.result())
        body_file.close()

    async def read_body(self, receive):
        """Django's, refusing a body larger than any AI view takes (``AI_MAX_REQUEST_BYTES``)
        whether or not it declared its length; the views' own limits apply after."""
        limit, read = settings.AI_MAX_REQUEST_BYTES, 0
        body_file = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            chunk = message.get("body", b"")
            read += len(chunk)
            if read > limit:
                body_file.close()
                raise _BodyTooLarge()
            body_file.write(chunk)
            if not message.get("more_body", False):
                break
        body_file.seek(0)
        return body_file


def _close_quietly(response) -> None:
    """``HttpResponse.close`` without its ``request_finished`` signal (see ``AIHandler.handle``)."""
    for closer in response._resource_closers:
        with contextlib.suppress(Exception):
            closer()
    response._resource_closers.clear()
    response.closed = True


class _BodyTooLarge(Exception):
    pass


def _too_large_body() -> dict:
    limit = settings.AI_MAX_REQUEST_BYTES
    return error_body("request_too_large", f"The request body is larger than {limit} bytes.", {"max_bytes": limit})


async def _send_json(send, status: int, body: dict) -> None:
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


# Sessions' middleware is synchronous (it runs on asgiref's thread): that handler keeps the signals
# that close the thread's old connections.
ai_application = AIHandler(settings.AI_MIDDLEWARE, request_signals=False)
ai_session_application = AIHandler(settings.AI_MIDDLEWARE + settings.AI_SESSION_MIDDLEWARE)


def _matcher(paths):
    prefixes = tuple(path for path in paths if path.endswith("/"))
    exact = frozenset(path.rstrip("/") for path in paths if not path.endswith("/"))
    return lambda path: path.startswith(prefixes) or path.rstrip("/") in exact


is_ai_path = _matcher(settings.AI_PATHS)
_takes_sessions = _matcher(settings.AI_SESSION_PATHS)


async def _lifespan(receive, send) -> None:
    """The server's loop serves every request of the process: the provider connection pools
    opened on it stay open until shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            serving_loop_mark()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for observer in serving_loop_stop_observers:
                await observer()
            await asyncio.to_thread(sync_steps_stop)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    path = scope.get("path", "") if scope["type"] == "http" else ""
    if path and is_ai_path(path):
        handler = ai_session_application if _takes_sessions(path) else ai_application
        return await handler(scope, receive, send)
    return await django_application(scope, receive, send)


# As in celaest/wsgi.py: what loading made lives as long as the process; the collector stops walking it.
gc.freeze()
