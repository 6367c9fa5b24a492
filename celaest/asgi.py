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
import gc
import json
import os
import tempfile

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

from celaest.aio import serving_loop_mark, sync_steps_stop
from celaest.errors import error_body
from celaest.hooks import serving_loop_stop_observers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celaest.settings")
django_application = get_asgi_application()


class AIHandler(ASGIHandler):
    #: resolved paths kept, at most (a path that resolves to nothing is not kept)
    MAX_RESOLVED = 256

    def __init__(self, middleware: list[str]):
        self.middleware = middleware
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
            await _send_json(send, 413, _too_large_body())

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


ai_application = AIHandler(settings.AI_MIDDLEWARE)
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
