"""All SQL of the service, one repository per model."""

from notification_service.repositories.delivery import DeliveryRepository
from notification_service.repositories.recipient import PreferencesRepository, RecipientRepository

__all__ = ["DeliveryRepository", "PreferencesRepository", "RecipientRepository"]
