"""Filtersets for identity endpoints."""

from celaest.api.filters import ApiFilterSet

from .models import User


class MemberFilterSet(ApiFilterSet):
    class Meta:
        model = User
        fields = {"role": ["exact"], "is_active": ["exact"], "email": ["exact", "icontains"]}
