"""Where a webhook may be sent: the SSRF guard.

A webhook URL is customer input that the platform's own network then requests, so it must never
reach loopback, private, link-local (cloud metadata at 169.254.169.254), shared, multicast or
reserved addresses. The check runs when an endpoint is saved and again at every delivery, after
DNS resolution; the delivery then connects to the very address that was checked (so a DNS answer
that changes in between cannot redirect it), and redirects are never followed.

``WEBHOOK_ALLOWED_HOSTS`` (host names, IP addresses or CIDRs) lets development and tests target
local receivers; ``WEBHOOK_REQUIRE_HTTPS`` refuses plain http (on in production).
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from celaest.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookTargetRefused(InvalidInput):
    code = "webhook_url_refused"


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL and the address to connect to for it."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress | None  # None when the host did not resolve (only accepted on save)


def _allowlist() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    hosts, networks = set(), []
    for entry in settings.WEBHOOK_ALLOWED_HOSTS:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry)
    return hosts, networks


def address_is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address (an IPv4-mapped IPv6 address is
    judged by the IPv4 address it carries)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _address_allowed(address: IPAddress, host: str) -> bool:
    allowed_hosts, allowed_networks = _allowlist()
    if host in allowed_hosts or str(address) in allowed_hosts:
        return True
    if any(address in network for network in allowed_networks):
        return True
    return address_is_public(address)


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    addresses = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _refuse(message: str) -> WebhookTargetRefused:
    return WebhookTargetRefused(message, details={"url": [message]})


def webhook_target_check(url: str, *, require_resolution: bool) -> WebhookTarget:
    """Check ``url`` and return where to connect. Every address the host resolves to must be
    allowed (one bad answer is enough to refuse: the client might pick it). On save a host that
    does not resolve yet is accepted (``require_resolution=False``); a delivery needs an address."""
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        raise _refuse("A webhook URL must be an http(s) URL.") from None
    if scheme not in ("http", "https") or not host:
        raise _refuse("A webhook URL must be an http(s) URL.")
    if parts.username or parts.password:
        raise _refuse("A webhook URL cannot carry credentials.")
    if settings.WEBHOOK_REQUIRE_HTTPS and scheme != "https":
        raise _refuse("A webhook URL must use https.")
    port = port or (443 if scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not addresses:
        if require_resolution:
            raise _refuse(f"The webhook host {host} does not resolve.")
        return WebhookTarget(url=url, scheme=scheme, host=host, port=port, address=None)
    for address in addresses:
        if not _address_allowed(address, host):
            raise _refuse(
                f"The webhook host {host} resolves to {address}, a loopback, private, link-local or "
                "reserved address; webhooks may only target public addresses."
            )
    return WebhookTarget(url=url, scheme=scheme, host=host, port=port, address=addresses[0])
