"""What the benchmarks compute and print: percentiles, a history's shape and payload bytes, ratios."""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..1) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_ms(values: Sequence[float]) -> str:
    """p50/p95/p99 of `values` (seconds), in milliseconds."""
    return "/".join(f"{percentile(values, q) * 1000:.0f}" for q in (0.50, 0.95, 0.99))


def ratio(product: float, baseline: float) -> float:
    return product / baseline if baseline else math.inf


def verdict(value: float, target: float, *, at_least: bool) -> str:
    met = value >= target if at_least else value <= target
    return f"{value:.2f}x (target {'>=' if at_least else '<='} {target}x: {'met' if met else 'MISSED'})"


def payload_bytes(message: Message) -> int:
    """The bytes of every payload's data in `message` (an event), at any depth, maps included."""
    if isinstance(message, Payload):
        return len(message.data)
    total = 0
    for descriptor, value in message.ListFields():
        if descriptor.type != descriptor.TYPE_MESSAGE:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            value_field = descriptor.message_type.fields_by_name["value"]
            if value_field.type == value_field.TYPE_MESSAGE:
                total += sum(payload_bytes(item) for item in value.values())
        elif isinstance(value, Message):
            total += payload_bytes(value)
        else:  # a repeated field
            total += sum(payload_bytes(item) for item in value)
    return total


@dataclass
class Shape:
    """What one workflow history holds: the counts the bare workflow is frozen from."""

    events: int = 0
    payload_bytes: int = 0
    activities: Counter = field(default_factory=Counter)
    updates: int = 0
    upserts: int = 0
    markers: int = 0
    timers_started: int = 0
    timers_fired: int = 0
    timers_canceled: int = 0

    @classmethod
    def of(cls, history: WorkflowHistory) -> "Shape":
        shape = cls(events=len(history.events))
        for event in history.events:
            shape.payload_bytes += payload_bytes(event)
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                shape.activities[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                shape.updates += 1
            elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                shape.upserts += 1
            elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
                shape.markers += 1
            elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
                shape.timers_started += 1
            elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
                shape.timers_fired += 1
            elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
                shape.timers_canceled += 1
        return shape

    def describe(self) -> str:
        activities = ", ".join(f"{name} {count}" for name, count in sorted(self.activities.items()))
        return (f"{self.events} events, {sum(self.activities.values())} activities ({activities}), "
                f"{self.updates} updates, {self.upserts} search-attribute upserts, {self.markers} markers, "
                f"timers {self.timers_started} started / {self.timers_fired} fired / {self.timers_canceled} cancelled")
