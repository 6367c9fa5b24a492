"""Bad input gets a 4xx in the one error shape, never a 500."""

import pytest
from rest_framework.test import APIClient

from identity.models import User
from tests.factories import OrganizationFactory, ProductFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_nul_character_in_json_is_a_400_and_nothing_is_written():
    owner = UserFactory(organization=OrganizationFactory(), role=User.Role.OWNER)
    response = _client(owner).patch("/api/v1/organization", {"settings": {"country": "E\u0000S"}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    owner.organization.refresh_from_db()
    assert "\x00" not in str(owner.organization.settings)


def test_reusing_a_soft_deleted_unique_value_is_a_409_not_a_500():
    product = ProductFactory(slug="legacy-tool")
    product.soft_delete()
    body = {"name": "Legacy tool 2", "slug": "legacy-tool", "price": "10.00", "status": "draft"}
    response = _client(StaffUserFactory()).post("/api/v1/products", body, format="json")
    assert response.status_code in (400, 409)
    assert response.json()["error"]["code"] in ("conflict", "invalid")


def test_unknown_url_under_the_api_is_a_404():
    response = _client(StaffUserFactory()).get("/api/v1/members/not-a-uuid")
    assert response.status_code == 404


def test_a_value_the_database_cannot_hold_is_a_400():
    from django.db import DataError

    from celaest.errors import exception_handler

    response = exception_handler(DataError("time zone displacement out of range"), {})
    assert response.status_code == 400
    assert response.data == {
        "error": {"code": "invalid", "message": "A value in the request is out of the supported range.", "details": {}}
    }
