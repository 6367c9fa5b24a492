from aimesh.testing import fake_provider, provider  # noqa: F401 - fixtures
