"""Moved to ``celaest.bulk`` (shared with operations); kept for the renewals until they import it there."""

from celaest.bulk import rows_update  # noqa: F401
