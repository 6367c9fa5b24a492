"""Filtersets for identity endpoints."""

import django_filters

from .models import User


class MemberFilterSet(django_filters.FilterSet):
    class Meta:
        model = User
        fields = {"role": ["exact"], "is_active": ["exact"], "email": ["exact", "icontains"]}
