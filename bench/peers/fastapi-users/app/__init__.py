"""fastapi-users' SQLAlchemy example (``examples/sqlalchemy`` in its repository), for make bench."""
