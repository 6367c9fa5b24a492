"""Reads for IP control: bindings, validation attempts and collisions, with what their API
representation needs joined in, and the detection thresholds from system config."""

from dataclasses import dataclass, fields

from django.db.models import QuerySet

from settings_app.models import SystemConfig

from .models import LicenseCollision, LicenseIpBinding, LicenseValidation

CONFIG_PREFIX = "ipcontrol."


@dataclass(frozen=True)
class IpControlConfig:
    """Thresholds of IP control, each read from ``system_config`` key ``ipcontrol.<name>``."""

    #: window in which more machines/IPs than max_machines count as over-limit use
    collision_window_minutes: int = 15
    #: window in which one fingerprint alternating between IPs counts as a cloned machine
    clone_window_minutes: int = 10
    #: IP switches of one fingerprint within the clone window that make it a clone (A→B→A = 2)
    clone_min_switches: int = 2
    #: window and number of deactivations after which a new activation is churn
    churn_window_minutes: int = 60
    churn_threshold: int = 3
    #: an open collision not seen again for this long is resolved automatically
    collision_quiet_minutes: int = 60
    #: machines not seen for this long are deactivated (their seat is freed)
    binding_stale_hours: int = 720
    #: lifetime of an offline certificate, capped by the license's own expiry
    certificate_ttl_hours: int = 168


def ipcontrol_config() -> IpControlConfig:
    """The thresholds, with defaults for keys missing from system config or of the wrong type."""
    defaults = IpControlConfig()
    names = {field.name for field in fields(IpControlConfig)}
    stored = dict(
        SystemConfig.objects.filter(key__in=[CONFIG_PREFIX + name for name in names]).values_list("key", "value")
    )
    values = {}
    for name in names:
        value = stored.get(CONFIG_PREFIX + name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            values[name] = value
        elif isinstance(value, str) and value.isdigit() and int(value) > 0:
            values[name] = int(value)
        else:
            values[name] = getattr(defaults, name)
    return IpControlConfig(**values)


def license_ip_binding_list() -> QuerySet[LicenseIpBinding]:
    return LicenseIpBinding.objects.all()


def license_validation_list() -> QuerySet[LicenseValidation]:
    return LicenseValidation.objects.all()


def license_collision_list() -> QuerySet[LicenseCollision]:
    return LicenseCollision.objects.select_related("ip_binding_a", "ip_binding_b")
