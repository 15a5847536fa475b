"""Types of the client-making fixtures."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

#: The ``client_with`` fixture: ``client_with(http={...})`` opens a client of an app whose
#: settings groups are updated.
ClientWith = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
