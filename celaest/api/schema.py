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
