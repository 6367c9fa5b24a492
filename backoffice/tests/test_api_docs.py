"""The API documentation staff and customers read: operations grouped by area, staff-only last."""

import pytest
from django.urls import reverse

from celaest.api.schema import API_AREAS, OTHER_AREA, STAFF_PREFIX

pytestmark = pytest.mark.django_db


def test_operations_are_grouped_by_area_with_staff_only_groups_last(client):
    schema = client.get(reverse("schema"), HTTP_ACCEPT="application/json").json()
    tags = [tag["name"] for tag in schema["tags"]]
    assert len(tags) > 5 and "api" not in tags
    first_staff = next(index for index, tag in enumerate(tags) if tag.startswith(STAFF_PREFIX))
    assert all(tag.startswith(STAFF_PREFIX) for tag in tags[first_staff:])  # customers' areas first
    areas = {tag for tag, _segments in API_AREAS} | {OTHER_AREA}  # "Other": a path no area names yet
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in ("parameters", "summary", "description"):
                continue
            (tag,) = operation["tags"]
            assert tag.removeprefix(STAFF_PREFIX) in areas, (path, method, tag)
            assert tag.startswith(STAFF_PREFIX) == ("(staff)" in operation.get("summary", "")), (path, method)
    assert "/api/v1/licenses" in schema["paths"]
    assert schema["paths"]["/api/v1/licenses"]["get"]["tags"] == ["Licensing"]
