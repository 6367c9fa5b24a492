"""N+1 guard for the admin: every changelist of the CELAEST apps runs the same number of queries for
2 rows as for 10. Models are discovered from the admin registry, not listed."""

import itertools

import pytest
from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from aimesh.models import PromptFallbackModel
from billing.models import DocumentSequence, PaymentGateway
from tests import factories as f
from tests.api_registry import make_row

MODELS = sorted(
    (m for m in admin.site._registry if m._meta.app_label in settings.CELAEST_APPS), key=lambda m: m._meta.label
)
_numbers = itertools.count(1)


def _row(model, *, organization, user):
    if model is PromptFallbackModel:
        return PromptFallbackModel.objects.create(prompt=f.PromptFactory(), model=f.AIModelFactory())
    if model is PaymentGateway:  # its factory reuses one "manual" gateway
        return f.PaymentGatewayFactory(code=f"gateway-{next(_numbers)}")
    if model is DocumentSequence:
        return DocumentSequence.objects.create(key="invoice", year=2000 + next(_numbers), last_number=7)
    return make_row(model, organization=organization, user=user)


def _queries(client, model) -> tuple[int, int]:
    opts = model._meta
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    return len(queries), len(response.context["cl"].result_list)


@pytest.mark.django_db
@pytest.mark.parametrize("model", MODELS, ids=[m._meta.label for m in MODELS])
def test_changelist_query_count_does_not_grow_with_rows(client, model):
    client.force_login(f.StaffUserFactory())
    organization = f.OrganizationFactory()
    user = f.UserFactory(organization=organization)
    for _ in range(2):
        _row(model, organization=organization, user=user)
    _queries(client, model)  # warm per-process caches (content types, permissions)
    few, few_rows = _queries(client, model)
    for _ in range(8):
        _row(model, organization=organization, user=user)
    many, many_rows = _queries(client, model)
    assert many_rows > few_rows
    assert many == few, f"{model._meta.label}: {few} queries for {few_rows} rows, {many} for {many_rows}"
