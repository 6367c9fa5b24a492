"""Audit endpoints: the audit trail (organization owners and admins see their organization's,
staff see every organization's) and platform system events (staff only)."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.filters import SearchFilter

from audit.filters import AuditLogFilterSet, SystemEventFilterSet
from audit.models import AuditLog, SystemEvent
from celaest.api import permissions as perms
from celaest.api.pagination import CreatedAtCursorPagination
from celaest.api.viewsets import ReadOnlyMixin, StaffViewSet, TenantViewSet

from .serializers import AuditLogSerializer, SystemEventSerializer


@extend_schema_view(
    list=extend_schema(summary="List audit log entries (newest first)"),
    retrieve=extend_schema(summary="Get an audit log entry"),
)
class AuditLogViewSet(TenantViewSet, ReadOnlyMixin):
    serializer_class = AuditLogSerializer
    scope_resource = "audit-logs"
    read_roles = perms.MANAGER_ROLES
    # Platform staff investigate across tenants; customers stay scoped to their organization.
    dangerously_staff_sees_all_organizations = True
    filterset_class = AuditLogFilterSet
    pagination_class = CreatedAtCursorPagination
    # The cursor fixes the order (newest first); a client-chosen ordering would break it.
    filter_backends = [DjangoFilterBackend, SearchFilter]
    search_fields = ["resource_repr", "resource_id"]

    def scoped_queryset(self):
        return AuditLog.objects.select_related("user")


@extend_schema_view(
    list=extend_schema(summary="List system events (staff, newest first)"),
    retrieve=extend_schema(summary="Get a system event (staff)"),
)
class SystemEventViewSet(StaffViewSet, ReadOnlyMixin):
    serializer_class = SystemEventSerializer
    scope_resource = "system-events"
    filterset_class = SystemEventFilterSet
    pagination_class = CreatedAtCursorPagination
    filter_backends = [DjangoFilterBackend, SearchFilter]
    search_fields = ["message", "event_type"]

    def scoped_queryset(self):
        return SystemEvent.objects.all()
