"""The WSGI entry point gunicorn serves."""

import subprocess
import sys

from django.conf import settings


def test_the_loaded_application_is_frozen_out_of_the_garbage_collectors_sight():
    """A full collection walking everything Django loaded took ~150 ms, stalling the process's
    requests: the entry point freezes what loading made."""
    code = "import gc, celaest.wsgi; print(gc.get_freeze_count())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, cwd=settings.BASE_DIR
    )
    assert int(result.stdout.strip().splitlines()[-1]) > 100_000
