"""Plain helpers of the notification service tests (the fixtures stay in the conftest files).

Import them relatively, e.g. ``from ..utils.events import publish``. pytest rewrites the
asserts of these modules as it does those of conftest files, so a failing helper explains
itself.
"""

from __future__ import annotations

import pkgutil

import pytest

pytest.register_assert_rewrite(*(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)))
