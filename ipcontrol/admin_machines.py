"""Admin of what the platform records of machines: daily validation counts (``ipcontrol.rollups``)
and the offline certificates issued to them (``ipcontrol.certificates``), with the license page's
panel of the latter. Imported at the end of ``ipcontrol/admin.py``."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from celaest.admin import (
    AppendOnlyAdminMixin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    Panel,
    changelist_url,
    contribute_panel,
)
from celaest.admin_display import admin_link, humanised_time, short_key, status_badge
from licensing.models import License

from .models import LicenseIpBinding, LicenseValidationDaily, OfflineCertificate

#: how many of a license's offline certificates its page lists (the newest)
RECENT_CERTIFICATES = 10


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


@admin.register(OfflineCertificate)
class OfflineCertificateAdmin(AppendOnlyAdminMixin, LargeTableAdmin):
    """A record of each document issued: staff read it (it proves what a machine was given and
    until when); nobody edits or removes it."""

    list_display = ["issued_at", "kind", "license", "organization", "fingerprint", "expires_at", "issued_by"]
    list_filter = ["kind"]
    list_select_related = ["license", "organization", "issued_by"]
    date_hierarchy = "issued_at"
    search_fields = [
        "license__license_key__exact", "organization__slug__exact", "fingerprint__exact", "document_sha256__exact",
    ]  # fmt: skip
    search_help_text = "Exact license key, organization slug, machine fingerprint or document SHA-256."
    ip_search_fields = ("ip_address",)
    raw_id_fields = ["license", "organization", "issued_by"]


def _expiry(certificate, now):
    if certificate.expires_at > now:
        return humanised_time(certificate.expires_at)
    return format_html("{} {}", status_badge("expired"), humanised_time(certificate.expires_at))


def license_certificates_panel(request, license) -> Panel:
    """The license page's newest offline certificates: when, to which machine, until when, by whom."""
    certificates = list(
        OfflineCertificate.objects.filter(license=license).select_related("issued_by")[:RECENT_CERTIFICATES]
    )
    names = {
        machine_id: name or hostname
        for machine_id, name, hostname in LicenseIpBinding.objects.filter(
            license=license, machine_id__in={certificate.fingerprint for certificate in certificates}
        ).values_list("machine_id", "name", "hostname")
    }
    now = timezone.now()
    return Panel(
        title="Offline certificates issued",
        columns=["Issued", "Kind", "Machine", "Expires", "By"],
        rows=[
            [
                humanised_time(certificate.issued_at),
                admin_link(certificate, certificate.get_kind_display()),
                format_html("{} {}", names.get(certificate.fingerprint) or "", short_key(certificate.fingerprint)),
                _expiry(certificate, now),
                admin_link(certificate.issued_by) if certificate.issued_by else "the software (license key)",
            ]
            for certificate in certificates
        ],
        more_url=changelist_url(OfflineCertificate, license__id__exact=license.pk),
        empty="No offline certificate issued.",
        wide=True,
    )


contribute_panel(License, license_certificates_panel, order=55)
