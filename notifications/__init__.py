"""Notifications: the outbox, its channels, the dispatcher and its operators' CLI. Modules import
what they need (`notifications.service.NotificationService`); this package root stays empty so
`disputeflow` reaches `notifications.cli`'s parser without loading the outbox."""
