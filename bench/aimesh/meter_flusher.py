"""The usage meter's flush as production runs it (the beat job ``licensing.flush_usage_meter``,
every second), for the benchmark: the gateway's counts and task rows reach PostgreSQL while the
load runs, and the CPU this takes is counted (``flush``) beside the server's."""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "celaest.settings")

import django  # noqa: E402

django.setup()

from licensing.meter import meter_flush  # noqa: E402

while True:
    started = time.monotonic()
    meter_flush()
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
