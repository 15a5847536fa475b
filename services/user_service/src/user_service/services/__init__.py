"""Business rules of the user service; each service is built at start-up with what it uses."""
