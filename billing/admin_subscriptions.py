"""Admin of subscriptions and of the plans' billing terms.

Staff subscribe an organization here (the same service as the customer's checkout: its license
issued, the first invoice issued), and act on subscriptions through the services: record a bank
transfer for the open invoices, retry collecting them, cancel at the period end.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages

from celaest.admin import CelaestModelAdmin, EstimatedCountPaginator
from celaest.errors import DomainError

from .models import CreditNote, Invoice, InvoiceLine, PaymentMethod, PlanBillingTerms, Subscription, UsageAlert
from .selectors import subscription_metrics
from .services.credit_notes import credit_note_issue, invoice_creditable
from .services.plan_changes import subscription_cancel
from .services.renewals import invoice_collect
from .services.subscription_invoices import LIVE_STATUSES, subscription_invoice_paid
from .services.subscriptions import subscription_create


@admin.register(PlanBillingTerms)
class PlanBillingTermsAdmin(CelaestModelAdmin):
    list_display = [
        "plan", "included_ai_requests", "included_tokens", "included_ai_spend", "overage", "trial_days",
    ]  # fmt: skip
    list_filter = ["overage"]
    search_fields = ["plan__code", "plan__name"]
    list_select_related = ["plan"]
    autocomplete_fields = ["plan"]
    readonly_fields = ["created_at", "updated_at"]


class SubscriptionAddForm(forms.ModelForm):
    """What staff choose to subscribe an organization; the service does the rest."""

    coupon_code = forms.CharField(required=False, max_length=64)
    with_trial = forms.BooleanField(required=False, initial=True, help_text="Start with the plan's trial, if any.")

    class Meta:
        model = Subscription
        fields = ["organization", "user", "plan", "interval", "gateway", "payment_method"]

    def clean(self):
        data = super().clean()
        organization, user = data.get("organization"), data.get("user")
        if organization and user and user.organization_id != organization.pk:
            self.add_error("user", "The subscriber must belong to the organization.")
        if organization and Subscription.objects.filter(organization=organization, status__in=LIVE_STATUSES).exists():
            self.add_error("organization", "This organization already has a subscription.")
        method: PaymentMethod | None = data.get("payment_method")
        if organization and method and method.organization_id != organization.pk:
            self.add_error("payment_method", "This payment method belongs to another organization.")
        return data


class CreatedByServiceAdmin(CelaestModelAdmin):
    """A model whose rows a service creates (numbers, licenses, audit, events) and nothing edits:
    the add page shows ``add_form`` and hands its data to ``create``; the change page is read-only."""

    add_form: type[forms.ModelForm]
    add_fields: list[str]

    def create(self, request, data):
        raise NotImplementedError

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"], kwargs["fields"] = self.add_form, self.add_fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.add_fields
        return [field.name for field in self.model._meta.concrete_fields if field.name != "id"]

    def get_readonly_fields(self, request, obj=None):
        # Every change goes through the services (actions), never a form edit.
        return self.get_fields(request, obj) if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            return
        created = self.create(request, form.cleaned_data)
        for field in self.model._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False


@admin.register(Subscription)
class SubscriptionAdmin(CreatedByServiceAdmin):
    list_display = [
        "organization", "plan", "interval", "status", "current_period_end", "cancel_at_period_end", "past_due_since",
    ]  # fmt: skip
    list_filter = ["status", "interval", "plan", "cancel_at_period_end"]
    search_fields = ["organization__name", "organization__slug", "user__email", "license__license_key"]
    list_select_related = ["organization", "plan"]
    autocomplete_fields = ["organization", "user", "plan", "gateway"]
    raw_id_fields = ["payment_method", "license", "coupon", "pending_plan"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["record_transfer", "retry_collection", "cancel_at_period_end"]

    add_form = SubscriptionAddForm
    add_fields = [*SubscriptionAddForm.Meta.fields, "coupon_code", "with_trial"]

    def create(self, request, data) -> Subscription:
        return subscription_create(
            organization=data["organization"],
            user=data["user"],
            plan=data["plan"],
            interval=data["interval"],
            gateway_code=data["gateway"].code,
            payment_method=data.get("payment_method"),
            coupon_code=(data.get("coupon_code") or "").strip(),
            with_trial=data.get("with_trial", False),
            actor=request.user,
            source="admin",
        )

    def has_delete_permission(self, request, obj=None):
        return False  # invoices refer to it; cancel instead

    def changelist_view(self, request, extra_context=None):
        metrics = subscription_metrics()
        statuses = ", ".join(f"{count} {status.replace('_', ' ')}" for status, count in metrics["by_status"].items())
        mrr = ", ".join(f"{amount:,} {currency}" for currency, amount in metrics["mrr"].items()) or "0"
        subtitle = f"MRR {mrr} · churn {metrics['churn_percent']}% over {metrics['churn_days']} days · {statuses}"
        return super().changelist_view(request, extra_context={"subtitle": subtitle, **(extra_context or {})})

    def _apply(self, request, queryset, verb: str, operation) -> None:
        done = 0
        for subscription in queryset:
            try:
                done += operation(subscription)
            except DomainError as exc:
                self.message_user(request, f"{subscription}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{verb}: {done}.", messages.SUCCESS)

    @admin.action(description="Record the bank transfer for the open invoices", permissions=["change"])
    def record_transfer(self, request, queryset):
        def pay(subscription):
            invoices = list(subscription.invoices.filter(status="issued"))
            for invoice in invoices:
                subscription_invoice_paid(invoice=invoice, reference="transfer", actor=request.user, source="admin")
            return len(invoices)

        self._apply(request, queryset, "Invoices marked paid", pay)

    @admin.action(description="Retry collecting the open invoices now", permissions=["change"])
    def retry_collection(self, request, queryset):
        def collect(subscription):
            open_invoices = subscription.invoices.filter(status="issued").values_list("pk", flat=True)
            return [invoice_collect(invoice_id=pk) for pk in open_invoices].count("paid")

        self._apply(request, queryset, "Invoices collected", collect)

    @admin.action(description="Cancel at the end of the period", permissions=["change"])
    def cancel_at_period_end(self, request, queryset):
        self._apply(
            request,
            queryset,
            "Cancelled at period end",
            lambda subscription: bool(
                subscription_cancel(subscription=subscription, at_period_end=True, actor=request.user, source="admin")
            ),
        )


@admin.register(UsageAlert)
class UsageAlertAdmin(CelaestModelAdmin):
    list_display = ["subscription", "organization", "metric", "threshold_percent", "period_start", "created_at"]
    list_filter = ["metric", "threshold_percent"]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["subscription__plan", "subscription__organization", "organization"]
    raw_id_fields = ["subscription", "organization"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InvoiceLine)
class InvoiceLineAdmin(CelaestModelAdmin):
    """Lines of subscription invoices: written when the invoice is issued, never edited."""

    list_display = ["invoice", "kind", "description", "quantity", "unit_price", "amount"]
    list_filter = ["kind"]
    search_fields = ["invoice__invoice_number", "description"]
    list_select_related = ["invoice"]
    raw_id_fields = ["invoice"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CreditNoteAddForm(forms.ModelForm):
    """What staff choose to credit: the paid invoice, the amount before tax, why, and whether the
    money goes back through the gateway."""

    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    refund = forms.BooleanField(required=False, help_text="Refund through the invoice's gateway (Stripe).")

    class Meta:
        model = CreditNote
        fields = ["invoice", "reason"]

    def clean(self):
        data = super().clean()
        invoice, amount = data.get("invoice"), data.get("amount")
        if invoice is not None and invoice.status not in (Invoice.Status.PAID, Invoice.Status.CREDITED):
            self.add_error("invoice", "Only a paid invoice can be credited.")
        elif invoice is not None and amount is not None and amount > invoice_creditable(invoice):
            self.add_error("amount", f"At most {invoice_creditable(invoice)} is left to credit.")
        return data


@admin.register(CreditNote)
class CreditNoteAdmin(CreatedByServiceAdmin):
    """Credit notes are issued through the service (partial refunds and credits); never edited."""

    list_display = ["credit_note_number", "invoice", "organization", "kind", "total", "currency", "issued_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["credit_note_number", "invoice__invoice_number", "organization__slug"]
    list_select_related = ["invoice", "organization"]
    raw_id_fields = ["invoice", "organization", "user"]
    date_hierarchy = "issued_at"

    add_form = CreditNoteAddForm
    add_fields = [*CreditNoteAddForm.Meta.fields, "amount", "refund"]

    def create(self, request, data) -> CreditNote:
        return credit_note_issue(
            invoice=data["invoice"],
            amount=data["amount"],
            reason=data["reason"],
            refund=data.get("refund", False),
            actor=request.user,
            source="admin",
        )

    def has_delete_permission(self, request, obj=None):
        return False
