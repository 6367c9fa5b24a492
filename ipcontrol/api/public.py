"""The public license endpoints that installed software calls with its license key — no user
token: validate, activate, deactivate, heartbeat, checkout (offline certificate) and the public
key that verifies certificates. Rate-limited per caller IP and per key; malformed requests get a 400,
well-formed ones a 200 whose ``code`` says what happened."""

import json

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.exceptions import MethodNotAllowed, UnsupportedMediaType, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from celaest.api.parsers import StrictJSONParser
from celaest.errors import LimitExceeded, exception_handler
from celaest.net import client_ip
from celaest.ratelimit import GuardedPush, rate_limits_hit_fetching
from ipcontrol import offline, services
from ipcontrol.buffer import validation_buffer_shared, validation_rows_pushed
from ipcontrol.certificates import public_keys_document
from ipcontrol.snapshots import (
    LicenseSnapshot,
    license_key_hash,
    snapshot_answers,
    snapshot_copy,
    snapshot_fetch_keys,
    snapshot_from_fetched,
)
from licensing.services import license_key_normalize

from .serializers import (
    LicenseCheckoutResponseSerializer,
    LicenseCheckResponseSerializer,
    LicenseFileResponseSerializer,
    LicenseValidateRequestSerializer,
    MachineRequestSerializer,
    PublicKeysSerializer,
    check_request_parse,
)

_TOO_MANY = OpenApiResponse(description="Too many attempts from this IP or for this key (error code rate_limited).")
_MALFORMED = OpenApiResponse(description="Malformed request (error code invalid).")


def _limit(
    *, ip_address: str | None, key_hash: str | None, push: GuardedPush | None = None
) -> tuple[LicenseSnapshot | None, bool]:
    """One hit per caller IP and (for a well-formed request, by ``_key_hash``) per key, counted
    in one round trip that also reads the key's license snapshot and makes ``push`` if its guard
    holds. Returns the snapshot and whether the push was made."""
    hits = [(f"license-ip:{ip_address or 'unknown'}", settings.LICENSE_VALIDATE_RATE_PER_IP)]
    fetch = []
    if key_hash:
        hits.append((f"license-key:{key_hash}", settings.LICENSE_VALIDATE_RATE_PER_KEY))
        fetch = snapshot_fetch_keys(key_hash)
    decision, fetched, pushed = rate_limits_hit_fetching(hits=hits, window_seconds=60, fetch=fetch, push=push)
    if not decision.allowed:
        raise LimitExceeded(
            "Too many license requests; retry later.", code="rate_limited", retry_after=decision.retry_after
        )
    if pushed:
        validation_rows_pushed(pushed, 1)
        return None, True
    return (snapshot_from_fetched(key_hash, fetched) if key_hash else None), False


def _key_hash(key: str | None) -> str | None:
    normalized = license_key_normalize(key) if key is not None else ""
    return license_key_hash(normalized) if normalized else None


def _json_response(response: Response) -> Response:
    """Render a DRF ``Response`` built outside DRF's dispatch (the errors of the lean views)."""
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = "application/json"
    response.renderer_context = {}
    return response.render()


class PublicLicenseView(APIView):
    """No authentication (the license key is the credential), rate limits instead.

    These endpoints are what installed software calls, many times a day: the hottest path of the
    API. ``dispatch`` serves them without DRF's request wrapping, authentication, content
    negotiation and renderers, which cost more than the validation itself; DRF still documents
    them (the schema reads ``post``) and its exception handler shapes every error.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    fingerprint_required = False
    #: a key, a fingerprint, a hostname and a nonce: a few hundred bytes
    max_request_bytes = 16 * 1024

    def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs, self.request = args, kwargs, request
        try:
            if request.method != "POST":
                raise MethodNotAllowed(request.method)
            if request.content_type != "application/json":
                raise UnsupportedMediaType(request.content_type)
            return self.post(request)
        except Exception as exc:
            response = exception_handler(exc, {"view": self, "request": request})
            if response is None:
                raise
            if isinstance(exc, MethodNotAllowed):
                response["Allow"] = "POST"
            return _json_response(response)

    def answer(self, body: dict) -> HttpResponse:
        return HttpResponse(
            json.dumps(body, ensure_ascii=False, separators=(",", ":")), content_type="application/json"
        )

    def _parse(self, request) -> tuple[dict, str | None]:
        ip_address = client_ip(request)
        payload = StrictJSONParser().parse(request, parser_context={})
        data, errors = check_request_parse(payload, fingerprint_required=self.fingerprint_required)
        if errors:
            _limit(ip_address=ip_address, key_hash=None)  # malformed floods count against the IP too
            raise ValidationError(errors)
        return data, ip_address


def _check_schema(summary: str, request_serializer) -> dict:
    return {
        "post": extend_schema(
            summary=summary,
            auth=[],
            request=request_serializer,
            responses={200: LicenseCheckResponseSerializer, 400: _MALFORMED, 429: _TOO_MANY},
        )
    }


class LicenseCheckView(PublicLicenseView):
    """Runs ``service`` on the request's key and machine and answers its ``LicenseCheck``."""

    service = None

    def post(self, request):
        data, ip_address = self._parse(request)
        _limit(ip_address=ip_address, key_hash=_key_hash(data["key"]))
        check = type(self).service(
            key=data["key"], fingerprint=data["fingerprint"], hostname=data["hostname"], ip_address=ip_address
        )
        return self.answer(services.license_check_body(check, nonce=data["nonce"]))


class LeanCheckView(PublicLicenseView):
    """An endpoint answered in one Redis round trip when this process holds a copy of the
    license's snapshot: the answer is worked out from the copy first (``attempt``: the service's
    ``*_attempt`` function), and its row is pushed with the rate limits only if the copy is still
    current (else ``service`` runs on the snapshot read meanwhile)."""

    attempt = None
    service = None
    #: the request fields the services take besides the machine (``entitlements``)
    extra_fields: tuple[str, ...] = ()

    def post(self, request):
        data, ip_address = self._parse(request)
        machine = {"fingerprint": data["fingerprint"], "hostname": data["hostname"], "ip_address": ip_address}
        machine.update({name: data[name] for name in self.extra_fields})
        key_hash, buffer_key = _key_hash(data["key"]), validation_buffer_shared()
        copy = snapshot_copy(key_hash) if key_hash and buffer_key else None
        push = check = None
        if copy is not None and snapshot_answers(copy[1], data["fingerprint"]):
            check, row = type(self).attempt(found=copy[1], **machine)
            push = GuardedPush(key=buffer_key, value=json.dumps(row), guard=copy[0], guard_reads=2)
        snapshot, pushed = _limit(ip_address=ip_address, key_hash=key_hash, push=push)
        if not pushed:
            check = type(self).service(key=data["key"], snapshot=snapshot, **machine)
        return self.answer(services.license_check_body(check, nonce=data["nonce"]))


@extend_schema_view(**_check_schema("Validate a license key on a machine (public)", LicenseValidateRequestSerializer))
class LicenseValidateView(LeanCheckView):
    """Whether the license may run on this machine now (and holds the entitlements asked for).
    Every attempt is recorded."""

    attempt = services.license_validation_attempt
    service = services.license_validate
    extra_fields = ("entitlements",)


@extend_schema_view(
    **_check_schema("Keep a machine's lease alive: a heartbeat (public, by license key)", MachineRequestSerializer)
)
class LicenseHeartbeatView(LeanCheckView):
    """ALIVE (or OVERAGE) with the renewed lease; a machine released for a lapsed lease is
    re-admitted if a seat is free (else TOO_MANY_MACHINES). As lean as validation."""

    fingerprint_required = True
    attempt = services.license_heartbeat_attempt
    service = services.license_heartbeat


@extend_schema_view(
    **_check_schema("Activate a machine on a license (public, by license key)", MachineRequestSerializer)
)
class LicenseActivateView(LicenseCheckView):
    """Take a seat for this machine (idempotent); TOO_MANY_MACHINES when all are taken."""

    fingerprint_required = True
    service = services.license_activate


@extend_schema_view(
    **_check_schema(
        "Deactivate a machine on a license, freeing its seat (public, by license key)", MachineRequestSerializer
    )
)
class LicenseDeactivateView(LicenseCheckView):
    """Give this machine's seat back."""

    fingerprint_required = True
    service = services.license_deactivate


class LicenseCheckoutView(PublicLicenseView):
    fingerprint_required = True
    #: validates and issues the offline document, and the answer's field that carries it
    checkout = staticmethod(services.license_checkout)
    document_field = "certificate"

    @extend_schema(
        summary="Check out a signed offline certificate for an activated machine (public, by license key)",
        auth=[],
        request=MachineRequestSerializer,
        responses={200: LicenseCheckoutResponseSerializer, 400: _MALFORMED, 429: _TOO_MANY},
    )
    def post(self, request):
        data, ip_address = self._parse(request)
        snapshot, _ = _limit(ip_address=ip_address, key_hash=_key_hash(data["key"]))
        check, document = self.checkout(
            key=data["key"],
            fingerprint=data["fingerprint"],
            hostname=data["hostname"],
            ip_address=ip_address,
            snapshot=snapshot,
        )
        body = services.license_check_body(check, nonce=data["nonce"])
        return self.answer({**body, self.document_field: document})


@extend_schema_view(
    post=extend_schema(
        summary="Check out an encrypted offline license file for an activated machine (public, by license key)",
        auth=[],
        request=MachineRequestSerializer,
        responses={200: LicenseFileResponseSerializer, 400: _MALFORMED, 429: _TOO_MANY},
    )
)
class LicenseFileView(LicenseCheckoutView):
    """The certificate's claims encrypted with a key derived from the license key (AES-GCM), then
    signed: for software that must not expose its entitlements (``ipcontrol.offline``)."""

    checkout = staticmethod(offline.license_file_checkout)
    document_field = "license_file"


class LicensePublicKeyView(APIView):
    """The Ed25519 public keys that verify offline certificates (current one first)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Public keys verifying offline license certificates", auth=[], responses=PublicKeysSerializer
    )
    def get(self, request):
        return Response(public_keys_document())
