"""drf-spectacular hooks."""


def document_paths_without_trailing_slash(endpoints, **kwargs):
    """API routes accept an optional trailing slash; document the canonical form, without it."""
    return [
        (path.rstrip("/") if path.startswith("/api/v1/") else path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]


def crud_schema(one: str, many: str, *, staff_reads: bool = False, **summaries: str) -> dict:
    """``extend_schema_view`` arguments summarising a viewset's six CRUD operations, e.g.
    ``crud_schema("a tax rate", "tax rates", destroy="Delete an unused tax rate (staff)")``.
    Writes are marked "(staff)", reads too with ``staff_reads``; ``summaries`` replace any."""
    from drf_spectacular.utils import extend_schema

    reads = " (staff)" if staff_reads else ""
    defaults = {
        "list": f"List {many}{reads}",
        "retrieve": f"Get {one}{reads}",
        "create": f"Create {one} (staff)",
        "update": f"Replace {one} (staff)",
        "partial_update": f"Update {one} (staff)",
        "destroy": f"Delete {one} (staff)",
    }
    return {action: extend_schema(summary=summary) for action, summary in {**defaults, **summaries}.items()}


#: The API's areas, in the order the docs list them: (tag, first path segments under /api/v1/).
#: Staff-only operations (summaries ending "(staff)") go to "Staff: <area>" groups, listed after
#: every customer-facing area; a path no area names lands in "Other", so new ones stay visible.
API_AREAS = [
    ("Account and organization", {"me", "organization", "members", "invitations", "sessions", "api-keys"}),
    ("Licensing", {"licenses", "license-bindings", "license-collisions", "license-tokens", "license-usage",
                   "license-validations", "plans"}),
    ("AI tasks and prompts", {"tasks", "batches", "prompts", "ai-models"}),
    ("AI gateway (OpenAI-compatible)", {"v1"}),
    ("Analytics", {"roi-metrics", "telemetry"}),
    ("Marketplace", {"products", "product-categories", "product-releases", "product-reviews", "my-product-reviews",
                     "assets", "asset-downloads"}),
    ("Billing", {"orders", "invoices", "credit-notes", "payment-methods", "coupons", "tax-rates", "payment-gateways",
                 "billing", "subscriptions"}),
    ("Webhooks", {"webhooks", "webhook-deliveries"}),
    ("Platform", {"feature-flags", "flags", "system-config", "system-events", "audit-logs", "ai-keys"}),
]  # fmt: skip
OTHER_AREA = "Other"
STAFF_PREFIX = "Staff: "
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _area_of(path: str) -> str:
    parts = path.strip("/").split("/")
    segment = parts[2] if parts[:2] == ["api", "v1"] and len(parts) > 2 else parts[0]
    return next((tag for tag, segments in API_AREAS if segment in segments), OTHER_AREA)


def tag_operations_by_area(result, generator, request, public):
    """Postprocessing hook: each operation tagged with its area, staff-only ones in their own
    groups after the customers' (instead of one tag, "api", for every operation)."""
    used = set()
    for path, operations in result.get("paths", {}).items():
        area = _area_of(path)
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            staff = "(staff)" in operation.get("summary", "")
            tag = f"{STAFF_PREFIX}{area}" if staff else area
            operation["tags"] = [tag]
            used.add(tag)
    areas = [tag for tag, _segments in API_AREAS] + [OTHER_AREA]
    order = areas + [f"{STAFF_PREFIX}{tag}" for tag in areas]
    result["tags"] = [{"name": tag} for tag in order if tag in used]
    return result
