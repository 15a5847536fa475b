"""All SQL of the user service."""

from user_service.repositories.session import SessionRepository
from user_service.repositories.user import UserRepository

__all__ = ["SessionRepository", "UserRepository"]
