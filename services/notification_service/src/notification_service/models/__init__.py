"""ORM models; importing this package registers every table on ``Base.metadata``."""

from notification_service.models.base import Base
from notification_service.models.delivery import Delivery, DeliveryStatus
from notification_service.models.inbox import inbox
from notification_service.models.recipient import Preferences, Recipient

__all__ = ["Base", "Delivery", "DeliveryStatus", "Preferences", "Recipient", "inbox"]
