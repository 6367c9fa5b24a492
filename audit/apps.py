from django.apps import AppConfig

from celaest import hooks


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The audit trail observes what the layers below it cannot call it for: writes through the
        # base admin and API classes, failed periodic jobs (celaest), and identity's changes.
        from . import admin_audit, api_audit, services

        hooks.admin_write_observers.connect(admin_audit.admin_write_auditor)
        hooks.api_write_observers.connect(api_audit.api_write_auditor)
        hooks.job_failure_observers.connect(services.job_failure_record)
        hooks.change_observers.connect(services.audit_record)
