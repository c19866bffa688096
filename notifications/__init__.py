from notifications.channels import Channel, DeliveryFailed, LogChannel, WebhookChannel, channels_from_names
from notifications.models import DeliveryStatus, OutboxMessage
from notifications.service import NotDeadLettered, NotificationService, UnknownNotification

__all__ = ["Channel", "DeliveryFailed", "DeliveryStatus", "LogChannel", "NotDeadLettered", "NotificationService",
           "OutboxMessage", "UnknownNotification", "WebhookChannel", "channels_from_names"]
