"""Pagination: page numbers for ordinary lists, cursors for append-only high-volume tables."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CreatedAtCursorPagination(CursorPagination):
    """Stable, index-friendly paging of time series (newest first) that never counts rows."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
