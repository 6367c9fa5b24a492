from aimesh.testing import fake_provider, provider  # noqa: F401 - fixtures
from tests.asgi_server import asgi_server  # noqa: F401, E402 - fixture
