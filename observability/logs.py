"""Structured logs: one JSON object a line on standard error, with the request id, dispute id,
workflow and run ids wherever they apply.

No personal data goes into a log line: code logs ids, states and counts, never names, phones,
addresses, free text or evidence (tests/test_observability.py drives a case full of them and
scans every line).
"""

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow

# Set by the API for the request being handled.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
DISPUTE_ID: ContextVar[str | None] = ContextVar("dispute_id", default=None)

# The workflow type whose workflow ids are dispute ids.
_DISPUTE_WORKFLOW = "DisputeWorkflow"


class ContextFields(logging.Filter):
    """Puts the ids of what is being done on every record, flattening the Temporal SDK's."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, str | None] = {"request_id": REQUEST_ID.get(), "dispute_id": DISPUTE_ID.get()}
        # The SDK's workflow.logger and activity.logger attach these dicts.
        running = getattr(record, "temporal_workflow", None) or {}
        if activity.in_activity():
            info = activity.info()
            running = {"workflow_id": info.workflow_id, "run_id": info.workflow_run_id,
                       "workflow_type": info.workflow_type, "activity_type": info.activity_type}
        if running:
            fields |= {"workflow_id": running.get("workflow_id"), "run_id": running.get("run_id"),
                       "activity_type": running.get("activity_type")}
            if running.get("workflow_type") == _DISPUTE_WORKFLOW:
                fields["dispute_id"] = fields["dispute_id"] or running.get("workflow_id")
        for name in ("temporal_workflow", "temporal_activity", "color_message"):
            record.__dict__.pop(name, None)
        for name, value in fields.items():
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def json_handler(stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{message}", style="{",
                                       rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    handler.addFilter(ContextFields())
    return handler


def configure_logging(level: str) -> None:
    """Route every logger (uvicorn's too) through one JSON handler on the root logger."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(json_handler())
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The ids are fields of the JSON object; the SDK need not append its info dict to messages.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
