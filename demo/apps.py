"""The demo and benchmark data loader (``seed_demo``): last in the app order, since it calls every app."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo data"
