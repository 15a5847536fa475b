"""Every dependency of the API as an ``Annotated`` alias; endpoints declare only these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from notification_service.services.courier import Courier
from notification_service.services.preferences import MutedKinds
from servicekit.auth import CurrentPrincipal, Principal, require_scopes
from servicekit.deps import DbSession, component
from servicekit.redis import Cache

#: The courier, to wake after a commit that made a delivery due.
CourierLoop = Annotated[Courier, Depends(component(Courier))]
#: The cache of every user's muted kinds.
Preferences = Annotated[Cache[MutedKinds], Depends(component(Cache))]
#: A principal holding the ``admin`` scope (403 otherwise).
AdminPrincipal = Annotated[Principal, Depends(require_scopes("admin"))]

__all__ = [
    "AdminPrincipal",
    "CourierLoop",
    "CurrentPrincipal",
    "DbSession",
    "Preferences",
]
