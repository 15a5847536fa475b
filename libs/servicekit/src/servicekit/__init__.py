"""servicekit: the chassis every service imports (settings, database, Redis, HTTP edge, auth)."""
