"""Admin of organizations and users (email login, soft delete)."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count, Q

from celaest.admin import CelaestModelAdmin, SoftDeleteAdminMixin, SoftDeleteModelForm

from .models import Organization, User


@admin.register(Organization)
class OrganizationAdmin(SoftDeleteAdminMixin, CelaestModelAdmin):
    list_display = ["name", "slug", "email", "user_count", "max_users", "is_active", "created_at", "is_deleted"]
    list_filter = ["is_active", "created_at"]
    search_fields = ["name", "slug", "email"]
    ordering = ["name"]  # the user count's GROUP BY drops the model's default ordering
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["id", "created_at", "updated_at", "deleted_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "email", "is_active", "max_users"]}),
        ("Settings", {"fields": ["settings"], "description": "Currency, country, hourly rate for ROI, ..."}),
        ("Record", {"fields": ["id", "created_at", "updated_at", "deleted_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(live_users=Count("users", filter=Q(users__deleted_at__isnull=True), distinct=True))
        )

    @admin.display(description="users", ordering="live_users")
    def user_count(self, obj):
        return obj.live_users


class EmailFormMixin:
    def clean_email(self):
        # Stored lower-cased, as UserManager does, so one address cannot exist in two spellings.
        return self.cleaned_data["email"].strip().lower()


class UserCreationForm(EmailFormMixin, AdminUserCreationForm, SoftDeleteModelForm):
    """Email + password twice (or no usable password), like Django's user creation form."""

    class Meta:
        model = User
        fields = ["email"]


class UserAdminChangeForm(EmailFormMixin, UserChangeForm, SoftDeleteModelForm):
    class Meta:
        model = User
        fields = ["email", "password"]  # the admin's fieldsets add the rest


@admin.register(User)
class UserAdmin(SoftDeleteAdminMixin, DjangoUserAdmin, CelaestModelAdmin):
    form = UserAdminChangeForm
    add_form = UserCreationForm
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "preferences"]}),
        ("Organization", {"fields": ["organization", "role", "scopes"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Important dates", {"fields": ["last_login", "created_at", "updated_at", "deleted_at"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "usable_password", "password1", "password2"]}),
        ("Organization", {"fields": ["organization", "role"]}),
    ]
    readonly_fields = ["last_login", "created_at", "updated_at", "deleted_at"]
    list_display = ["email", "full_name", "organization", "role", "is_active", "is_staff", "last_login", "is_deleted"]
    list_filter = ["role", "is_active", "is_staff", "is_superuser", "groups"]
    list_select_related = ["organization"]
    search_fields = ["email", "first_name", "last_name", "organization__name", "organization__slug"]
    autocomplete_fields = ["organization"]
    ordering = ["email"]

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj):
        return f"{obj.first_name} {obj.last_name}".strip()
