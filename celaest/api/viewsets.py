"""Base viewsets. They own scoping and permissions, so no endpoint can forget them (after
PostHog's ``TeamAndOrgViewSetMixin``).

- ``TenantViewSet``: rows of the caller's organization only; another tenant's object is a 404.
  Subclasses supply ``scoped_queryset()``; ``organization``/``user`` are stamped on create from the
  request, never from the payload.
- ``OwnViewSet``: rows of the caller themselves (sessions, API keys).
- ``CatalogViewSet``: platform catalogue (plans, models, products...): read by customers, written
  by staff.
- ``StaffViewSet``: platform internals, staff only, deliberately unscoped.

Overriding ``get_queryset`` in a subclass is refused at import time: scoping lives here alone.
"""

from contextlib import contextmanager

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, QuerySet, RestrictedError
from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated

from celaest import hooks
from celaest.errors import Conflict, Forbidden

from . import permissions as perms
from .pagination import StandardPagination
from .views import ApiKeyScopeCheckMixin


class AuditedWritesMixin:
    """Every successful write through the API is told to the API write observers
    (``celaest.hooks``), from this one place: audit records it in the audit trail.

    The object a write targets is announced when the view loads it (``get_object``), so audit can
    snapshot it; after a 2xx answer audit reloads the row and records the diff (create, update,
    delete, or the name of a custom action). If a service already audited a change during this
    request (it knows the business meaning better), no second row is added.
    """

    def get_object(self):
        obj = super().get_object()
        if not perms.is_read(self.request):
            for observer in hooks.api_write_observers:
                observer.object_loaded(view=self, obj=obj)
        return obj

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if not perms.is_read(request) and 200 <= response.status_code < 300 and not self._is_schema_generation():
            for observer in hooks.api_write_observers:
                observer.write_succeeded(view=self, response=response)
        return response


class _ScopedBase(ApiKeyScopeCheckMixin, AuditedWritesMixin, viewsets.GenericViewSet):
    # API key scopes (``scope_resource``) are checked by ApiKeyScopeCheckMixin on every request,
    # whatever ``permission_classes`` a subclass lists.
    read_roles = perms.ALL_ROLES
    write_roles = perms.WRITER_ROLES
    pagination_class = StandardPagination
    permission_classes = [IsAuthenticated, perms.RolePermission]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__ and not cls.__dict__.get("_owns_scoping", False):
            raise TypeError(f"{cls.__name__} must not override get_queryset(); implement scoped_queryset().")
        if "queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must not set queryset; implement scoped_queryset().")

    def scoped_queryset(self) -> QuerySet:
        """The rows this endpoint is about, before tenant scoping (add select_related here)."""
        raise NotImplementedError(f"{type(self).__name__} must implement scoped_queryset()")

    def _is_schema_generation(self) -> bool:
        return getattr(self, "swagger_fake_view", False)


class TenantViewSet(_ScopedBase):
    """Rows belonging to the caller's organization."""

    _owns_scoping = True
    #: the lookup from the model to its organization
    organization_field = "organization"
    #: set True on a model with a ``user`` FK that records who created the row
    stamp_user = False
    #: staff see every organization's rows (audit). Spelled out because it is unscoped.
    dangerously_staff_sees_all_organizations = False

    def get_queryset(self):
        queryset = self.scoped_queryset()
        if self._is_schema_generation():
            return queryset.none()
        user = self.request.user
        if user.is_staff and self.dangerously_staff_sees_all_organizations:
            return queryset
        if not user.is_authenticated or user.organization_id is None:
            return queryset.none()
        return queryset.filter(**{self.organization_field: user.organization_id})

    def caller_organization(self):
        """The caller's organization, for writes; staff without one cannot write tenant rows."""
        organization = self.request.user.organization
        if organization is None:
            raise Forbidden("Only members of an organization can do this.", code="no_organization")
        return organization

    def creation_stamp(self) -> dict:
        stamp = {"organization": self.caller_organization()}
        if self.stamp_user:
            stamp["user"] = self.request.user
        return stamp

    def perform_create(self, serializer):
        serializer.save(**self.creation_stamp())


class OwnViewSet(_ScopedBase):
    """Rows belonging to the calling user (not just their organization)."""

    _owns_scoping = True
    user_field = "user"

    def get_queryset(self):
        queryset = self.scoped_queryset()
        if self._is_schema_generation() or not self.request.user.is_authenticated:
            return queryset.none()
        return queryset.filter(**{self.user_field: self.request.user})

    def perform_create(self, serializer):
        serializer.save(**{self.user_field: self.request.user})


class CatalogViewSet(_ScopedBase):
    """Platform catalogue: every authenticated caller reads what ``visible_to_customers`` lets
    through; staff read everything and are the only writers."""

    _owns_scoping = True
    read_roles = perms.ALL_ROLES
    write_roles = frozenset()  # staff only: RolePermission lets staff through
    permission_classes = [IsAuthenticated, perms.StaffWritesOthersRead, perms.RolePermission]

    def visible_to_customers(self, queryset: QuerySet) -> QuerySet:
        return queryset

    def get_queryset(self):
        queryset = self.scoped_queryset()
        if self._is_schema_generation():
            return queryset
        if self.request.user.is_staff:
            return queryset
        return self.visible_to_customers(queryset)


class StaffViewSet(_ScopedBase):
    """Platform internals (key pool, system config, system events): staff only, every row."""

    _owns_scoping = True
    permission_classes = [perms.IsStaff]

    def get_queryset(self):
        return self.dangerously_unscoped_queryset()

    def dangerously_unscoped_queryset(self) -> QuerySet:
        return self.scoped_queryset()


class ReadOnlyMixin(mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """List and detail."""


class CrudMixin(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """List, detail, create, update, delete."""


@contextmanager
def conflicts_answered_409():
    """Serializer validators catch duplicates up front; a concurrent write that slips past them
    still hits the database constraint, which is a conflict, not a server error."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise Conflict("This change conflicts with an existing record.") from exc


class DatabaseConflictsMixin:
    """Saves and deletes with database conflicts answered as 409: a duplicate that raced past
    validation (``conflict``), or a row other rows still reference (``in_use``)."""

    in_use_message = "This record is still referenced; deactivate it instead of deleting it."

    def perform_create(self, serializer):
        with conflicts_answered_409():
            serializer.save()

    def perform_update(self, serializer):
        with conflicts_answered_409():
            serializer.save()

    def perform_destroy(self, instance):
        try:
            with transaction.atomic():
                instance.delete()
        except (ProtectedError, RestrictedError) as exc:
            raise Conflict(self.in_use_message, code="in_use") from exc
