"""Routers for ``/api/v1/``: URLs without a trailing slash, and the same answer with one (no
redirect that would drop a POST body)."""

from rest_framework.routers import SimpleRouter


class ApiRouter(SimpleRouter):
    def __init__(self):
        super().__init__(trailing_slash=False)
        self.trailing_slash = "/?"
