"""Admin of which license pays for AI gateway calls: a key's bound license and an organization's
designated one. Staff choose them here; every change goes through ``operations.ai_licenses`` (the
same checks and audit as the API)."""

from django import forms
from django.contrib import admin

from celaest.admin import CelaestModelAdmin
from celaest.errors import InvalidInput

from .ai_licenses import ai_license_designate, api_key_license_bind, license_check_choosable
from .models import ApiKeyLicense, OrganizationAILicense


class PayingLicenseForm(forms.ModelForm):
    """Refuses a license that cannot pay for the organization (another's, or not live)."""

    def organization_id(self, cleaned: dict):
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        license, organization_id = cleaned.get("license"), self.organization_id(cleaned)
        if license is not None and organization_id is not None:
            try:
                license_check_choosable(license, organization_id)
            except InvalidInput as error:
                self.add_error("license", error.message)
        return cleaned


class ApiKeyLicenseForm(PayingLicenseForm):
    class Meta:
        model = ApiKeyLicense
        fields = ["api_key", "license"]

    def organization_id(self, cleaned: dict):
        api_key = cleaned.get("api_key") or getattr(self.instance, "api_key", None)
        return api_key.user.organization_id if api_key is not None else None


class OrganizationAILicenseForm(PayingLicenseForm):
    class Meta:
        model = OrganizationAILicense
        fields = ["organization", "license"]

    def organization_id(self, cleaned: dict):
        organization = cleaned.get("organization")
        if organization is not None:
            return organization.pk
        return self.instance.organization_id if self.instance.pk else None


@admin.register(ApiKeyLicense)
class ApiKeyLicenseAdmin(CelaestModelAdmin):
    form = ApiKeyLicenseForm
    list_display = ["api_key", "organization", "license", "updated_at"]
    list_select_related = ["api_key", "organization", "license"]
    list_filter = ["organization"]
    search_fields = ["api_key__name", "api_key__key_prefix", "organization__slug", "license__license_key"]
    raw_id_fields = ["api_key"]
    autocomplete_fields = ["license"]
    readonly_fields = ["organization", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # The key is chosen once: bind another key with a row of its own.
        return [*self.readonly_fields, "api_key"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        saved = api_key_license_bind(api_key=obj.api_key, license=obj.license, actor=request.user)
        obj.pk, obj.organization_id = saved.pk, saved.organization_id

    def delete_model(self, request, obj):
        api_key_license_bind(api_key=obj.api_key, license=None, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("api_key"):
            self.delete_model(request, obj)


@admin.register(OrganizationAILicense)
class OrganizationAILicenseAdmin(CelaestModelAdmin):
    form = OrganizationAILicenseForm
    list_display = ["organization", "license", "updated_at"]
    list_select_related = ["organization", "license"]
    search_fields = ["organization__name", "organization__slug", "license__license_key"]
    autocomplete_fields = ["organization", "license"]
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        saved = ai_license_designate(organization=obj.organization, license=obj.license, actor=request.user)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        ai_license_designate(organization=obj.organization, license=None, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("organization"):
            self.delete_model(request, obj)
