from notifications.channels import Channel, LogChannel, WebhookChannel, channels_from_names
from notifications.models import OutboxMessage
from notifications.service import NotificationService

__all__ = ["Channel", "LogChannel", "WebhookChannel", "NotificationService", "OutboxMessage", "channels_from_names"]
