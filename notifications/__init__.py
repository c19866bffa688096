from notifications.channels import Channel, LogChannel, channels_from_names
from notifications.models import OutboxMessage
from notifications.service import NotificationService

__all__ = ["Channel", "LogChannel", "NotificationService", "OutboxMessage", "channels_from_names"]
