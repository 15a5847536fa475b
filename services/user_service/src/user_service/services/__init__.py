"""Business rules of the user service; each module exposes a singleton service."""
