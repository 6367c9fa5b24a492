"""The admin sidebar: grouped by what staff do, built from the registered models."""

import pytest
from django.contrib import admin
from django.urls import reverse

from backoffice.navigation import AREAS, sidebar_navigation
from identity.models import User
from tests.factories import LicenseCollisionFactory

pytestmark = pytest.mark.django_db


def test_every_registered_model_is_in_an_area_of_the_sidebar(rf):
    request = rf.get("/admin/")
    request.user = User.objects.create_superuser(email="nav@celaest.invalid", password="not-used-here-1")
    groups = sidebar_navigation(request)
    titles = [group.get("title") for group in groups[1:]]
    assert titles == [title for title, _icon, _labels in AREAS]  # customers, licensing, AI, commerce, platform
    links = {item["link"] for group in groups for item in group["items"]}
    for model in admin.site._registry:
        assert reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") in links, model
    customers = next(group for group in groups if group.get("title") == "Customers")
    assert reverse("admin:identity_organization_changelist") in {item["link"] for item in customers["items"]}


def test_customers_get_no_sidebar(rf):
    request = rf.get("/admin/")
    request.user = User.objects.create_user(email="customer@celaest.invalid", password="not-used-here-1")
    assert [group.get("title") for group in sidebar_navigation(request)] == [None]  # the dashboard link only


def test_open_collisions_show_their_count(rf):
    LicenseCollisionFactory()
    LicenseCollisionFactory()
    request = rf.get("/admin/")
    request.user = User.objects.create_superuser(email="nav@celaest.invalid", password="not-used-here-1")
    items = [item for group in sidebar_navigation(request) for item in group["items"]]
    collisions = next(item for item in items if item["link"] == reverse("admin:ipcontrol_licensecollision_changelist"))
    assert (collisions["badge"], collisions["badge_variant"]) == ("2", "danger")
    webhooks = next(item for item in items if item["link"] == reverse("admin:settings_app_webhook_changelist"))
    assert "badge" not in webhooks
