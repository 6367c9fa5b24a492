"""Admin of the daily validation counts (``ipcontrol.rollups``). Imported at the end of
``ipcontrol/admin.py``."""

from django.contrib import admin

from celaest.admin import GeneratedRecordAdminMixin, LargeTableAdmin

from .models import LicenseValidationDaily


@admin.register(LicenseValidationDaily)
class LicenseValidationDailyAdmin(GeneratedRecordAdminMixin, LargeTableAdmin):
    """Written by the hourly rollup from the validation log; staff only read them."""

    list_display = ["day", "license", "organization", "result_code", "attempts"]
    list_filter = ["result_code"]
    list_select_related = ["license", "organization"]
    date_hierarchy = "day"
    search_fields = ["license__license_key__exact", "organization__slug__exact", "result_code__exact"]
    search_help_text = "Exact license key, organization slug or result code."
    raw_id_fields = ["license", "organization"]
