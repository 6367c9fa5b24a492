"""Shared admin building blocks: base ModelAdmins and mixins every app admin uses (the site
itself, its theme and name are ``celaest.adminsite``).

- ``CelaestModelAdmin``: the base of every CELAEST admin, on the theme's (Unfold's) ModelAdmin
  (UUID/IP search, inlines contributed by other apps).
- ``LargeTableAdmin``: for big time-series tables; its paginator never counts every row.
- ``AppendOnlyAdminMixin`` (view only) and ``GeneratedRecordAdminMixin`` (view and delete) for
  rows the platform writes and staff must not edit.
- ``SoftDeleteAdminMixin``: shows deleted rows too, and deleting means soft-deleting.
- ``ReadOnlyTabularInline``: an inline that only lists related rows.
"""

import dataclasses
import ipaddress
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.paginator import Paginator
from django.db import connections, models
from django.db.models import Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator
from unfold.admin import ModelAdmin as ThemeModelAdmin
from unfold.admin import TabularInline as ThemeTabularInline
from unfold.widgets import UnfoldAdminTextareaWidget

from celaest import hooks
from celaest.admin_display import list_column, readonly_money_formats
from celaest.errors import DomainError
from celaest.validation import json_problem

MASKED = "••••••"


def truncated(text: str, length: int = 60) -> str:
    return Truncator(text or "").chars(length)


def pretty_json(value) -> str:
    """A JSON value laid out for reading on a change page."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


class StorableJSONField(forms.JSONField):
    """A JSON form field that refuses what the API's parser refuses (``json_problem``: NUL, lone
    surrogates, deep nesting): a form error instead of a database error (500)."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("JSON is nested too deeply.", code="invalid") from None

    def validate(self, value):
        super().validate(value)
        if problem := json_problem(value):
            raise forms.ValidationError(problem, code="unstorable")


def secret_input(*, label: str, help_text: str) -> forms.CharField:
    """A form field for typing a secret in: never rendered back, not even after a form error."""
    return forms.CharField(
        label=label,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text,
    )


class WriteOnlySecretForm(forms.ModelForm):
    """A model form with one write-only ``secret`` (declared by subclasses with ``secret_input``).

    Required when adding; when changing, blank keeps the stored secret. ``store_secret`` puts the
    typed value on the instance (encrypted, hashed); nothing ever renders it back.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance._state.adding:
            self.fields["secret"].required = True
        else:
            self.fields["secret"].help_text += " Leave blank to keep the current one."

    def store_secret(self, secret: str) -> None:
        raise NotImplementedError

    def save(self, commit=True):
        secret = self.cleaned_data.get("secret")
        if secret:
            self.store_secret(secret)
        return super().save(commit)


# --- inlines contributed across apps -------------------------------------------------------------

_contributed_inlines: dict[type[models.Model], list[type[admin.options.InlineModelAdmin]]] = defaultdict(list)


def contribute_inline(model: type[models.Model], inline: type[admin.options.InlineModelAdmin]) -> None:
    """Add ``inline`` to the admin of ``model`` from another app.

    Apps depend on each other one way (identity at the bottom, analytics at the top); a lower
    app's admin cannot import a higher app's models, so the higher app contributes its inline.
    """
    _contributed_inlines[model].append(inline)


# --- panels contributed across apps ----------------------------------------------------------------


@dataclass
class Panel:
    """A block of facts above an object's change page: a table (``columns`` and ``rows`` of cells,
    plain or already-safe HTML), key/value ``facts``, and/or a Plotly ``chart`` ({"data",
    "layout"}, drawn from the installed package). ``more_url`` links the full, filtered list."""

    title: str
    columns: Sequence[str] = ()
    rows: Sequence[Sequence] = ()
    facts: Sequence[tuple[str, object]] = ()
    chart: dict | None = None
    more_url: str = ""
    more_label: str = "See all"
    empty: str = "None."
    wide: bool = False
    actions: Sequence[tuple[str, str]] = dataclasses.field(default_factory=tuple)

    @property
    def is_table(self) -> bool:
        return bool(self.columns)


#: builds the panels of one object: (request, obj) -> a Panel, several, or None
PanelBuilder = Callable[..., "Panel | Sequence[Panel] | None"]
_contributed_panels: dict[type[models.Model], list[tuple[int, PanelBuilder]]] = defaultdict(list)


def contribute_panel(model: type[models.Model], builder: PanelBuilder, *, order: int = 100) -> None:
    """Show ``builder(request, obj)``'s panels on the change page of ``model``'s objects, in
    ``order`` (lower first). Like ``contribute_inline``: a higher app adds what it knows about a
    lower app's object (an organization's invoices, a license's validations). A builder runs a
    fixed number of queries, whatever the object's size: lists are sliced."""
    _contributed_panels[model].append((order, builder))


def changelist_url(model: type[models.Model], **filters) -> str:
    """The admin list of ``model``, filtered by ``filters`` (lookups as query parameters)."""
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


#: Admin actions whose rows are audited one by one (as deletions), not as one action row.
_ACTIONS_AUDITED_PER_ROW = frozenset({"delete_selected", "soft_delete_selected"})


def _announce_deletions(objects, *, removed: bool) -> None:
    for observer in hooks.admin_write_observers:
        observer.deleted(objects=objects, removed=removed)


class CelaestModelAdmin(ThemeModelAdmin):
    """Base admin of every CELAEST model.

    Search also matches a pasted UUID against the primary key and, for ``ip_search_fields``, a
    pasted IP address exactly; both lookups use indexes and never raise on input of the wrong type
    (a plain ``search_fields`` entry on a uuid/inet column would). JSON fields refuse U+0000.
    """

    ip_search_fields: tuple[str, ...] = ()
    list_per_page = 50
    formfield_overrides = {models.JSONField: {"form_class": StorableJSONField}}

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        # Read-only money on change pages with two decimals, not the column's four.
        self.readonly_preprocess_fields = {
            **readonly_money_formats(model),
            **(getattr(self, "readonly_preprocess_fields", None) or {}),
        }

    change_form_outer_before_template = "admin/celaest/panels.html"

    def get_inlines(self, request, obj):
        return [*super().get_inlines(request, obj), *_contributed_inlines.get(self.model, [])]

    # Panels: what other apps know about the object, above its form (contribute_panel).

    def get_panels(self, request, obj) -> list[Panel]:
        panels = []
        owner = self._organization_field()
        if owner is not None and getattr(obj, owner.attname) is not None:
            # One click from any object of an organization to the page that tells its whole story.
            organization = getattr(obj, owner.name)
            panels.append(
                Panel(
                    title=f"{owner.verbose_name.capitalize()}: {organization}",
                    more_url=reverse(
                        f"admin:{organization._meta.app_label}_{organization._meta.model_name}_change",
                        args=[organization.pk],
                    ),
                    more_label="Its page",
                    wide=True,
                )
            )
        for _order, builder in sorted(_contributed_panels.get(self.model, []), key=lambda entry: entry[0]):
            built = builder(request, obj)
            if built is None:
                continue
            panels.extend([built] if isinstance(built, Panel) else built)
        return panels

    #: the foreign key naming the organization an object belongs to, where there is one
    organization_field_name = "organization"

    def _organization_field(self):
        try:
            field = self.opts.get_field(self.organization_field_name)
        except FieldDoesNotExist:
            return None
        return field if field.many_to_one else None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        has_panels = (
            self.model in _contributed_panels
            or type(self).get_panels is not CelaestModelAdmin.get_panels
            or self._organization_field() is not None
        )
        if request.method == "GET" and has_panels:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                panels = self.get_panels(request, obj)
                for index, panel in enumerate(panels):
                    if panel.chart:
                        panel.chart = {**panel.chart, "id": f"cel-chart-{index}"}
                extra_context["celaest_panels"] = panels
                extra_context["celaest_charts"] = [panel.chart for panel in panels if panel.chart]
        return super().change_view(request, object_id, form_url, extra_context)

    # Lists read at a glance (celaest.admin_display): statuses as badges, times humanised, money
    # with its currency, keys short with a copy button, by the kind of each listed field.

    def get_list_display(self, request):
        editable = set(self.list_editable)
        return [
            list_column(self.model, column) if isinstance(column, str) and column not in editable else column
            for column in super().get_list_display(request)
        ]

    def get_list_select_related(self, request):
        # Django joins the foreign keys it finds in list_display by name; the columns above are
        # functions, so name them here (unless the admin chose its own).
        chosen = super().get_list_select_related(request)
        if chosen is not False:
            return chosen
        related = [
            column.related_field for column in self.get_list_display(request) if getattr(column, "related_field", None)
        ]
        return related or False

    def get_list_display_links(self, request, list_display):
        links = super().get_list_display_links(request, list_display)
        if not links or not self.list_display_links:
            return links
        return [list_column(self.model, link) if isinstance(link, str) else link for link in links]

    # The audit trail: every add, change and delete made here is told to the admin write
    # observers (``celaest.hooks``; audit records it in audit_logs with the changed fields before
    # and after, secrets redacted), beside Django's own LogEntry.

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method == "POST":
            for observer in hooks.admin_write_observers:
                observer.object_loaded(request=request, obj=obj)
        return obj

    def log_addition(self, request, obj, message):
        for observer in hooks.admin_write_observers:
            observer.added(request=request, obj=obj)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        for observer in hooks.admin_write_observers:
            observer.changed(request=request, obj=obj)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        _announce_deletions(queryset, removed=True)
        return super().log_deletions(request, queryset)

    def response_action(self, request, queryset):
        response = super().response_action(request, queryset)
        name = request.POST.get("action", "")
        if response is not None and name and name not in _ACTIONS_AUDITED_PER_ROW and request.method == "POST":
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            for observer in hooks.admin_write_observers:
                observer.action_run(
                    request=request, model_label=self.opts.label_lower, action_name=name, selected=selected
                )
        return response

    def apply_each(self, request, objects, *, verb: str, label, operation) -> None:
        """Run ``operation`` on each of ``objects`` (an admin action going through a service) and
        report how many were done and, by ``label``, why the others were refused (DomainError)."""
        done, refused = 0, []
        for obj in objects:
            try:
                operation(obj)
            except DomainError as exc:
                refused.append(f"{label(obj)}: {exc.message}")
                continue
            done += 1
        message = f"{done} {self.model._meta.verbose_name}(s) {verb}."
        if refused:
            message += f" {len(refused)} skipped: " + "; ".join(refused[:5])
        self.message_user(request, message, messages.SUCCESS if done else messages.WARNING)

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        exact = Q()
        if term and isinstance(self.opts.pk, models.UUIDField):
            try:
                exact |= Q(pk=uuid.UUID(term))
            except ValueError:
                pass
        if term and self.ip_search_fields:
            try:
                address = str(ipaddress.ip_address(term))
            except ValueError:
                pass
            else:
                for field in self.ip_search_fields:
                    exact |= Q(**{field: address})
        if exact:
            results = results | queryset.filter(exact)
        return results, may_have_duplicates


# --- one object's operation, with a reason ---------------------------------------------------------


class ReasonForm(forms.Form):
    """Why staff do what they do to one object: recorded with the change."""

    reason = forms.CharField(
        max_length=255,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Recorded with the change in the audit log.",
    )


class ObjectOperationMixin:
    """A button on an object's page (the theme's ``actions_detail``) that opens a form asking why,
    then runs one service operation on the object and reports what it did or why it was refused.

    ``operation(obj, cleaned_data)`` goes through the app's service (which audits it); the view
    only asks, checks the change permission and reports.
    """

    def object_operation_view(
        self, request, object_id, *, title, button, operation, form_class=ReasonForm, danger=False, explanation=""
    ):
        obj = self.get_object(request, unquote(str(object_id)))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(object_id))
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                operation(obj, form.cleaned_data)
            except DomainError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            else:
                LogEntry.objects.log_actions(
                    user_id=request.user.pk,
                    queryset=[obj],
                    action_flag=CHANGE,
                    change_message=f"{button}: {form.cleaned_data.get('reason', '')}".strip(": "),
                    single_object=True,
                )
                self.message_user(request, f"{obj}: {button.lower()} done.", messages.SUCCESS)
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "title": f"{title}: {obj}",
            "form": form,
            "button": button,
            "danger": danger,
            "explanation": explanation,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/celaest/object_operation.html", context)


# --- big tables ---------------------------------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """A paginator that never counts every row of a big table.

    Unfiltered, on PostgreSQL, the count is the planner's estimate (``pg_class.reltuples``) once
    that says the table is big. Otherwise (filtered, SQLite, a small or never-analysed table) rows
    are counted only up to ``count_limit``; past it the count stops there. ``count_kind`` says which
    ("exact", "estimate", "at_least") so the pagination template can say "about" or "more than".
    Pages past the counted rows cannot be reached: staff narrow the list with filters, search or
    the date hierarchy instead.
    """

    count_limit = 10_000
    count_kind = "exact"
    template_name = "admin/celaest/pagination_estimated.html"  # read by the theme's pagination

    @cached_property
    def count(self):
        queryset = self.object_list
        if not isinstance(queryset, models.QuerySet):
            return super().count
        if not queryset.query.where:
            estimate = self._planner_estimate(queryset)
            if estimate is not None and estimate > self.count_limit:
                self.count_kind = "estimate"
                return estimate
        counted = queryset.order_by()[: self.count_limit + 1].count()
        if counted > self.count_limit:
            self.count_kind = "at_least"
            return self.count_limit
        return counted

    @staticmethod
    def _planner_estimate(queryset) -> int | None:
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
        # -1 (PostgreSQL 14+) or 0 means never analysed: count instead.
        return int(row[0]) if row and row[0] > 0 else None


class LargeTableAdmin(CelaestModelAdmin):
    """For big time-series tables: no full count, neither for the page nor for the header.

    ``changelist_defer`` names bulky columns (payloads, texts) the list never shows, so a page of
    rows does not fetch them; the change page still loads everything.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    changelist_defer: tuple[str, ...] = ()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if (
            self.changelist_defer
            and match
            and match.url_name == f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        ):
            queryset = queryset.defer(*self.changelist_defer)
        return queryset


# --- permissions ----------------------------------------------------------------------------------


class AppendOnlyAdminMixin:
    """Rows are written once by the platform and never changed or removed: staff can only look."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class GeneratedRecordAdminMixin:
    """Rows the platform records (logs, measurements): staff look, and may delete, but never write.

    A row typed in by hand would be a false record, and an edit would falsify a true one.
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(ThemeTabularInline):
    """Lists related rows with a link to each; edited (if at all) on their own page."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- soft delete ----------------------------------------------------------------------------------


class DeletedListFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("alive", "Alive"), ("deleted", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "alive":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class SoftDeleteModelForm(forms.ModelForm):
    """Reports a unique value already held by a soft-deleted row as a form error.

    Django checks uniqueness through the default manager, which hides deleted rows, so without
    this the database would reject the value with an IntegrityError (a 500).
    """

    def clean(self):
        cleaned_data = super().clean()
        model = self._meta.model
        for field in model._meta.concrete_fields:
            if not field.unique or field.primary_key or field.name in self.errors:
                continue
            value = cleaned_data.get(field.name)
            if value in (None, ""):
                continue
            clash = model.all_objects.filter(**{field.name: value}, deleted_at__isnull=False)
            if self.instance.pk is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error(
                    field.name, f"A deleted {model._meta.verbose_name} holds this {field.name}; restore it instead."
                )
        return cleaned_data


class SoftDeleteAdminMixin:
    """Admin of a soft-deleted model (``deleted_at`` + ``all_objects``).

    Lists every row, deleted ones included (filter "deleted"); "delete" (the action and the
    button on the change page) marks rows deleted instead of removing them and their dependants,
    and "restore" brings them back. Autocomplete offers live rows only, as the forms accept no
    other. Subclasses that add actions keep these: ``actions = [*SoftDeleteAdminMixin.actions, ...]``.
    """

    form = SoftDeleteModelForm
    actions = ["soft_delete_selected", "restore_selected"]
    delete_confirmation_template = "admin/celaest/soft_delete_confirmation.html"

    def get_queryset(self, request):
        queryset = self.model.all_objects.get_queryset()
        ordering = self.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return queryset

    def get_list_filter(self, request):
        return [DeletedListFilter, *super().get_list_filter(request)]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if request.resolver_match and request.resolver_match.url_name == "autocomplete":
            results = results.filter(deleted_at__isnull=True)
        return results, may_have_duplicates

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(boolean=True, description="deleted", ordering="deleted_at")
    def is_deleted(self, obj):
        return obj.deleted_at is not None

    # The delete button on the change page soft-deletes: no cascade to collect, nothing protected.
    def get_deleted_objects(self, objs, request):
        return [str(obj) for obj in objs], {self.opts.verbose_name_plural: len(objs)}, set(), []

    def log_deletions(self, request, queryset):
        _announce_deletions(queryset, removed=False)  # soft: the row stays, marked deleted
        return LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=queryset, action_flag=CHANGE, change_message="Soft deleted."
        )

    def delete_model(self, request, obj):
        obj.soft_delete()

    def delete_queryset(self, request, queryset):
        for obj in queryset.filter(deleted_at__isnull=True):
            obj.soft_delete()

    @admin.action(description="Soft delete selected %(verbose_name_plural)s", permissions=["delete"])
    def soft_delete_selected(self, request, queryset):
        # One by one, so each model's own soft_delete() runs (a deleted user is also deactivated).
        alive = list(queryset.filter(deleted_at__isnull=True))
        if alive:
            self.log_deletions(request, alive)
        for obj in alive:
            obj.soft_delete()
        self.message_user(request, f"{len(alive)} {self.opts.verbose_name_plural} marked deleted.", messages.SUCCESS)

    @admin.action(description="Restore selected %(verbose_name_plural)s", permissions=["delete"])
    def restore_selected(self, request, queryset):
        deleted = list(queryset.filter(deleted_at__isnull=False))
        if deleted:
            queryset.model.all_objects.filter(pk__in=[obj.pk for obj in deleted]).update(
                deleted_at=None, updated_at=timezone.now()
            )
            LogEntry.objects.log_actions(
                user_id=request.user.pk, queryset=deleted, action_flag=CHANGE, change_message="Restored."
            )
        self.message_user(request, f"{len(deleted)} {self.opts.verbose_name_plural} restored.", messages.SUCCESS)
