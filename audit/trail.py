"""The readable audit trail of a dispute, built from its Temporal history alone.

Each entry is one thing that happened, in order, with the event id and time that tie
it back to the raw history: the workflow's input (who opened it, under which policy
version), each accepted Update (the action, its actor and the API request that carried
it), each timer (started, fired, or cancelled because something happened first), each
activity with its input and result (notifications with their ids and recipients,
ledger postings with their transfer ids), search-attribute changes, and the close.

Rejected actions are not in the trail because they are not in the history: a
validator refuses them before anything is recorded.

Nothing here is a closed list of what the workflow does. Update, activity and signal
names come from the history, payloads are decoded with the project's data converter
without knowing their types, and an event type this module does not know is rendered
generically from its attributes. Ledger activities are recognised by the activity
names `LedgerActivities` defines, whatever new ones it grows.
"""

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from config.temporal import payload_value
from reporting.surveys import invitation_ids

# Workflow-task and activity-start events are the machinery of execution; they are
# left out of the trail unless asked for (`mechanics=True`).
_MECHANICS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
}

_CLOSING = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}

_ACTIVITY_ENDS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "completed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "failed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "canceled",
}


class TrailActor(BaseModel):
    role: str | None = None
    party_id: str | None = None
    senior: bool = False
    # The API request that carried the action (X-Request-ID), to tie it to access logs.
    request_id: str | None = None

    def __str__(self) -> str:
        who = f"{'senior ' if self.senior else ''}{self.role or 'someone'} {self.party_id or '?'}"
        return who + (f" (request {self.request_id})" if self.request_id else "")


class TimelineEntry(BaseModel):
    """What staff read of one trail entry: the words, who, and the ids; not the raw payloads."""

    event_id: int
    at: datetime
    # opened, action, action_completed, action_failed, timer_started, timer_fired,
    # timer_canceled, activity, state, code_version, closed, signal, workflow_task_failed,
    # and event for anything else.
    category: str
    # The update, activity or signal name, or the timer's summary.
    name: str | None = None
    text: str
    actor: TrailActor | None = None
    # Other events this entry stands for or refers to (a timer's start, an activity's schedule).
    related_event_ids: list[int] = Field(default_factory=list)
    notification_ids: list[str] = Field(default_factory=list)
    transfer_ids: list[str] = Field(default_factory=list)
    # The run the event belongs to: event ids count from 1 in each run of a continued case.
    run_id: str | None = None


class TrailEntry(TimelineEntry):
    # The Temporal event type, e.g. "WorkflowExecutionUpdateAccepted".
    event_type: str
    data: dict[str, Any] = Field(default_factory=dict)


class Trail(BaseModel):
    dispute_id: str
    run_id: str | None
    workflow_type: str | None
    # running, completed, failed, timed_out, canceled, terminated, continued_as_new
    status: str
    policy_version: str | None
    opened_by: TrailActor | None
    opened_at: datetime | None
    closed_at: datetime | None
    final_state: str | None
    event_count: int
    # Every notification id and ledger transfer id the history records, in order.
    notification_ids: list[str]
    transfer_ids: list[str]
    entries: list[TrailEntry]
    # Every run of the case, oldest first (more than one once it continued as new).
    runs: list[str] = Field(default_factory=list)


def build_trail(history: WorkflowHistory | Sequence[WorkflowHistory], *, mechanics: bool = False) -> Trail:
    """The trail of one run, or of a whole case: all its runs, oldest first, as one."""
    runs = [history] if isinstance(history, WorkflowHistory) else list(history)
    trails = [_Builder(run, mechanics).build() for run in runs]
    first, last = trails[0], trails[-1]
    return last.model_copy(update={
        "dispute_id": first.dispute_id, "policy_version": first.policy_version, "opened_by": first.opened_by,
        "opened_at": first.opened_at, "event_count": sum(t.event_count for t in trails),
        "notification_ids": [n for t in trails for n in t.notification_ids],
        "transfer_ids": list(dict.fromkeys(i for t in trails for i in t.transfer_ids)),
        "entries": [e.model_copy(update={"run_id": t.run_id}) for t in trails for e in t.entries],
        "runs": [t.run_id for t in trails if t.run_id],
    })


class Timeline(BaseModel):
    """A page of a case's trail, oldest first, as mediators and auditors read it on the case."""

    dispute_id: str
    status: str
    policy_version: str | None
    final_state: str | None
    # Entries in the whole trail; this page holds `entries[offset:offset + limit]` of them.
    total: int
    offset: int
    limit: int
    entries: list[TimelineEntry]


def build_timeline(runs: Sequence[WorkflowHistory], *, offset: int, limit: int) -> Timeline:
    trail = build_trail(runs)
    return Timeline(dispute_id=trail.dispute_id, status=trail.status, policy_version=trail.policy_version,
                    final_state=trail.final_state, total=len(trail.entries), offset=offset, limit=limit,
                    entries=[TimelineEntry(**e.model_dump(include=set(TimelineEntry.model_fields)))
                             for e in trail.entries[offset:offset + limit]])


# ---- decoding --------------------------------------------------------------------------


def decode_payload(payload: Payload) -> Any:
    """A payload as plain JSON-like data, whatever type wrote it."""
    try:
        return payload_value(payload)
    except Exception:
        encoding = payload.metadata.get("encoding", b"").decode("utf-8", "replace")
        return {"undecodable_payload": {"encoding": encoding, "bytes": len(payload.data)}}


def decode_payloads(payloads: Iterable[Payload]) -> list[Any]:
    return [decode_payload(p) for p in payloads]


def _first(payloads: Iterable[Payload]) -> Any:
    values = decode_payloads(payloads)
    return values[0] if values else None


def _generic(message: Any) -> dict[str, Any]:
    """Any protobuf message as a dict, with every payload in it decoded."""
    return _decode_embedded(MessageToDict(message))


def _decode_embedded(value: Any) -> Any:
    if isinstance(value, dict):
        metadata = value.get("metadata")
        if isinstance(metadata, dict) and "encoding" in metadata and set(value) <= {"metadata", "data", "externalPayloads"}:
            try:
                payload = Payload(metadata={k: base64.b64decode(v) for k, v in metadata.items()},
                                  data=base64.b64decode(value.get("data", "")))
                return decode_payload(payload)
            except (ValueError, TypeError):
                return value
        return {k: _decode_embedded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_embedded(v) for v in value]
    return value


def _event_type_name(event: HistoryEvent) -> str:
    try:
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    except ValueError:  # a newer server's event type
        attributes = event.WhichOneof("attributes") or f"event_type_{event.event_type}"
        return "".join(part.title() for part in attributes.removesuffix("_event_attributes").split("_"))
    return "".join(part.title() for part in name.split("_"))


def _actor(value: Any) -> TrailActor | None:
    if not isinstance(value, dict):
        return None
    try:
        return TrailActor.model_validate({k: value.get(k) for k in ("role", "party_id", "request_id")}
                                         | {"senior": bool(value.get("senior", False))})
    except ValueError:
        return None


def _money(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("amount"), int) and isinstance(value.get("currency"), str):
        try:
            from money import Money

            return str(Money(amount=value["amount"], currency=value["currency"]))
        except ValueError:
            return f"{value['amount']} {value['currency']} (minor units)"
    return str(value)


def _duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def _ledger_activity_names() -> set[str]:
    from activities.ledger import LedgerActivities

    names = set()
    for attribute in vars(LedgerActivities).values():
        definition = getattr(attribute, "__temporal_activity_definition", None)
        if definition is not None and definition.name:
            names.add(definition.name)
    return names


def transfer_ids_in(result: Any) -> list[str]:
    """Ledger transfer ids in an activity result: `transfer_ids`, `transfer_id`, or the
    result itself when it is an id or a list of ids."""
    if isinstance(result, str):
        return [result]
    if isinstance(result, list):
        return [v for v in result if isinstance(v, str)]
    if isinstance(result, dict):
        found = [v for v in result.get("transfer_ids") or [] if isinstance(v, str)]
        if isinstance(result.get("transfer_id"), str):
            found.append(result["transfer_id"])
        return found
    return []


def _as_notifications(value: Any) -> list[dict[str, Any]]:
    """The messages an activity's input holds: one change's (`notify_all`) or a single one (`notify`)."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        return [m for m in value["messages"] if _as_notifications(m)]
    if isinstance(value, dict) and isinstance(value.get("id"), str) and "recipient_id" in value:
        return [value]
    return []


def _without(value: Any, *keys: str) -> Any:
    return {k: v for k, v in value.items() if k not in keys} if isinstance(value, dict) else value


# ---- building --------------------------------------------------------------------------


class _Builder:
    def __init__(self, history: WorkflowHistory, mechanics: bool):
        self.history = history
        self.mechanics = mechanics
        self.entries: list[TrailEntry] = []
        self.by_id: dict[int, HistoryEvent] = {}
        self.ledger_activities = _ledger_activity_names()
        self.updates: dict[str, tuple[str, int]] = {}  # update id -> (name, accepted event id)
        self.timers: dict[str, tuple[str | None, int]] = {}  # timer id -> (summary, started event id)
        self.search_attributes: dict[str, Any] = {}
        self.last_action: TrailEntry | None = None
        self.workflow_type: str | None = None
        self.policy_version: str | None = None
        self.opened_by: TrailActor | None = None
        self.opened_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.status = "running"
        self.final_state: str | None = None
        self.dispute_id = history.workflow_id
        self.finished_activities: set[int] = set()

    def build(self) -> Trail:
        for event in self.history.events:
            self.by_id[event.event_id] = event
        for event in self.history.events:
            if event.event_type in _ACTIVITY_ENDS:
                self.finished_activities.add(self._activity_end_attributes(event).scheduled_event_id)
        for event in self.history.events:
            self._event(event)
        self.entries.sort(key=lambda e: e.event_id)
        notification_ids = [n for e in self.entries for n in e.notification_ids]
        transfer_ids = list(dict.fromkeys(t for e in self.entries for t in e.transfer_ids))
        run_id = None
        try:
            run_id = self.history.run_id
        except RuntimeError:
            pass
        return Trail(
            dispute_id=self.dispute_id, run_id=run_id, workflow_type=self.workflow_type, status=self.status,
            policy_version=self.policy_version, opened_by=self.opened_by, opened_at=self.opened_at,
            closed_at=self.closed_at, final_state=self.final_state, event_count=len(self.history.events),
            notification_ids=notification_ids, transfer_ids=transfer_ids, entries=self.entries,
        )

    def add(self, event: HistoryEvent, category: str, text: str, **fields: Any) -> TrailEntry:
        entry = TrailEntry(event_id=event.event_id, at=event.event_time.ToDatetime().replace(tzinfo=UTC),
                           event_type=_event_type_name(event), category=category, text=text, **fields)
        self.entries.append(entry)
        return entry

    def _event(self, event: HistoryEvent) -> None:
        kind = event.event_type
        E = EventType
        if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            self._started(event)
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            self._update_accepted(event)
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            self._update_completed(event)
        elif kind == E.EVENT_TYPE_TIMER_STARTED:
            self._timer_started(event)
        elif kind in (E.EVENT_TYPE_TIMER_FIRED, E.EVENT_TYPE_TIMER_CANCELED):
            self._timer_ended(event)
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.event_id not in self.finished_activities:
                self._activity(event, None)
        elif kind in _ACTIVITY_ENDS:
            scheduled = self.by_id.get(self._activity_end_attributes(event).scheduled_event_id)
            if scheduled is not None:
                self._activity(scheduled, event)
            else:
                self._generic(event)
        elif kind == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            self._search_attributes(event)
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            self._signal(event)
        elif kind in _CLOSING:
            self._closed(event)
        elif kind == E.EVENT_TYPE_MARKER_RECORDED and self._patch_marker(event):
            pass
        elif kind in _MECHANICS:
            if self.mechanics:
                self._generic(event)
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            cause = (WorkflowTaskFailedCause.Name(attrs.cause) if attrs.cause in WorkflowTaskFailedCause.values()
                     else str(attrs.cause))
            self.add(event, "workflow_task_failed",
                     f"A worker failed a workflow task ({cause}): {attrs.failure.message}",
                     data=_generic(attrs))
        else:
            self._generic(event)

    # -- the case ----------------------------------------------------------------------

    def _started(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_started_event_attributes
        self.workflow_type = attrs.workflow_type.name
        self.opened_at = event.event_time.ToDatetime().replace(tzinfo=UTC)
        dispute = _first(attrs.input.payloads)
        if not isinstance(dispute, dict):
            self.add(event, "opened", f"{self.workflow_type} started", name=self.workflow_type,
                     data={"input": dispute})
            return
        self.dispute_id = dispute.get("dispute_id") or self.dispute_id
        policy = dispute.get("policy") if isinstance(dispute.get("policy"), dict) else {}
        self.policy_version = policy.get("version")
        self.opened_by = _actor(dispute.get("opened_by"))
        request = dispute.get("request") if isinstance(dispute.get("request"), dict) else {}
        order = dispute.get("order") if isinstance(dispute.get("order"), dict) else {}
        for name, payload in attrs.search_attributes.indexed_fields.items():
            self.search_attributes[name] = decode_payload(payload)
        carried = dispute.get("carried")
        if isinstance(carried, dict):
            text = (f"Dispute {self.dispute_id} continued as new from run {attrs.continued_execution_run_id}: "
                    f"{carried.get('state')}, {carried.get('events_total')} events so far; "
                    f"policy {self.policy_version or '?'}")
            self.add(event, "continued", text, name=self.workflow_type, data={
                "dispute_id": self.dispute_id, "continued_from": attrs.continued_execution_run_id,
                "state": carried.get("state"), "events_total": carried.get("events_total"),
                "policy_version": self.policy_version})
            return
        what = ", ".join(str(v) for v in (request.get("kind"), request.get("reason")) if v)
        text = (f"Dispute {self.dispute_id} opened by {self.opened_by or 'an unknown actor'} on order "
                f"{order.get('order_id', '?')} (buyer {order.get('buyer_id', '?')}, seller "
                f"{order.get('seller_id', '?')}): {what}, {_money(request.get('amount'))} requested; "
                f"policy {self.policy_version or '?'}")
        self.add(event, "opened", text, name=self.workflow_type, actor=self.opened_by, data={
            "dispute_id": self.dispute_id, "order": order, "request": request,
            "policy_version": self.policy_version, "policy": policy,
            "search_attributes": dict(self.search_attributes), "task_queue": attrs.task_queue.name,
        })

    def _closed(self, event: HistoryEvent) -> None:
        self.status = _CLOSING[event.event_type]
        self.closed_at = event.event_time.ToDatetime().replace(tzinfo=UTC)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result = _first(event.workflow_execution_completed_event_attributes.result.payloads)
            view = result if isinstance(result, dict) else {}
            self.final_state = view.get("state")
            resolution = view.get("resolution") if isinstance(view.get("resolution"), dict) else {}
            decided_by = _actor(resolution.get("decided_by"))
            by = (f"decided by {decided_by}" if decided_by
                  else f"decided by the {resolution['timer']} timer" if resolution.get("timer") else "")
            parts = [f"Dispute closed: {self.final_state or 'result recorded'}"]
            if resolution:
                parts.append(f"refunded {_money(resolution.get('refunded'))}, released to the seller "
                             f"{_money(resolution.get('released_to_seller'))}")
                if by:
                    parts.append(by)
                if resolution.get("reason"):
                    parts.append(f"because {resolution['reason']}")
            data = _without(view, "events") if view else {"result": result}
            if view and isinstance(view.get("events"), list):
                # The view lists the newest events only; events_total (absent before) counts them all.
                data["events_recorded"] = view.get("events_total") or len(view["events"])
            self.add(event, "closed", "; ".join(parts), actor=decided_by, data=data)
        else:
            self.add(event, "closed", f"Workflow {self.status.replace('_', ' ')}",
                     data=_generic(getattr(event, event.WhichOneof("attributes") or "")))

    # -- actions -------------------------------------------------------------------------

    def _update_accepted(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_update_accepted_event_attributes
        request = attrs.accepted_request
        name = request.input.name
        update_id = request.meta.update_id
        self.updates[update_id] = (name, event.event_id)
        args = decode_payloads(request.input.args.payloads)
        first = args[0] if args else None
        actor = _actor(first.get("actor")) if isinstance(first, dict) else None
        if actor is None and name == "opened":
            actor = self.opened_by
        text = f"{actor or 'The caller'}: {name}"
        arguments = [_without(a, "actor") for a in args]
        details = ", ".join(f"{k}={_short(v)}" for a in arguments if isinstance(a, dict) for k, v in a.items()
                            if v not in (None, [], {}))
        if details:
            text += f" ({details})"
        entry = self.add(event, "action", text, name=name, actor=actor, data={
            "update_id": update_id, "client_identity": request.meta.identity, "arguments": arguments,
        })
        if name != "opened":
            self.last_action = entry

    def _update_completed(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_update_completed_event_attributes
        update_id = attrs.meta.update_id
        name, accepted = self.updates.get(update_id, (None, None))
        related = [accepted] if accepted else []
        if attrs.outcome.HasField("failure"):
            self.add(event, "action_failed", f"{name or update_id} failed: {attrs.outcome.failure.message}",
                     name=name, related_event_ids=related,
                     data={"update_id": update_id, "failure": _generic(attrs.outcome.failure)})
            return
        result = _first(attrs.outcome.success.payloads)
        state = result.get("state") if isinstance(result, dict) else None
        text = f"{name or update_id} answered" + (f": the dispute is {state}" if state else "")
        self.add(event, "action_completed", text, name=name, related_event_ids=related,
                 data={"update_id": update_id, "state": state} if isinstance(result, dict)
                 else {"update_id": update_id, "result": result})

    def _signal(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_signaled_event_attributes
        args = decode_payloads(attrs.input.payloads)
        first = args[0] if args else None
        actor = _actor(first.get("actor")) if isinstance(first, dict) else None
        self.last_action = self.add(event, "signal", f"{actor or 'Signal'}: {attrs.signal_name}",
                                    name=attrs.signal_name, actor=actor,
                                    data={"arguments": args, "identity": attrs.identity})

    # -- timers --------------------------------------------------------------------------

    def _timer_started(self, event: HistoryEvent) -> None:
        attrs = event.timer_started_event_attributes
        summary = decode_payload(event.user_metadata.summary) if event.user_metadata.HasField("summary") else None
        summary = summary if isinstance(summary, str) else None
        self.timers[attrs.timer_id] = (summary, event.event_id)
        delay = attrs.start_to_fire_timeout.ToTimedelta()
        at = event.event_time.ToDatetime().replace(tzinfo=UTC) + delay
        self.add(event, "timer_started",
                 f"Timer {attrs.timer_id} started: {summary or 'no summary'}, fires in {_duration(delay)} "
                 f"(at {at.isoformat()}) unless something happens first",
                 name=summary, data={"timer_id": attrs.timer_id, "fires_at": at.isoformat(),
                                     "start_to_fire_seconds": delay.total_seconds()})

    def _timer_ended(self, event: HistoryEvent) -> None:
        fired = event.event_type == EventType.EVENT_TYPE_TIMER_FIRED
        attrs = event.timer_fired_event_attributes if fired else event.timer_canceled_event_attributes
        summary, started = self.timers.get(attrs.timer_id, (None, attrs.started_event_id))
        data: dict[str, Any] = {"timer_id": attrs.timer_id}
        related = [started]
        if fired:
            text = f"Timer {attrs.timer_id} fired: {summary or 'no summary'} (nobody acted in time)"
            if summary and summary.startswith("reminder"):
                text = f"Timer {attrs.timer_id} fired: {summary}"
            category = "timer_fired"
        else:
            cause = self.last_action if self.last_action and self.last_action.event_id > started else None
            text = f"Timer {attrs.timer_id} cancelled: {summary or 'no summary'}"
            if cause is not None:
                text += f", superseded by {cause.name} (event {cause.event_id})"
                related.append(cause.event_id)
                data["cause_event_id"] = cause.event_id
            else:
                text += ", superseded by a change in the dispute"
            category = "timer_canceled"
        self.add(event, category, text, name=summary, related_event_ids=related, data=data)

    # -- activities ----------------------------------------------------------------------

    @staticmethod
    def _activity_end_attributes(event: HistoryEvent) -> Any:
        return getattr(event, event.WhichOneof("attributes") or "")

    def _activity(self, scheduled: HistoryEvent, end: HistoryEvent | None) -> None:
        attrs = scheduled.activity_task_scheduled_event_attributes
        name = attrs.activity_type.name
        args = decode_payloads(attrs.input.payloads)
        first = args[0] if args else None
        outcome = _ACTIVITY_ENDS.get(end.event_type, "scheduled") if end is not None else "scheduled"
        data: dict[str, Any] = {"activity_id": attrs.activity_id, "outcome": outcome, "input": args}
        related = [scheduled.event_id]
        attempt = None
        if end is not None:
            end_attrs = self._activity_end_attributes(end)
            started = self.by_id.get(end_attrs.started_event_id)
            if started is not None and started.HasField("activity_task_started_event_attributes"):
                attempt = started.activity_task_started_event_attributes.attempt
                data["attempt"] = attempt
                related.append(started.event_id)
        result = None
        notification_ids: list[str] = []
        transfer_ids: list[str] = []
        if outcome == "completed":
            assert end is not None
            result = _first(end.activity_task_completed_event_attributes.result.payloads)
            data["result"] = result
            if name in self.ledger_activities:
                transfer_ids = transfer_ids_in(result)
        elif end is not None and outcome != "scheduled":
            data["failure"] = _generic(self._activity_end_attributes(end))
        notifications = _as_notifications(first)
        if notifications and outcome == "completed":
            notification_ids = [n["id"] for n in notifications]
        elif name == "archive_final_case" and outcome == "completed" and (
                "survey_window" in first["policy"] or "sha256" in first["policy"]):
            # The final case's archive write also invited its parties to the survey (reporting.surveys);
            # a policy recorded before the survey has no survey_window, and such a case invited no one
            # (a policy ref, `sha256`, came later still).
            notification_ids = invitation_ids(first["view"]["dispute_id"])
        text = _activity_text(name, outcome, first, result, notifications, transfer_ids, attempt)
        if not notifications and notification_ids:
            text += f"; the survey invited the buyer and the seller (notifications {', '.join(notification_ids)})"
        target = end if end is not None else scheduled
        self.add(target, "activity", text, name=name, related_event_ids=related,
                 notification_ids=notification_ids, transfer_ids=transfer_ids, data=data)

    # -- search attributes ---------------------------------------------------------------

    def _search_attributes(self, event: HistoryEvent) -> None:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        # By name: a protobuf map has no order, and the same history read back (exported,
        # archived) must give the same trail.
        values = {name: decode_payload(fields[name]) for name in sorted(fields)}
        changed = {k: v for k, v in values.items() if self.search_attributes.get(k) != v}
        self.search_attributes.update(values)
        if "DisputeState" in values:
            self.final_state = values["DisputeState"]
        words = []
        for name, value in changed.items():
            words.append(f"{name} → {value}" if value is not None else f"{name} cleared")
        text = "Search attributes: " + ("; ".join(words) if words else "unchanged")
        self.add(event, "state", text, data={"set": values, "changed": changed})

    # -- code versions -------------------------------------------------------------------

    def _patch_marker(self, event: HistoryEvent) -> bool:
        """A `workflow.patched(id)` marker: this case runs the code path introduced by `id`."""
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name != "core_patch":
            return False
        details = {name: decode_payloads(payloads.payloads) for name, payloads in attrs.details.items()}
        patch = next((v[0] for v in details.values() if v and isinstance(v[0], dict) and "id" in v[0]), None)
        if patch is None:
            return False
        self.add(event, "code_version",
                 f"Code change {patch['id']!r} applies to this case (workflow.patched"
                 + (", deprecated)" if patch.get("deprecated") else ")"),
                 name=patch["id"], data={"patch_id": patch["id"], "deprecated": bool(patch.get("deprecated"))})
        return True

    # -- anything else -------------------------------------------------------------------

    def _generic(self, event: HistoryEvent) -> None:
        attributes = event.WhichOneof("attributes")
        data = _generic(getattr(event, attributes)) if attributes else {}
        self.add(event, "event", _event_type_name(event), data=data)


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, dict) and set(value) == {"amount", "currency"}:
        return _money(value)
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _activity_text(name: str, outcome: str, first: Any, result: Any, notifications: list[dict],
                   transfer_ids: list[str], attempt: int | None) -> str:
    retries = f" after {attempt} attempts" if attempt and attempt > 1 else ""
    if outcome == "scheduled":
        return f"Activity {name} scheduled, not finished yet"
    if outcome != "completed":
        return f"Activity {name} {outcome.replace('_', ' ')}{retries}"
    if notifications:
        first_message = notifications[0]
        recipients = ", ".join(f"{n.get('recipient_role', '?')} {n.get('recipient_id', '?')}" for n in notifications)
        ids = ", ".join(n["id"] for n in notifications)
        return (f"Notified {recipients}: {first_message.get('subject') or first_message.get('kind', '')} "
                f"(notification{'s' if len(notifications) > 1 else ''} {ids}){retries}")
    if transfer_ids:
        return f"Ledger: {name} posted transfer{'s' if len(transfer_ids) > 1 else ''} {', '.join(transfer_ids)}{retries}"
    if isinstance(result, dict) and "transfer_id" in result and result["transfer_id"] is None:
        return f"Ledger: {name} moved nothing{retries}"
    if isinstance(result, dict) and "transfer_ids" in result:
        return f"Ledger: {name} moved nothing{retries}"
    return f"Activity {name} completed{retries}"
