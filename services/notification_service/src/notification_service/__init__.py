"""Notification service: the mail courier and the notification resource API."""
