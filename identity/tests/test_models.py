import uuid

import pytest

from identity.models import Organization, User
from tests.db import raises_integrity_error
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_organization_slug_is_unique():
    OrganizationFactory(slug="acme")
    with raises_integrity_error():
        OrganizationFactory(slug="acme")


def test_organization_needs_at_least_one_user_seat():
    with raises_integrity_error():
        OrganizationFactory(max_users=0)


def test_user_email_is_unique():
    UserFactory(email="ada@example.com")
    with raises_integrity_error():
        UserFactory(email="ada@example.com")


def test_user_organization_must_exist():
    with raises_integrity_error():
        User.objects.create(email="ghost@example.com", organization_id=uuid.uuid4())


def test_soft_deleted_organization_is_hidden_but_kept():
    org = OrganizationFactory()
    org.soft_delete()
    assert not Organization.objects.filter(pk=org.pk).exists()
    assert Organization.all_objects.get(pk=org.pk).deleted_at is not None
    org.restore()
    assert Organization.objects.filter(pk=org.pk).exists()


def test_soft_deleted_user_cannot_log_in(client):
    user = UserFactory(email="gone@example.com")
    assert client.login(email="gone@example.com", password="correct-horse-battery-staple")
    client.logout()
    user.soft_delete()
    assert not User.objects.filter(pk=user.pk).exists()
    assert not client.login(email="gone@example.com", password="correct-horse-battery-staple")


def test_user_id_can_be_a_supabase_id():
    supabase_id = uuid.UUID("5f0c3a4e-8a43-4c55-9d1a-7a1e6a3f2b10")
    user = User.objects.create_user(email="sb@example.com", id=supabase_id)
    assert User.objects.get(email="sb@example.com").id == supabase_id
    assert user.role == User.Role.MEMBER
