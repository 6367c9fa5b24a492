import uuid
from datetime import date

import pytest

from licensing.models import License
from tests.db import raises_integrity_error
from tests.factories import LicenseFactory, LicenseUsageLogFactory, SubscriptionPlanFactory

pytestmark = pytest.mark.django_db


def test_plan_code_is_unique():
    SubscriptionPlanFactory(code="pro")
    with raises_integrity_error():
        SubscriptionPlanFactory(code="pro")


def test_plan_prices_cannot_be_negative():
    with raises_integrity_error():
        SubscriptionPlanFactory(price_monthly=-1)


def test_license_key_is_unique():
    LicenseFactory(license_key="CEL-SAME")
    with raises_integrity_error():
        LicenseFactory(license_key="CEL-SAME")


def test_license_plan_must_exist():
    existing = LicenseFactory()
    with raises_integrity_error():
        License.objects.create(organization=existing.organization, plan_id=uuid.uuid4(), license_key="CEL-X")


def test_ai_requests_used_cannot_go_negative():
    with raises_integrity_error():
        LicenseFactory(ai_requests_used=-1)


def test_one_usage_log_per_license_and_period():
    log = LicenseUsageLogFactory(period_start=date(2026, 11, 1), period_end=date(2026, 11, 30))
    with raises_integrity_error():
        LicenseUsageLogFactory(license=log.license, period_start=date(2026, 11, 1), period_end=date(2026, 11, 30))


def test_usage_log_period_must_be_ordered():
    with raises_integrity_error():
        LicenseUsageLogFactory(period_start=date(2026, 11, 30), period_end=date(2026, 11, 1))


def test_soft_deleted_license_is_hidden_from_default_manager():
    lic = LicenseFactory()
    lic.soft_delete()
    assert not License.objects.filter(pk=lic.pk).exists()
    assert License.all_objects.filter(pk=lic.pk).exists()
