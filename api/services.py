"""The long-lived objects the API needs, built once at start-up and shared per request."""

from dataclasses import dataclass, field

from sqlalchemy import Engine
from temporalio.client import Client

from archive.service import Archive
from complaints.policy import ComplaintPolicy, default_complaint_policy
from config.settings import Settings
from ledger import Ledger
from notifications.service import NotificationService
from orders import OrderService
from policy import Policy


@dataclass
class Services:
    settings: Settings
    temporal: Client
    engine: Engine
    ledger: Ledger
    orders: OrderService
    notifications: NotificationService
    policy: Policy
    # Where closed cases are read from once Temporal has deleted them.
    archive: Archive | None = None
    # The complaint policy new complaints record (and new seller standings start under).
    complaint_policy: ComplaintPolicy = field(default_factory=default_complaint_policy)
