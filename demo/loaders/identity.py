"""Demo organizations and their people; the two printed logins."""

from datetime import timedelta

from demo.loaders.base import (
    ADMIN_EMAIL,
    DEMO_ORG_SLUG,
    OWNER_EMAIL,
    SECOND_ORG_SLUG,
    UNUSABLE_PASSWORD,
    DemoCredentials,
    DemoRun,
    person_email,
)
from identity.models import Organization, User

_ORGANIZATIONS = {
    DEMO_ORG_SLUG: {
        "name": "Demo Corp",
        "email": "billing@demo.celaest.local",
        "max_users": 25,
        "settings": {"currency": "USD", "country": "US", "hourly_rate": "45.00", "timezone": "America/Los_Angeles"},
    },
    SECOND_ORG_SLUG: {
        "name": "Acme Industrial",
        "email": "it@acme.celaest.local",
        "max_users": 10,
        "settings": {"currency": "USD", "country": "ES", "hourly_rate": "38.00", "timezone": "Europe/Madrid"},
    },
}

_PEOPLE = {
    DEMO_ORG_SLUG: (
        ("owner", "Dana", "Whitfield"),
        ("admin", "Marcus", "Lee"),
        ("member", "Priya", "Nair"),
        ("viewer", "Tom", "Becker"),
    ),
    SECOND_ORG_SLUG: (
        ("owner", "Lucía", "Romero"),
        ("admin", "Javier", "Ortiz"),
        ("member", "Ana", "Gil"),
        ("viewer", "Pablo", "Sanz"),
    ),
}

ROLE_SCOPES = {
    "owner": ["licenses:read", "licenses:write", "tasks:read", "tasks:run", "billing:read", "billing:write", "admin"],
    "admin": ["licenses:read", "licenses:write", "tasks:read", "tasks:run", "billing:read", "settings:write"],
    "member": ["licenses:read", "tasks:read", "tasks:run"],
    "viewer": ["licenses:read", "tasks:read", "roi:read"],
}


def seed_identity(demo: DemoRun, *, credentials: DemoCredentials) -> None:
    for slug, spec in _ORGANIZATIONS.items():
        org, _ = Organization.all_objects.get_or_create(
            slug=slug, defaults={**spec, "created_at": demo.now - timedelta(days=400)}
        )
        demo.orgs[slug] = org
        for role, first_name, last_name in _PEOPLE[slug]:
            email = person_email(slug, role)
            demo.users[email], _ = User.all_objects.get_or_create(
                email=email,
                defaults={
                    "organization": org,
                    "role": role,
                    "first_name": first_name,
                    "last_name": last_name,
                    "scopes": ROLE_SCOPES[role],
                    "preferences": {"theme": "system", "locale": "es-ES" if slug == SECOND_ORG_SLUG else "en-US"},
                    "password": UNUSABLE_PASSWORD,
                    "created_at": demo.now - timedelta(days=380),
                },
            )

    staff, _ = User.all_objects.get_or_create(
        email=ADMIN_EMAIL,
        defaults={"first_name": "Platform", "last_name": "Admin", "password": UNUSABLE_PASSWORD},
    )
    _ensure_login(staff, password=credentials.admin.password, is_staff=True, is_superuser=True, organization=None)
    demo.users[ADMIN_EMAIL] = staff
    _ensure_login(
        demo.users[OWNER_EMAIL],
        password=credentials.owner.password,
        is_staff=False,
        is_superuser=False,
        organization=demo.orgs[DEMO_ORG_SLUG],
        role=User.Role.OWNER,
    )


def _ensure_login(
    user: User,
    *,
    password: str,
    is_staff: bool,
    is_superuser: bool,
    organization: Organization | None,
    role: str | None = None,
) -> None:
    """Make the printed login work: live, active, the right flags, and the printed password.

    The password is only re-set when it differs, so existing sessions of the user survive a rerun.
    """
    wanted = {
        "is_active": True,
        "deleted_at": None,
        "is_staff": is_staff,
        "is_superuser": is_superuser,
        "organization_id": organization.pk if organization else None,
    }
    if role is not None:
        wanted["role"] = role
    changed = [name for name, value in wanted.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, wanted[name])
    if not user.check_password(password):
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save()
