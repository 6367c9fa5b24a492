"""Where a request comes from: the caller's IP address, trusting ``X-Forwarded-For`` only when
the direct peer is one of the configured ``TRUSTED_PROXIES``."""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@lru_cache(maxsize=1)
def _trusted_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in settings.TRUSTED_PROXIES if cidr.strip())


@receiver(setting_changed)
def _reset_trusted(*, setting, **kwargs):
    if setting == "TRUSTED_PROXIES":
        _trusted_networks.cache_clear()


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address) -> bool:
    return any(address in network for network in _trusted_networks())


def client_ip(request) -> str | None:
    """The caller's IP. ``REMOTE_ADDR`` unless it is a trusted proxy; then ``X-Forwarded-For`` is
    read from the right, skipping trusted proxies, and the first untrusted address is the client
    (entries further left were written by the client itself and prove nothing). Worked out once
    per request: the request context and the view both ask on the hot license endpoints."""
    try:
        return request._client_ip
    except AttributeError:
        request._client_ip = address = _client_ip(request.META)
        return address


def _client_ip(meta) -> str | None:
    peer = _parse(meta.get("REMOTE_ADDR", ""))
    if peer is None:
        return None
    if not _trusted(peer):
        return str(peer)
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part for part in forwarded.split(",") if part.strip()]):
        address = _parse(hop)
        if address is None:
            break  # a garbled chain: trust nothing further left
        if not _trusted(address):
            return str(address)
        peer = address
    return str(peer)
