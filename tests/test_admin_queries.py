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
from operations.models import OrganizationAILicense
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
    if model is OrganizationAILicense:  # one per organization
        other = f.OrganizationFactory()
        return make_row(model, organization=other, user=f.UserFactory(organization=other))
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


def _grow(organization, license, order):
    """One more of everything the organization, license and invoice pages list."""
    user = f.UserFactory(organization=organization)
    other_license = f.LicenseFactory(organization=organization)
    binding = f.LicenseIpBindingFactory(license=license, organization=organization)
    f.LicenseValidationFactory(license=license, ip_binding=binding)
    f.LicenseCollisionFactory(license=other_license, organization=organization)
    f.ProcessedTaskFactory(organization=organization, user=user, license=license)
    f.OrderFactory(organization=organization, user=user)
    f.InvoiceFactory(order=f.OrderFactory(organization=organization, user=user))
    f.OrderItemFactory(order=order)
    f.WebhookFactory(organization=organization, user=user)
    f.UserApiKeyFactory(user=user)
    f.AuditLogFactory(organization=organization, user=user)


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["organization", "license", "invoice"])
def test_detail_page_query_count_does_not_grow_with_the_organization(client, page):
    client.force_login(f.StaffUserFactory())
    organization = f.OrganizationFactory()
    license = f.LicenseFactory(organization=organization)
    invoice = f.InvoiceFactory(order=f.OrderFactory(organization=organization))
    obj = {"organization": organization, "license": license, "invoice": invoice}[page]
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    _grow(organization, license, invoice.order)
    count()  # warm per-process caches
    few = count()
    for _ in range(4):
        _grow(organization, license, invoice.order)
    assert count() == few
