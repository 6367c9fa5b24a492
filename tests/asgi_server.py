"""A real ASGI server (uvicorn, as in production) serving ``celaest.asgi`` in a thread of the
test process, for the AI paths whose views are coroutines: the gateway and ``POST /tasks``.

Tests using it need ``django_db(transaction=True)``: the server's requests run on their own
database connection and see only committed rows.
"""

import threading
import time

import pytest
import uvicorn


class AsgiServer:
    def __init__(self):
        from celaest.asgi import application

        config = uvicorn.Config(
            application, host="127.0.0.1", port=0, lifespan="on", log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="asgi-server", daemon=True)

    def start(self) -> "AsgiServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the ASGI server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def asgi_server():
    server = AsgiServer().start()
    yield server
    server.stop()
