"""Bad input gets a 4xx in the one error shape, never a 500."""

import json

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from celaest import error_views
from identity.models import User
from tests.clients import client_as
from tests.factories import OrganizationFactory, ProductFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_nul_character_in_json_is_a_400_and_nothing_is_written():
    owner = UserFactory(organization=OrganizationFactory(), role=User.Role.OWNER)
    response = client_as(owner).patch("/api/v1/organization", {"settings": {"country": "E\u0000S"}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    owner.organization.refresh_from_db()
    assert "\x00" not in str(owner.organization.settings)


def test_reusing_a_soft_deleted_unique_value_is_a_409_not_a_500():
    product = ProductFactory(slug="legacy-tool")
    product.soft_delete()
    body = {"name": "Legacy tool 2", "slug": "legacy-tool", "price": "10.00", "status": "draft"}
    response = client_as(StaffUserFactory()).post("/api/v1/products", body, format="json")
    assert response.status_code in (400, 409)
    assert response.json()["error"]["code"] in ("conflict", "invalid")


def test_unknown_url_under_the_api_is_a_404():
    response = client_as(StaffUserFactory()).get("/api/v1/members/not-a-uuid")
    assert response.status_code == 404


def test_a_value_the_database_cannot_hold_is_a_400():
    from django.db import DataError

    from celaest.errors import exception_handler

    response = exception_handler(DataError("time zone displacement out of range"), {})
    assert response.status_code == 400
    assert response.data == {
        "error": {"code": "invalid", "message": "A value in the request is out of the supported range.", "details": {}}
    }


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v2/licenses", "/api/nothing", "/v1/embeddingz"])
def test_unknown_paths_under_the_api_answer_json_in_the_error_shape(client, method, path):
    """Django's HTML page was the answer, in DEBUG and out of it; a POST had it after a CSRF page."""
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_api_paths_that_exist_with_a_slash_are_still_redirected_and_the_site_keeps_its_pages(client):
    assert client.get("/api/docs").headers["Location"] == "/api/docs/"
    assert client.get("/api/schema?format=json").headers["Location"] == "/api/schema/?format=json"
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_the_api_error_pages_django_renders_itself_are_json():
    api, site = RequestFactory().get("/api/v1/licenses"), RequestFactory().get("/admin/")
    for view, status in ((error_views.server_error, 500), (error_views.bad_request, 400)):
        response = view(api)
        assert response.status_code == status and "error" in json.loads(response.content)
        assert view(site)["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [
        ("/api/v1/licenses/validate", 17 * 1024, 413),  # the public license endpoints take a few KB
        ("/api/v1/licenses/checkout/", 17 * 1024, 413),
        ("/api/v1/licenses/validate", 15 * 1024, 400),  # under the cap: read, then refused as not JSON
        ("/api/v1/organization", 1024 * 1024 + 1, 413),  # every other API view: 1 MB
        ("/api/v1/tasks", 2 * 1024 * 1024, 401),  # a task's input text: up to 4 MB
        ("/v1/chat/completions", 8 * 1024 * 1024, 401),  # the gateway: images inline, up to 20 MB
        ("/v1/chat/completions", 21 * 1024 * 1024, 413),
    ],
)
def test_request_bodies_over_their_endpoints_cap_are_413_unread(path, size, status):
    response = APIClient().generic("POST", path, b"x" * size, content_type="application/json")
    assert response.status_code == status, response.content
    if status == 413:
        error = response.json()["error"]
        assert error["code"] == "request_too_large" and error["details"]["max_bytes"] < size


def test_a_declared_length_alone_is_refused_before_anything_is_read():
    response = APIClient().generic(
        "POST", "/api/v1/licenses/validate", b"{}", content_type="application/json", CONTENT_LENGTH=str(100 * 2**20)
    )
    assert response.status_code == 413
