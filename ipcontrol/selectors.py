"""Reads for IP control: bindings, validation attempts and collisions, with what their API
representation needs joined in."""

from django.db.models import QuerySet

from .models import LicenseCollision, LicenseIpBinding, LicenseValidation


def license_ip_binding_list() -> QuerySet[LicenseIpBinding]:
    return LicenseIpBinding.objects.all()


def license_validation_list() -> QuerySet[LicenseValidation]:
    return LicenseValidation.objects.all()


def license_collision_list() -> QuerySet[LicenseCollision]:
    return LicenseCollision.objects.select_related("ip_binding_a", "ip_binding_b")
