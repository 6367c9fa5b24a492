"""The base of every API filterset: a query parameter is checked against the type of the column
it filters before it reaches the database, so a malformed value is the caller's error (a 400 in
the one error shape, through DRF's ``DjangoFilterBackend``), never a server error.

django-filter maps model fields to filters that leave some values unchecked: an IP address
column gets a plain text filter, and ``?ip_address=abc`` reached psycopg, whose ``Inet`` raised
``ValueError`` (a 500); a boolean filter reads ``?is_active=flase`` as "no filter" and answers
every row; ``?status__in=bogus`` matches nothing instead of saying the status does not exist;
Python accepts UTC offsets up to ±23:59, PostgreSQL only up to ±15:59. ``ApiFilterSet`` maps
each column type to a form field that validates it, for the filters generated from ``Meta`` and
for the ones an app declares alike. Every app's filtersets derive from it (a contract test
checks), and ``tests/test_api_contract.py`` sends malformed values to every filter of every
endpoint.
"""

from copy import deepcopy
from datetime import UTC, datetime, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS

#: the widest UTC offset PostgreSQL accepts in a timestamp
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or ``1``/``0``, any case); anything else is refused. django-filter's
    boolean widgets turn an unknown word into "no filter", which answers every row to a typo."""

    _VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, bool):
            return value
        try:
            return self._VALUES[str(value).strip().lower()]
        except KeyError:
            raise ValidationError("Expected true or false.", code="invalid") from None

    def validate(self, value):
        pass  # None (absent) is allowed; the values were checked by to_python


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class IPAddressFilter(django_filters.CharFilter):
    """An IPv4 or IPv6 address, checked (and IPv6 normalized) as the column stores it."""

    field_class = forms.GenericIPAddressField


class IntegerFilter(django_filters.NumberFilter):
    """A whole number: ``?rating=4.5`` is an error, not a silent ``4``."""

    field_class = forms.IntegerField


class ChoiceInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """``?status__in=active,revoked``: every value must be one of the column's choices."""


_API_FILTER_DEFAULTS = deepcopy(FILTER_FOR_DBFIELD_DEFAULTS)
_API_FILTER_DEFAULTS.update(
    {
        models.GenericIPAddressField: {"filter_class": IPAddressFilter},
        models.BooleanField: {"filter_class": BooleanFilter},  # isnull lookups too
        models.DateTimeField: {"filter_class": django_filters.IsoDateTimeFilter},
        models.SmallIntegerField: {"filter_class": IntegerFilter},
        models.IntegerField: {"filter_class": IntegerFilter},
        models.BigIntegerField: {"filter_class": IntegerFilter},
        models.PositiveIntegerField: {"filter_class": IntegerFilter},
        models.PositiveSmallIntegerField: {"filter_class": IntegerFilter},
        models.PositiveBigIntegerField: {"filter_class": IntegerFilter},
    }
)


def _utc(value, errors: list[str]):
    if isinstance(value, datetime) and value.tzinfo is not None:
        if abs(value.utcoffset()) > MAX_UTC_OFFSET:
            errors.append("UTC offsets range from -15:59 to +15:59.")
            return value
        return value.astimezone(UTC)
    return value


class ApiFilterForm(forms.Form):
    """Times reach the database in UTC; an offset PostgreSQL refuses is a field error here."""

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            errors: list[str] = []
            if isinstance(value, slice):  # a from/to range
                value = slice(_utc(value.start, errors), _utc(value.stop, errors))
            else:
                value = _utc(value, errors)
            if errors:
                self.add_error(name, errors[0])
            else:
                cleaned[name] = value
        return cleaned


class ApiFilterSet(django_filters.FilterSet):
    """Base of every API filterset (see the module docstring)."""

    FILTER_DEFAULTS = _API_FILTER_DEFAULTS

    @classmethod
    def filter_for_lookup(cls, field, lookup_type):
        if lookup_type == "in" and getattr(field, "choices", None):
            return ChoiceInFilter, {"choices": field.choices}
        return super().filter_for_lookup(field, lookup_type)

    @classmethod
    def get_filters(cls):
        filters = super().get_filters()
        for filter_ in filters.values():
            # Declared ones too (``open = BooleanFilter(field_name="resolved_at", ...)``).
            if isinstance(filter_, django_filters.BooleanFilter):
                filter_.field_class = StrictBooleanField
        return filters

    def get_form_class(self):
        form_class = super().get_form_class()
        return type(form_class.__name__, (ApiFilterForm, form_class), {})
