"""The admin sidebar, grouped by what staff do rather than by app.

Built on every page from the models registered with the admin (and that the user may see), so a
model registered later shows up without touching this module: in its app's area, or in
"Platform" when its app has none. Open collisions and failing webhooks show their count in red.
"""

from django.contrib import admin
from django.urls import reverse

from ipcontrol.models import LicenseCollision
from settings_app.models import Webhook

#: The areas, in sidebar order: (title, icon of the area, app labels whose models it holds).
AREAS = [
    ("Customers", "groups", ["identity", "auth"]),
    ("Licensing", "key", ["licensing", "ipcontrol"]),
    ("AI", "psychology", ["aimesh", "operations", "analytics"]),
    ("Commerce", "storefront", ["marketplace", "billing"]),
    ("Platform", "settings", ["settings_app", "audit"]),
]
#: Models that belong with another area than their app's (by ``app_label.model_name``).
MODEL_AREAS = {
    "settings_app.userapikey": "Customers",
    "settings_app.usersession": "Customers",
    "settings_app.webhook": "Customers",
    "settings_app.webhookdelivery": "Customers",
}
#: Icons of the models staff open most; the others show their area's icon.
MODEL_ICONS = {
    "identity.organization": "apartment",
    "identity.user": "person",
    "licensing.license": "key",
    "licensing.subscriptionplan": "sell",
    "ipcontrol.licensecollision": "warning",
    "ipcontrol.licensevalidation": "verified",
    "ipcontrol.offlinecertificate": "workspace_premium",
    "ipcontrol.licenseipbinding": "computer",
    "aimesh.aimodel": "smart_toy",
    "aimesh.aiapikey": "vpn_key",
    "aimesh.prompt": "chat",
    "operations.processedtask": "task_alt",
    "operations.taskbatch": "stacks",
    "analytics.roimetric": "trending_up",
    "marketplace.product": "inventory_2",
    "billing.order": "shopping_cart",
    "billing.invoice": "receipt_long",
    "billing.coupon": "confirmation_number",
    "settings_app.webhook": "webhook",
    "settings_app.webhookdelivery": "outbox",
    "settings_app.userapikey": "password",
    "audit.auditlog": "history",
    "audit.systemevent": "monitor_heart",
    "settings_app.systemconfig": "tune",
    "settings_app.featureflag": "flag",
}
FALLBACK_AREA = "Platform"


def _needs_a_look() -> dict[str, int]:
    """What waits for staff, by model: open collisions, webhooks failing now (one count each)."""
    return {
        "ipcontrol.licensecollision": LicenseCollision.objects.filter(resolved_at__isnull=True).count(),
        "settings_app.webhook": Webhook.objects.filter(failing_since__isnull=False).count(),
    }


def sidebar_navigation(request) -> list[dict]:
    """Unfold's ``SIDEBAR["navigation"]``: the dashboard, then one group per area."""
    area_of_app = {label: title for title, _icon, labels in AREAS for label in labels}
    icon_of_area = {title: icon for title, icon, _labels in AREAS}
    items: dict[str, list[dict]] = {title: [] for title, _icon, _labels in AREAS}
    app_list = admin.site.get_app_list(request)
    waiting = _needs_a_look() if app_list else {}
    for app in app_list:
        for model in app["models"]:
            if not model.get("admin_url"):
                continue
            label = f"{app['app_label']}.{model['object_name'].lower()}"
            area = MODEL_AREAS.get(label) or area_of_app.get(app["app_label"], FALLBACK_AREA)
            item = {
                "title": model["name"],
                "icon": MODEL_ICONS.get(label, icon_of_area[area]),
                "link": model["admin_url"],
            }
            if waiting.get(label):
                item.update(badge=str(waiting[label]), badge_variant="danger")
            items[area].append(item)
    groups = [
        {
            "items": [{"title": "Dashboard", "icon": "dashboard", "link": reverse("admin:index")}],
        }
    ]
    for title, _icon, _labels in AREAS:
        if items[title]:
            group = {
                "title": title,
                "collapsible": True,
                "items": sorted(items[title], key=lambda item: str(item["title"]).lower()),
            }
            waiting_here = sum(int(item.get("badge", 0)) for item in items[title])
            if waiting_here:  # seen with the group folded too
                group.update(badge=str(waiting_here), badge_variant="danger")
            groups.append(group)
    return groups
