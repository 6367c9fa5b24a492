"""Admin of organizations and users (email login, soft delete)."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count, Q

from celaest.admin import CelaestModelAdmin, Panel, SoftDeleteAdminMixin, SoftDeleteModelForm, changelist_url
from celaest.admin_display import admin_link, humanised_time, status_badge

from .models import Organization, User

#: how many members the organization page lists (the rest: "See all")
MEMBER_ROWS = 15


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

    # The organization page tells its whole story: the panels other apps contribute (licenses,
    # AI use, orders and invoices, webhooks, API keys, audit trail) follow these two.
    def get_panels(self, request, obj):
        members = User.objects.filter(organization=obj, deleted_at__isnull=True).order_by("-is_active", "email")
        settings = obj.settings or {}
        summary = Panel(
            title="Organization",
            facts=[
                ("Slug", obj.slug),
                ("E-mail", obj.email or "—"),
                ("Status", status_badge("active" if obj.is_active else "disabled", None)),
                ("Members", f"{obj.live_users} of {obj.max_users}" if obj.max_users else obj.live_users),
                ("Currency", settings.get("currency", "USD")),
                ("Country", settings.get("country", "—")),
                ("Customer since", humanised_time(obj.created_at)),
            ],
        )
        people = Panel(
            title="Members",
            columns=["User", "Role", "Active", "Last login"],
            rows=[
                [
                    admin_link(user, user.email),
                    user.get_role_display(),
                    status_badge("active" if user.is_active else "disabled", None),
                    humanised_time(user.last_login),
                ]
                for user in members[:MEMBER_ROWS]
            ],
            more_url=changelist_url(User, organization__id__exact=obj.pk),
            empty="No member.",
        )
        return [summary, people, *super().get_panels(request, obj)]


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
