"""The public license endpoints: every result code, malformed input, rate limits, the caller's
IP, and that every attempt lands in license_validations."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from ipcontrol.buffer import LAST_SEEN_STEP, validation_buffer_flush, validation_buffer_length
from ipcontrol.models import LicenseIpBinding, LicenseValidation
from licensing.models import License
from tests import factories as f

pytestmark = pytest.mark.django_db

VALIDATE, ACTIVATE, DEACTIVATE = "/api/v1/licenses/validate", "/api/v1/licenses/activate", "/api/v1/licenses/deactivate"


def _post(url, payload, client=None, **extra):
    return (client or APIClient()).post(url, payload, format="json", REMOTE_ADDR="203.0.113.5", **extra)


def _validate(key, fingerprint="fp-1", **extra):
    response = _post(VALIDATE, {"key": key, "fingerprint": fingerprint, "hostname": "ws", "nonce": "n-1"}, **extra)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def license():
    plan = f.SubscriptionPlanFactory(limits={"max_machines": 2, "max_users": 5})
    return f.LicenseFactory(plan=plan, license_key="CEL-7K3Q0-9MZ2D-4T8VW-0HBNC-Q5R1E-JA6YP")


def _activate(license, fingerprint, ip="203.0.113.5"):
    response = APIClient().post(
        ACTIVATE, {"key": license.license_key, "fingerprint": fingerprint, "hostname": "ws"}, format="json",
        REMOTE_ADDR=ip,
    )  # fmt: skip
    assert response.status_code == 200, response.content
    return response.json()


def test_valid_after_activation_with_license_details(license):
    assert _validate(license.license_key)["code"] == "NO_MACHINE"
    activated = _activate(license, "fp-1")
    assert (activated["valid"], activated["code"]) == (True, "ACTIVATED")
    body = _validate(license.license_key.lower().replace("-", "-"))
    assert body["valid"] is True and body["code"] == "VALID" and body["nonce"] == "n-1"
    assert body["license"]["id"] == str(license.pk)
    assert body["license"]["max_machines"] == 2 and body["license"]["active_machines"] == 1
    assert body["license"]["plan"] == license.plan.code


def test_key_typed_by_hand_is_accepted(license):
    _activate(license, "fp-1")
    assert _validate(" " + license.license_key.lower().replace("0", "o") + " ")["code"] == "VALID"


def test_unknown_key_reveals_nothing(license):
    body = _validate("CEL-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA")
    assert body == {"valid": False, "code": "NOT_FOUND", "detail": "No license matches this key.", "nonce": "n-1",
                    "license": None}  # fmt: skip
    assert _validate("not even a key")["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"status": "suspended"}, "SUSPENDED"),
        ({"status": "revoked"}, "REVOKED"),
        ({"status": "expired"}, "EXPIRED"),
        # Expired by time: the beat job has not run, the status still says active.
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, "EXPIRED"),
    ],
)
def test_license_state_codes(license, changes, code):
    _activate(license, "fp-1")
    License.objects.filter(pk=license.pk).update(**changes)
    body = _validate(license.license_key)
    assert (body["valid"], body["code"]) == (False, code)
    assert body["license"]["status"] == License.objects.get(pk=license.pk).status


def test_deleted_license_is_not_found(license):
    license.soft_delete()
    assert _validate(license.license_key)["code"] == "NOT_FOUND"


def test_no_machine_for_unknown_or_deactivated_fingerprint(license):
    _activate(license, "fp-1")
    assert _validate(license.license_key, fingerprint="fp-other")["code"] == "NO_MACHINE"
    assert _validate(license.license_key, fingerprint="")["code"] == "NO_MACHINE"
    response = _post(DEACTIVATE, {"key": license.license_key, "fingerprint": "fp-1"})
    assert response.json()["code"] == "DEACTIVATED"
    assert _validate(license.license_key)["code"] == "NO_MACHINE"
    assert _post(DEACTIVATE, {"key": license.license_key, "fingerprint": "fp-1"}).json()["code"] == "NO_MACHINE"


def test_too_many_machines_on_activation_and_after_the_limit_is_lowered(license):
    assert _activate(license, "fp-1")["code"] == "ACTIVATED"
    assert _activate(license, "fp-2")["code"] == "ACTIVATED"
    assert _activate(license, "fp-1")["code"] == "ACTIVATED"  # idempotent: takes no new seat
    refused = _activate(license, "fp-3")
    assert (refused["valid"], refused["code"]) == (False, "TOO_MANY_MACHINES")
    assert LicenseIpBinding.objects.filter(license=license, is_active=True).count() == 2
    # Lowered to one seat: the earliest activated machine keeps it.
    License.objects.filter(pk=license.pk).update(custom_limits={"max_machines": 1})
    assert _validate(license.license_key, fingerprint="fp-1")["code"] == "VALID"
    assert _validate(license.license_key, fingerprint="fp-2")["code"] == "TOO_MANY_MACHINES"


def test_activation_refused_for_unusable_licenses(license):
    License.objects.filter(pk=license.pk).update(status="suspended")
    assert _activate(license, "fp-1")["code"] == "SUSPENDED"
    assert not LicenseIpBinding.objects.exists()
    assert _post(ACTIVATE, {"key": "CEL-NOPE", "fingerprint": "x"}).json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("url", "payload"),
    [
        (VALIDATE, {}),
        (VALIDATE, {"key": ""}),
        (VALIDATE, {"key": 12}),
        (VALIDATE, {"key": "x" * 101}),
        (VALIDATE, {"key": "k", "fingerprint": ["a"]}),
        (VALIDATE, {"key": "k", "nonce": "n" * 129}),
        (ACTIVATE, {"key": "k"}),
        (DEACTIVATE, {"key": "k", "fingerprint": ""}),
    ],
)
def test_malformed_requests_are_400(url, payload):
    response = _post(url, payload)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_non_json_body_is_400():
    response = APIClient().post(VALIDATE, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    nul = APIClient().post(VALIDATE, '{"key": "a\\u0000b"}', content_type="application/json")
    assert nul.status_code == 400 and nul.json()["error"]["code"] == "malformed_request"


@pytest.mark.parametrize("url", [VALIDATE, ACTIVATE, DEACTIVATE, "/api/v1/licenses/checkout"])
@pytest.mark.parametrize(
    "body",
    [
        '{"key": "CEL-NOPE", "fingerprint": "f\\udfff"}',  # buffered at once before: it stopped the flush
        '{"key": "CEL-NOPE", "fingerprint": "fp", "hostname": "\\ud800"}',
        '{"key": "\\ud800CEL"}',
        '{"key": "CEL-NOPE", "fingerprint": "fp", "\\udc00": 1}',
        '{"key": "CEL-NOPE", "fingerprint": "fp", "extra": ' + "[" * 400 + "]" * 400 + "}",
        "[" * 5000 + "]" * 5000,  # past the json module's own recursion limit
    ],
    ids=["fingerprint-surrogate", "hostname-surrogate", "key-surrogate", "name-surrogate", "deep-400", "deep-5000"],
)
def test_lone_surrogates_and_deep_json_are_400_and_never_recorded(license, url, body):
    response = APIClient().post(url, body, content_type="application/json", REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed_request"
    assert validation_buffer_flush() == 0 and not LicenseValidation.objects.exists()


@pytest.mark.parametrize("url", [VALIDATE, ACTIVATE, DEACTIVATE, "/api/v1/licenses/checkout"])
def test_only_json_posts_are_served_with_the_one_error_shape(url):
    """These views skip DRF's dispatch for speed; their refusals keep the API's shape and headers."""
    got = APIClient().get(url)
    assert got.status_code == 405 and got["Allow"] == "POST"
    assert got.json()["error"]["code"] == "method_not_allowed"
    form = APIClient().post(url, "key=k", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"
    ok = _post(url, {"key": "CEL-NOPE", "fingerprint": "fp"})
    assert ok.status_code == 200 and ok["Content-Type"] == "application/json"
    assert ok["X-Content-Type-Options"] == "nosniff" and ok.json()["code"] == "NOT_FOUND"
    # Served by LeanPathMiddleware: the middleware below it (content policy included) never ran.
    assert "Content-Security-Policy" not in ok and "Content-Security-Policy" in APIClient().get("/health/live")


@pytest.mark.parametrize("url", [VALIDATE, VALIDATE + "/", ACTIVATE + "/"])
def test_lean_paths_are_served_alike_with_or_without_a_trailing_slash(license, url):
    """LeanPathMiddleware resolves each path once; every request still reaches its own view."""
    for _ in range(2):
        response = _post(url, {"key": license.license_key, "fingerprint": "fp-1"})
        assert response.status_code == 200 and "Content-Security-Policy" not in response
    expected = "ACTIVATED" if url.startswith(ACTIVATE) else "NO_MACHINE"
    assert response.json()["code"] == expected
    assert _post(VALIDATE + "//", {"key": license.license_key}).status_code == 404


def test_no_token_needed_and_a_session_changes_nothing(license):
    client = APIClient()
    client.force_authenticate(f.UserFactory())
    _activate(license, "fp-1")
    assert _post(VALIDATE, {"key": license.license_key, "fingerprint": "fp-1"}, client=client).json()["code"] == "VALID"


@override_settings(LICENSE_VALIDATE_RATE_PER_IP=3, LICENSE_VALIDATE_RATE_PER_KEY=1000)
def test_rate_limited_per_ip(license):
    for _ in range(3):
        assert _post(VALIDATE, {"key": license.license_key}).status_code == 200
    response = _post(VALIDATE, {"key": license.license_key})
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    # Another caller is not affected.
    other = APIClient().post(VALIDATE, {"key": license.license_key}, format="json", REMOTE_ADDR="198.51.100.9")
    assert other.status_code == 200


@override_settings(LICENSE_VALIDATE_RATE_PER_IP=1000, LICENSE_VALIDATE_RATE_PER_KEY=2)
def test_rate_limited_per_key(license):
    for n in range(2):
        assert APIClient().post(VALIDATE, {"key": license.license_key}, format="json",
                                REMOTE_ADDR=f"198.51.100.{n}").status_code == 200  # fmt: skip
    response = APIClient().post(VALIDATE, {"key": license.license_key}, format="json", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 429
    assert _post(VALIDATE, {"key": "CEL-OTHER"}).status_code == 200


def test_forwarded_for_is_ignored_unless_from_a_trusted_proxy(license):
    _activate(license, "fp-1")
    payload = {"key": license.license_key, "fingerprint": "fp-1"}
    APIClient().post(VALIDATE, payload, format="json", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="1.2.3.4")
    with override_settings(TRUSTED_PROXIES=["10.0.0.0/8"]):
        APIClient().post(VALIDATE, payload, format="json", REMOTE_ADDR="10.1.2.3",
                         HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.44, 10.9.9.9")  # fmt: skip
    validation_buffer_flush()
    ips = list(
        LicenseValidation.objects.filter(result_code="VALID")
        .order_by("created_at")
        .values_list("ip_address", flat=True)
    )
    assert ips == ["198.51.100.1", "192.0.2.44"]


def test_every_attempt_is_recorded_with_binding_ip_and_reason(license):
    _activate(license, "fp-1")
    _validate(license.license_key)
    _validate(license.license_key, fingerprint="fp-x")
    _validate("CEL-UNKNOWN")
    assert validation_buffer_length() == 3
    assert validation_buffer_flush() == 3
    assert validation_buffer_length() == 0
    rows = {row.result_code: row for row in LicenseValidation.objects.all()}
    assert set(rows) == {"ACTIVATED", "VALID", "NO_MACHINE", "NOT_FOUND"}
    valid = rows["VALID"]
    assert valid.is_valid and valid.ip_binding.machine_id == "fp-1" and valid.ip_address == "203.0.113.5"
    assert valid.organization_id == license.organization_id and valid.hostname == "ws"
    assert rows["NO_MACHINE"].failure_reason == "The license is not activated on this machine."
    assert rows["NOT_FOUND"].license_id is None and rows["NOT_FOUND"].organization_id is None


def test_validation_refreshes_last_seen_and_ip(license):
    _activate(license, "fp-1")
    binding = LicenseIpBinding.objects.get()
    LicenseIpBinding.objects.filter(pk=binding.pk).update(last_seen=timezone.now() - timedelta(days=2))
    APIClient().post(VALIDATE, {"key": license.license_key, "fingerprint": "fp-1"}, format="json",
                     REMOTE_ADDR="192.0.2.99")  # fmt: skip
    validation_buffer_flush()
    binding.refresh_from_db()
    assert binding.ip_address == "192.0.2.99"
    assert timezone.now() - binding.last_seen < timedelta(seconds=30)


def test_last_seen_moves_in_steps_unless_the_ip_changes(license):
    """A machine validating every few seconds does not rewrite its binding on every flush."""
    _activate(license, "fp-1")
    binding = LicenseIpBinding.objects.get()
    recent = timezone.now() - timedelta(seconds=20)
    LicenseIpBinding.objects.filter(pk=binding.pk).update(last_seen=recent, ip_address="192.0.2.7")

    def validate_from(ip):
        APIClient().post(VALIDATE, {"key": license.license_key, "fingerprint": "fp-1"}, format="json",
                         REMOTE_ADDR=ip)  # fmt: skip
        validation_buffer_flush()
        binding.refresh_from_db()

    validate_from("192.0.2.7")
    assert binding.last_seen == recent  # seen 20 s ago, same IP: left alone
    validate_from("192.0.2.8")
    assert binding.ip_address == "192.0.2.8" and binding.last_seen > recent  # another IP: at once
    LicenseIpBinding.objects.filter(pk=binding.pk).update(last_seen=timezone.now() - LAST_SEEN_STEP * 2)
    validate_from("192.0.2.8")
    assert timezone.now() - binding.last_seen < timedelta(seconds=30)  # a step old: refreshed


def test_validation_rows_get_time_ordered_ids(license):
    for _ in range(3):
        _validate("CEL-UNKNOWN")
    validation_buffer_flush()
    ids = list(LicenseValidation.objects.order_by("created_at").values_list("id", flat=True))
    assert len(ids) == 3 and all(row_id.version == 7 for row_id in ids)
    assert [row_id.int >> 80 for row_id in ids] == sorted(row_id.int >> 80 for row_id in ids)


def test_without_redis_rows_are_written_synchronously(license):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        _validate("CEL-UNKNOWN")
    assert LicenseValidation.objects.filter(result_code="NOT_FOUND").count() == 1


def test_replayed_buffer_adds_no_duplicate(license):
    import json

    from ipcontrol import buffer

    _validate("CEL-UNKNOWN")
    client = buffer._redis()
    raw = client.lrange(buffer.BUFFER_KEY, 0, -1)
    client.rpush(buffer.BUFFER_KEY, *raw)  # the same rows again, as after a crash before DEL
    assert validation_buffer_flush() == 2
    assert LicenseValidation.objects.filter(id=json.loads(raw[0])["id"]).count() == 1


def test_orphaned_buffer_of_a_dead_flush_is_adopted(license):
    import time

    from ipcontrol import buffer

    _validate("CEL-UNKNOWN")
    client = buffer._redis()
    stale = f"{buffer.TAKEN_PREFIX}{int(time.time()) - buffer.ORPHAN_AFTER_SECONDS - 5}:dead"
    client.rename(buffer.BUFFER_KEY, stale)
    assert validation_buffer_flush() == 1
    assert not client.exists(stale)
    assert LicenseValidation.objects.count() == 1


def test_orphans_are_looked_for_once_a_minute(license):
    """Finding orphans scans the whole keyspace: one flush a minute does it, the others only drain."""
    import time

    from ipcontrol import buffer

    validation_buffer_flush()
    _validate("CEL-UNKNOWN")
    client = buffer._redis()
    stale = f"{buffer.TAKEN_PREFIX}{int(time.time()) - buffer.ORPHAN_AFTER_SECONDS - 5}:dead"
    client.rename(buffer.BUFFER_KEY, stale)
    _validate("CEL-UNKNOWN")
    assert validation_buffer_flush() == 1 and client.exists(stale)
    assert 0 < client.ttl(buffer.ORPHAN_SCAN_KEY) <= buffer.ORPHAN_SCAN_EVERY_SECONDS
    client.delete(buffer.ORPHAN_SCAN_KEY)  # a minute later
    assert validation_buffer_flush() == 1 and not client.exists(stale)
    assert LicenseValidation.objects.count() == 2


def test_a_row_that_cannot_be_stored_is_set_apart_and_every_other_row_is_written(license):
    """A row the database refuses (one that slipped past the parser, or written by an older
    release) used to fail the whole flush, again at every retry and as an orphan: the rows behind
    it never reached the table. Now it alone goes to the dead-letter list, with a system event."""
    import json

    from audit.models import SystemEvent
    from ipcontrol import buffer

    _activate(license, "fp-1")
    validation_buffer_flush()
    stored = LicenseValidation.objects.count()
    _validate(license.license_key, fingerprint="fp-1")
    client = buffer._redis()
    good = [json.loads(raw) for raw in client.lrange(buffer.BUFFER_KEY, 0, -1)]
    template = good[0]
    bad = [
        json.dumps({**template, "id": "0190a6f0-0000-7000-8000-000000000001", "hostname": "h\udfff"}),
        json.dumps({**template, "id": "0190a6f0-0000-7000-8000-000000000002", "ip_address": "not-an-ip"}),
        json.dumps({key: value for key, value in template.items() if key != "result_code"}),
        "{not json",
    ]
    client.delete(buffer.BUFFER_KEY)
    client.rpush(buffer.BUFFER_KEY, bad[0], json.dumps(good[0]), *bad[1:])
    for _ in range(5):
        _validate(license.license_key, fingerprint="fp-1")

    assert validation_buffer_flush() == 10
    assert LicenseValidation.objects.count() == stored + 6
    assert LicenseValidation.objects.filter(machine_id="fp-1", result_code="VALID").count() == 6
    assert not client.exists(buffer.BUFFER_KEY) and not list(client.scan_iter(match=f"{buffer.TAKEN_PREFIX}*"))
    assert sorted(client.lrange(buffer.DEAD_LETTER_KEY, 0, -1)) == sorted(item.encode() for item in bad)
    event = SystemEvent.objects.get(event_type="license.validation_rows_dead_lettered")
    assert event.severity == "error" and event.data["rows"] == 4
    assert set(event.data["errors"]) >= {"JSONDecodeError", "UnicodeEncodeError"}
    client.delete(buffer.DEAD_LETTER_KEY)


def test_an_orphan_holding_a_bad_row_is_drained_all_the_same(license):
    import json
    import time

    from ipcontrol import buffer

    _validate("CEL-UNKNOWN")
    client = buffer._redis()
    client.rpush(buffer.BUFFER_KEY, json.dumps({"id": "x", "hostname": "\ud800"}))
    stale = f"{buffer.TAKEN_PREFIX}{int(time.time()) - buffer.ORPHAN_AFTER_SECONDS - 5}:dead"
    client.rename(buffer.BUFFER_KEY, stale)
    client.delete(buffer.ORPHAN_SCAN_KEY)
    assert validation_buffer_flush() == 2
    assert not client.exists(stale) and client.llen(buffer.DEAD_LETTER_KEY) == 1
    assert LicenseValidation.objects.filter(result_code="NOT_FOUND").count() == 1
    client.delete(buffer.DEAD_LETTER_KEY)


def test_rows_of_machines_and_licenses_deleted_since_are_kept_without_them(license):
    """Between an attempt and its flush, its machine and license may be deleted: the row is
    stored all the same, its references emptied, and the rest of the batch with it."""
    _activate(license, "fp-1")
    _activate(license, "fp-2")
    assert _validate(license.license_key, fingerprint="fp-1")["code"] == "VALID"
    assert _validate(license.license_key, fingerprint="fp-2")["code"] == "VALID"
    LicenseIpBinding.objects.filter(machine_id="fp-1").delete()
    assert validation_buffer_flush() == 2
    orphan, kept = (LicenseValidation.objects.get(machine_id=m, result_code="VALID") for m in ("fp-1", "fp-2"))
    assert orphan.ip_binding_id is None and orphan.license_id == license.pk
    assert kept.ip_binding.machine_id == "fp-2"
    _validate(license.license_key, fingerprint="fp-2")
    License.all_objects.filter(pk=license.pk).delete()
    assert validation_buffer_flush() == 1
    assert LicenseValidation.objects.filter(license=None, organization=license.organization_id).count() == 1


def test_a_flush_is_requested_once_per_flush_at_rows(license, monkeypatch):
    """Only the push that crosses a multiple of FLUSH_AT asks a worker to flush (one message on
    the broker per crossing), not every request made while the list is long."""
    import json

    from ipcontrol import buffer

    monkeypatch.setattr(buffer, "FLUSH_AT", 3)
    client = buffer._redis()
    client.delete("platform")  # the flush's queue (CELERY_TASK_ROUTES)
    for _ in range(7):
        _validate("CEL-UNKNOWN")
    messages = [json.loads(raw) for raw in client.lrange("platform", 0, -1)]
    assert [m["headers"]["task"] for m in messages] == ["ipcontrol.flush_validations"] * 2
    assert validation_buffer_length() == 7


def test_the_background_flush_inserts_in_paced_slices_unless_backlogged(license, monkeypatch):
    """A flush inserts its rows a slice at a time and pauses after each slice (the cores go back
    to requests); a backlog past PACED_UP_TO is written in one statement to catch up. Every row
    is stored either way."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ipcontrol import buffer

    monkeypatch.setattr(buffer, "PACED_SLICE", 2)
    pauses = []
    monkeypatch.setattr(buffer.time, "sleep", pauses.append)
    _activate(license, "fp-1")

    def flush_inserts():
        with CaptureQueriesContext(connection) as queries:
            validation_buffer_flush()
        return [q for q in queries if q["sql"].startswith(f"INSERT INTO {LicenseValidation._meta.db_table}")]

    for _ in range(5):
        _validate(license.license_key)
    assert len(flush_inserts()) == 3 and len(pauses) == 2  # slices of 2, 2 and 1; no pause after the last
    assert LicenseValidation.objects.filter(result_code="VALID").count() == 5
    monkeypatch.setattr(buffer, "PACED_UP_TO", 4)
    for _ in range(5):
        _validate(license.license_key)
    assert len(flush_inserts()) == 1 and len(pauses) == 2
    assert LicenseValidation.objects.filter(result_code="VALID").count() == 10
