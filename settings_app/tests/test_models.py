import pytest

from tests.db import raises_integrity_error
from tests.factories import (
    FeatureFlagFactory,
    UserApiKeyFactory,
    UserSessionFactory,
    WebhookDeliveryFactory,
)

pytestmark = pytest.mark.django_db


def test_session_token_is_unique():
    UserSessionFactory(session_token="a" * 64)
    with raises_integrity_error():
        UserSessionFactory(session_token="a" * 64)


def test_api_key_hash_is_unique_and_rpm_positive():
    UserApiKeyFactory(key_hash="b" * 64)
    with raises_integrity_error():
        UserApiKeyFactory(key_hash="b" * 64)
    with raises_integrity_error():
        UserApiKeyFactory(rate_limit_rpm=0)


def test_flag_key_is_unique():
    FeatureFlagFactory(flag_key="new-dashboard")
    with raises_integrity_error():
        FeatureFlagFactory(flag_key="new-dashboard")


@pytest.mark.parametrize("percentage", [-1, 101])
def test_flag_percentage_is_0_to_100(percentage):
    with raises_integrity_error():
        FeatureFlagFactory(target_percentage=percentage)


def test_delivery_attempt_numbers_are_unique_per_message():
    first = WebhookDeliveryFactory(event_id="msg_1", attempt_number=1)
    WebhookDeliveryFactory(webhook=first.webhook, event_id="msg_1", attempt_number=2)
    with raises_integrity_error():
        WebhookDeliveryFactory(webhook=first.webhook, event_id="msg_1", attempt_number=2)
