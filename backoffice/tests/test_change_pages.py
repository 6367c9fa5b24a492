"""Change pages read like the lists: read-only dates and times humanised, the exact value on hover."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from celaest.admin_display import exact_time
from tests import factories as f

pytestmark = pytest.mark.django_db

#: a read-only value of the theme's change form that is a humanised time
READONLY_TIME = re.compile(
    r'<div class="readonly[^"]*">\s*<time class="cel-time" datetime="[^"]+" title="([^"]+)">([^<]+)</time>'
)


@pytest.fixture
def staff_client(client):
    client.force_login(f.StaffUserFactory())
    return client


def test_read_only_times_on_a_change_page_are_humanised_with_the_exact_value_on_hover(staff_client):
    suspended_at = timezone.now() - timedelta(days=3, hours=2)
    license = f.LicenseFactory(status="suspended", suspended_at=suspended_at)
    page = staff_client.get(reverse("admin:licensing_license_change", args=[license.pk]))
    assert page.status_code == 200
    shown = dict(READONLY_TIME.findall(page.text))
    assert shown[exact_time(suspended_at)].replace("\xa0", " ") == "3 days ago"
    assert exact_time(license.created_at) in shown  # every read-only date-time, not one


def test_read_only_times_of_an_inline_are_humanised(staff_client):
    binding = f.LicenseIpBindingFactory(last_seen=timezone.now() - timedelta(hours=5))
    page = staff_client.get(reverse("admin:licensing_license_change", args=[binding.license.pk]))
    assert f'title="{exact_time(binding.last_seen)}">5' in page.text


def test_other_read_only_values_are_left_as_the_theme_shows_them(staff_client):
    license = f.LicenseFactory(ai_requests_used=1234)
    page = staff_client.get(reverse("admin:licensing_license_change", args=[license.pk]))
    assert re.search(r'<div class="readonly[^"]*">1234</div>', page.text)
