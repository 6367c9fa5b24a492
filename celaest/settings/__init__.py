"""Default settings: the embedded first-run setup unless the environment says otherwise.

Production uses ``celaest.settings.production``; the test suite ``celaest.settings.test``.
"""

from .base import *  # noqa: F401,F403
