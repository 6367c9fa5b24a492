"""drf-spectacular hooks."""


def document_paths_without_trailing_slash(endpoints, **kwargs):
    """API routes accept an optional trailing slash; document the canonical form, without it."""
    return [
        (path.rstrip("/") if path.startswith("/api/v1/") else path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]
