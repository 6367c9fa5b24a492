"""Admin of license tokens (the policies themselves are fields of plans and licenses). Imported
at the end of ``licensing/admin.py``."""

from django.contrib import admin, messages

from celaest.admin import CelaestModelAdmin
from celaest.net import client_ip

from .models import LicenseToken
from .services import license_token_revoke


@admin.register(LicenseToken)
class LicenseTokenAdmin(CelaestModelAdmin):
    """Customers make tokens through the API (the token is shown to them once); staff see and
    revoke them. Only a prefix is ever shown."""

    list_display = ["name", "token_prefix", "license", "organization", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at", "created_at"]
    list_select_related = ["license", "organization"]
    search_fields = ["name", "token_prefix", "license__license_key", "organization__slug"]
    raw_id_fields = ["license", "organization", "created_by"]
    readonly_fields = [
        "organization", "license", "token_prefix", "created_by", "expires_at", "revoked_at", "last_used_at",
        "created_at", "updated_at",
    ]  # fmt: skip
    exclude = ["token_hash"]
    actions = ["revoke_tokens"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        ip_address = client_ip(request)
        for token in queryset.filter(revoked_at__isnull=True):
            license_token_revoke(token=token, actor=request.user, source="admin", ip_address=ip_address)
        self.message_user(request, "Selected tokens are revoked.", messages.SUCCESS)
