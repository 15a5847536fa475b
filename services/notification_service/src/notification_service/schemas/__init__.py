"""Request, response and event models."""
