import pytest

from ipcontrol.models import LicenseValidation
from tests.db import raises_integrity_error
from tests.factories import LicenseCollisionFactory, LicenseIpBindingFactory, LicenseValidationFactory

pytestmark = pytest.mark.django_db


def test_one_binding_per_license_and_machine():
    binding = LicenseIpBindingFactory(machine_id="fp-1")
    with raises_integrity_error():
        LicenseIpBindingFactory(license=binding.license, machine_id="fp-1")


def test_validation_of_an_unknown_key_has_no_license():
    row = LicenseValidation.objects.create(ip_address="203.0.113.9", result_code="NOT_FOUND")
    assert row.license_id is None and not row.is_valid
    assert LicenseValidationFactory().is_valid


def test_no_duplicate_open_collision_for_the_same_pair():
    collision = LicenseCollisionFactory()
    duplicate = dict(
        license=collision.license,
        ip_binding_a=collision.ip_binding_a,
        ip_binding_b=collision.ip_binding_b,
        collision_type=collision.collision_type,
    )
    with raises_integrity_error():
        LicenseCollisionFactory(**duplicate)
    collision.resolved_at = collision.detected_at
    collision.save()
    LicenseCollisionFactory(**duplicate)  # a new one may open once the old one is resolved


def test_no_duplicate_open_single_machine_collision():
    binding = LicenseIpBindingFactory()
    single = dict(license=binding.license, ip_binding_a=binding, ip_binding_b=None, collision_type="cloned_machine")
    LicenseCollisionFactory(**single)
    with raises_integrity_error():
        LicenseCollisionFactory(**single)
