"""The admin sidebar, grouped by what staff do rather than by app.

Built on every page from the models registered with the admin (and that the user may see), so a
model registered later shows up without touching this module: in its app's area, or in
"Platform" when its app has none.
"""

from django.contrib import admin
from django.urls import reverse

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


def sidebar_navigation(request) -> list[dict]:
    """Unfold's ``SIDEBAR["navigation"]``: the dashboard, then one group per area."""
    area_of_app = {label: title for title, _icon, labels in AREAS for label in labels}
    icon_of_area = {title: icon for title, icon, _labels in AREAS}
    items: dict[str, list[dict]] = {title: [] for title, _icon, _labels in AREAS}
    for app in admin.site.get_app_list(request):
        for model in app["models"]:
            if not model.get("admin_url"):
                continue
            label = f"{app['app_label']}.{model['object_name'].lower()}"
            area = MODEL_AREAS.get(label) or area_of_app.get(app["app_label"], FALLBACK_AREA)
            items[area].append(
                {
                    "title": model["name"],
                    "icon": MODEL_ICONS.get(label, icon_of_area[area]),
                    "link": model["admin_url"],
                }
            )
    groups = [
        {
            "items": [{"title": "Dashboard", "icon": "dashboard", "link": reverse("admin:index")}],
        }
    ]
    for title, _icon, _labels in AREAS:
        if items[title]:
            groups.append(
                {
                    "title": title,
                    "collapsible": True,
                    "items": sorted(items[title], key=lambda item: str(item["title"]).lower()),
                }
            )
    return groups
