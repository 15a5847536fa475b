"""All SQL of the user service."""

from user_service.repositories.user import UserRepository

__all__ = ["UserRepository"]
