"""The audit trail (append-only) and platform system events."""

from django.db import models
from django.utils import timezone

from celaest.db import UUIDModel


class AuditLog(UUIDModel):
    """Who changed what, when and from where. Rows are written once and never changed."""

    class Action(models.TextChoices):
        """Every action an audit row can record: the one list. The API schema's ``ActionEnum`` is
        read from it, ``audit_record`` refuses any other, and a test checks that every action the
        code records is here (rows carried actions the schema did not list)."""

        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"
        LOGIN = "login", "Login"
        LOGOUT = "logout", "Logout"
        LOGIN_FAILED = "login_failed", "Login failed"
        API_KEY_USED = "api_key_used", "API key used"
        EXPORT = "export", "Export"
        ACTION = "action", "Action"
        # Changes that services record under their business name
        BATCH_CREATED = "batch.created", "Batch created"
        BATCH_CANCELLED = "batch.cancelled", "Batch cancelled"
        PROMPT_VERSIONED = "prompt.versioned", "Prompt versioned"
        PROMPT_ACTIVATED = "prompt.activated", "Prompt activated"
        MEMBER_INVITED = "member.invited", "Member invited"

    #: actions that record no change to a resource (sign-ins, key use, exports)
    NON_CHANGE_ACTIONS = frozenset(
        {Action.LOGIN, Action.LOGOUT, Action.LOGIN_FAILED, Action.API_KEY_USED, Action.EXPORT}
    )

    user = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    organization = models.ForeignKey(
        "identity.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_logs"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    resource_type = models.CharField(max_length=100, blank=True)
    resource_id = models.CharField(max_length=64, blank=True)
    resource_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16, blank=True, help_text="admin, api, command, system")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "audit_logs"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="idx_audit_created_at"),
            models.Index(fields=["organization", "created_at"], name="idx_audit_org_created"),
            models.Index(fields=["resource_type", "resource_id"], name="idx_audit_resource"),
        ]

    def __str__(self):
        return f"{self.action} {self.resource_type}:{self.resource_id}"


class SystemEvent(UUIDModel):
    """A platform event: job runs, key health changes, collisions, disabled endpoints."""

    class Severity(models.TextChoices):
        DEBUG = "debug", "Debug"
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"
        CRITICAL = "critical", "Critical"

    event_type = models.CharField(max_length=100)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    source = models.CharField(max_length=100, blank=True)
    message = models.TextField(blank=True)
    organization = models.ForeignKey(
        "identity.Organization", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "system_events"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="idx_system_events_created"),
            models.Index(fields=["event_type", "created_at"], name="idx_system_events_type"),
        ]

    def __str__(self):
        return f"[{self.severity}] {self.event_type}"
