"""AI work: batches of tasks and every processed task with its metered tokens and cost."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from celaest.db import ChangeAnnouncingManager, TimeStampedModel, UUIDModel
from celaest.money import CostField


class TaskBatch(TimeStampedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        PARTIALLY_FAILED = "partially_failed", "Partially failed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="task_batches")
    user = models.ForeignKey("identity.User", on_delete=models.PROTECT, related_name="task_batches")
    license = models.ForeignKey(
        "licensing.License", on_delete=models.PROTECT, null=True, blank=True, related_name="task_batches"
    )
    prompt = models.ForeignKey("aimesh.Prompt", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    model = models.ForeignKey("aimesh.AIModel", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    total_tasks = models.PositiveIntegerField(default=0)
    completed_tasks = models.PositiveIntegerField(default=0)
    failed_tasks = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        db_table = "task_batches"
        verbose_name_plural = "task batches"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"], name="idx_batches_org_created")]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_tasks__gte=F("completed_tasks") + F("failed_tasks")),
                name="batches_progress_within_total",
            ),
        ]

    def __str__(self):
        return self.name or str(self.id)


class ProcessedTask(UUIDModel):
    """One AI request as it was run: the routing choice, tokens, cost and time."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="processed_tasks")
    user = models.ForeignKey(
        "identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="processed_tasks"
    )
    license = models.ForeignKey(
        "licensing.License", on_delete=models.PROTECT, null=True, blank=True, related_name="processed_tasks"
    )
    batch = models.ForeignKey(TaskBatch, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks")
    batch_index = models.PositiveIntegerField(null=True, blank=True, help_text="Position of the input in its batch.")
    model = models.ForeignKey(
        "aimesh.AIModel", on_delete=models.PROTECT, null=True, blank=True, related_name="processed_tasks"
    )
    api_key = models.ForeignKey(
        "aimesh.AIApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="processed_tasks"
    )
    prompt = models.ForeignKey(
        "aimesh.Prompt", on_delete=models.SET_NULL, null=True, blank=True, related_name="processed_tasks"
    )
    input_text = models.TextField(blank=True)
    input_variables = models.JSONField(default=dict, blank=True)
    output_text = models.TextField(blank=True)
    output_json = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    tokens_input = models.PositiveIntegerField(default=0)
    tokens_output = models.PositiveIntegerField(default=0)
    tokens_cached = models.PositiveIntegerField(default=0, help_text="Part of tokens_input served from cache.")
    tokens_total = models.GeneratedField(
        expression=F("tokens_input") + F("tokens_output"),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )
    cost_usd = CostField()
    execution_time_ms = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker last claimed the task.")
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the task's message was last sent to the workers (queued tasks)."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "processed_tasks"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="idx_tasks_org_created"),
            models.Index(fields=["created_at"], name="idx_tasks_created"),
            models.Index(fields=["batch", "status"], name="idx_tasks_batch_status", condition=Q(batch__isnull=False)),
            # The few running tasks, for the beat job that finds those whose worker died.
            models.Index(fields=["started_at"], name="idx_tasks_running_started", condition=Q(status="running")),
            # The queued tasks, for the beat job that sends again the messages the broker lost.
            models.Index(fields=["queued_at"], name="idx_tasks_pending_queued", condition=Q(status="pending")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "batch_index"], name="tasks_one_per_batch_input", condition=Q(batch__isnull=False)
            ),
            models.CheckConstraint(condition=Q(cost_usd__gte=0), name="tasks_cost_non_negative"),
            models.CheckConstraint(condition=Q(tokens_cached__lte=F("tokens_input")), name="tasks_cached_within_input"),
        ]

    def __str__(self):
        return str(self.id)


class ApiKeyLicense(TimeStampedModel):
    """The license that pays for the AI gateway calls of one user API key (``operations.budgets
    .paying_license``). Set by the organization's owners and admins (or staff); the license is one
    of the key's organization."""

    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="+")
    api_key = models.OneToOneField(
        "settings_app.UserApiKey", on_delete=models.CASCADE, related_name="paying_license_binding"
    )
    license = models.ForeignKey("licensing.License", on_delete=models.CASCADE, related_name="+")

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "api_key_licenses"
        verbose_name = "API key's paying license"
        verbose_name_plural = "API keys' paying licenses"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization"], name="idx_key_licenses_org")]

    def __str__(self):
        return f"{self.api_key_id} → {self.license_id}"


class OrganizationAILicense(TimeStampedModel):
    """The license that pays for an organization's AI gateway calls made with keys bound to none:
    chosen by its owners and admins, or by staff."""

    organization = models.OneToOneField(
        "identity.Organization", on_delete=models.CASCADE, related_name="designated_ai_license"
    )
    license = models.ForeignKey("licensing.License", on_delete=models.CASCADE, related_name="+")

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "organization_ai_licenses"
        verbose_name = "organization's AI license"
        verbose_name_plural = "organizations' AI licenses"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.organization_id} → {self.license_id}"
