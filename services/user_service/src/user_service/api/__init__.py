"""HTTP layer: thin endpoints that validate, call a service and return a schema."""
