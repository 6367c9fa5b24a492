"""Where a webhook may be sent: the SSRF guard.

A webhook URL is customer input that the platform's own network then requests, so it must never
reach loopback, private, link-local (cloud metadata at 169.254.169.254), shared, multicast or
reserved addresses. The check runs when an endpoint is saved and again at every delivery, after
DNS resolution; the delivery then connects to the very address that was checked (so a DNS answer
that changes in between cannot redirect it), and redirects are never followed.

An IPv6 address that carries an IPv4 address (IPv4-mapped and -compatible, SIIT, NAT64, 6to4,
Teredo, ISATAP) is judged by that IPv4 address too: Python's ``is_global`` says True for
``64:ff9b::a9fe:a9fe``, yet a NAT64 gateway delivers it to 169.254.169.254. Host spellings that
name an address without looking like one (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``:
the C resolver reads them all as 127.0.0.1), IPv6 zone ids, credentials and characters that URL
parsers disagree on (a backslash, whitespace) are refused outright rather than interpreted.

``WEBHOOK_ALLOWED_HOSTS`` (host names, IP addresses or CIDRs) lets development and tests target
local receivers; ``WEBHOOK_REQUIRE_HTTPS`` refuses plain http (on in production).
"""

import ipaddress
import re
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


#: Local-use NAT64 prefix (RFC 8215): never public, and where it carries the IPv4 address depends on
#: the operator's prefix length, so it cannot be judged by its content.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated "::a.b.c.d" (RFC 4291 2.5.5.1)
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT "::ffff:0:a.b.c.d" (RFC 2765)
_ISATAP_INTERFACE_IDS = (0x00005EFE, 0x02005EFE)  # the high half of an ISATAP interface id (RFC 5214)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, which the network may end up delivering to."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    carried = []
    if address.ipv4_mapped is not None:
        carried.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        carried.append(address.sixtofour)
    if address.teredo is not None:
        carried.extend(address.teredo)  # the Teredo server and the client's (de-obfuscated) address
    if address in _NAT64_WELL_KNOWN or address in _IPV4_COMPATIBLE or address in _IPV4_TRANSLATED:
        carried.append(low32)
    if ((int(address) >> 32) & 0xFFFFFFFF) in _ISATAP_INTERFACE_IDS:
        carried.append(low32)
    return carried


def address_is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address, and so is every IPv4 address an
    IPv6 address carries (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo, ISATAP)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id or address in _NAT64_LOCAL:
            return False
        if address.ipv4_mapped is not None:
            # Judged as the IPv4 address alone: the socket layer connects to exactly that.
            return address_is_public(address.ipv4_mapped)
        if not all(address_is_public(ipv4) for ipv4 in _embedded_ipv4(address)):
            return False
    return address.is_global and not address.is_multicast


def _address_allowed(address: IPAddress, host: str) -> bool:
    allowed_hosts, allowed_networks = _allowlist()
    if host in allowed_hosts or str(address) in allowed_hosts:
        return True
    if any(address in network for network in allowed_networks):
        return True
    return address_is_public(address)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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


#: A host that "ends in a number" is an IPv4 address to URL parsers and to the C resolver (WHATWG
#: URL, inet_aton), whatever its spelling: only the dotted-decimal one is taken.
_ENDS_IN_NUMBER = re.compile(r"(?:^|\.)(?:[0-9]+|0x[0-9a-f]*)$")
#: Characters on which URL parsers disagree (``\\`` is ``/`` to browsers and some clients) or that
#: no valid URL holds raw.
_AMBIGUOUS_CHARACTERS = re.compile(r"[\\\s\x00-\x1f\x7f]")

ALLOW_HINT = (
    "Webhooks may only target public addresses. To deliver to a local or private receiver (in "
    "development or on a private network), the platform operator adds its host name, IP address or "
    "network (CIDR) to the WEBHOOK_ALLOWED_HOSTS setting."
)


def _refuse(message: str, *, hint: str | None = None) -> WebhookTargetRefused:
    details: dict = {"url": [message]}
    if hint:
        details["hint"] = hint
    return WebhookTargetRefused(message, details=details)


def _canonical_host(host: str) -> str:
    """The host without the trailing dot of a fully qualified name, refusing spellings that would
    be read as another address than they appear to be."""
    if "%" in host:
        raise _refuse("A webhook URL cannot carry an IPv6 zone id.")
    if not host.isascii() and ":" not in host:
        # As the resolver will see it: IDNA folds full-width digits and ideographic dots, so
        # "１２７。0。0。1" is 127.0.0.1 to it and must be to the checks below too.
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise _refuse("The webhook URL's host is not a valid domain name.") from None
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    if not host or ".." in host:
        raise _refuse("A webhook URL must name a host.")
    if ":" not in host and _ENDS_IN_NUMBER.search(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _refuse("Write an IPv4 address in a webhook URL in dotted-decimal form (like 203.0.113.7).") from None
    return host


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
    if _AMBIGUOUS_CHARACTERS.search(url):
        raise _refuse("A webhook URL cannot contain spaces, control characters or backslashes.")
    if "@" in parts.netloc:
        raise _refuse("A webhook URL cannot carry credentials.")
    host = _canonical_host(host)
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
            # The address a name resolves to is not repeated: that would let a customer map the
            # platform's internal DNS.
            subject = (
                f"The address {host}" if _is_literal(host) else f"The webhook host {host} resolves to an address that"
            )
            raise _refuse(
                f"{subject} is loopback, private, link-local, reserved or otherwise not public.", hint=ALLOW_HINT
            )
    return WebhookTarget(url=url, scheme=scheme, host=host, port=port, address=addresses[0])
