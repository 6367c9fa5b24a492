"""Shared REST API building blocks: base viewsets that own tenant scoping and permissions,
pagination, routers. Apps declare viewsets on top of these; they never filter by tenant by hand."""
