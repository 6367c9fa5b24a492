"""API clients for tests: one place for the client signed in as a user."""

from rest_framework.test import APIClient


def client_as(user=None) -> APIClient:
    """An API client authenticated as ``user`` (anonymous without one)."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client
