"""The OpenAPI schema validates without warnings; Swagger UI and ReDoc work offline."""

import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = (tmp_path / "schema.yaml").read_text()
    assert "/api/v1/me:" in schema


def test_every_operation_has_a_summary(client):
    schema = APIClient().get("/api/schema/?format=json").json()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in {"get", "post", "put", "patch", "delete"} and not operation.get("summary")
    ]
    assert missing == []


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_load_their_assets_from_this_server(page):
    response = APIClient().get(page)
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert sources, "the page references no script"
    for source in sources:
        assert source.startswith("/static/"), f"{source} is not served locally"
        asset = APIClient().get(source)
        assert asset.status_code == 200, source
