"""ROI metrics rolled up from processed tasks, and product telemetry."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from celaest.db import TimeStampedModel, UUIDModel
from celaest.money import CostField, MoneyField


class RoiMetric(TimeStampedModel):
    """One organization's return on AI in one period (day, ISO week starting Monday, month)."""

    class PeriodType(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week"
        MONTH = "month", "Month"

    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="roi_metrics")
    period_type = models.CharField(max_length=8, choices=PeriodType.choices)
    period_start = models.DateField()
    tasks_completed = models.PositiveIntegerField(default=0)
    tasks_failed = models.PositiveIntegerField(default=0)
    time_saved_minutes = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    money_saved = MoneyField(help_text="Time saved at the hourly rate, minus AI cost. May be negative.")
    currency = models.CharField(max_length=3, default="USD")
    ai_cost_usd = CostField()
    tokens_input = models.PositiveBigIntegerField(default=0)
    tokens_output = models.PositiveBigIntegerField(default=0)
    avg_execution_time_ms = models.PositiveIntegerField(default=0)
    active_users_count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "roi_metrics"
        verbose_name = "ROI metric"
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "period_type", "period_start"], name="idx_roi_org_period"),
            models.CheckConstraint(condition=Q(time_saved_minutes__gte=0), name="roi_time_saved_non_negative"),
        ]

    def __str__(self):
        return f"{self.organization_id} {self.period_type} {self.period_start}"


class TelemetryEvent(UUIDModel):
    class DeviceType(models.TextChoices):
        DESKTOP = "desktop", "Desktop"
        MOBILE = "mobile", "Mobile"
        TABLET = "tablet", "Tablet"
        SERVER = "server", "Server"
        OTHER = "other", "Other"

    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="telemetry_events")
    user = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    event_type = models.CharField(max_length=64)
    event_name = models.CharField(max_length=200)
    properties = models.JSONField(default=dict, blank=True)
    page_url = models.CharField(max_length=2048, blank=True)
    device_type = models.CharField(max_length=16, choices=DeviceType.choices, blank=True)
    session_id = models.CharField(max_length=128, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "telemetry_events"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="idx_telemetry_org"),
            models.Index(fields=["created_at"], name="idx_telemetry_created"),
        ]

    def __str__(self):
        return f"{self.event_type}:{self.event_name}"
