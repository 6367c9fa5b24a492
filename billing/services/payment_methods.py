"""Saved payment methods: the one default per organization, removal."""

from django.db import transaction

from billing.models import PaymentMethod


@transaction.atomic
def payment_method_set_default(*, payment_method: PaymentMethod) -> PaymentMethod:
    """Make ``payment_method`` its organization's one default. The organization's methods are
    locked (in a fixed order) so concurrent calls cannot leave two defaults or none."""
    organization_methods = PaymentMethod.objects.filter(organization_id=payment_method.organization_id)
    list(organization_methods.select_for_update().order_by("pk").values_list("pk", flat=True))
    # The old default is cleared first: "one default per user" is checked row by row.
    organization_methods.filter(is_default=True).exclude(pk=payment_method.pk).update(is_default=False)
    organization_methods.filter(pk=payment_method.pk).update(is_default=True)
    payment_method.refresh_from_db()
    return payment_method


@transaction.atomic
def payment_method_delete(*, payment_method: PaymentMethod) -> None:
    payment_method.delete()
