"""Ready-made policies and loading a policy from a file.

These read packaged data or files: call them where a case is opened (API, worker,
CLI) and put the resulting Policy into the workflow input (``policy.versions.ref_or_body``:
the ref of a shipped version). Workflow code never calls them.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from policy.calendars import load_calendar
from policy import versions
from policy.model import Policy, Window

__all__ = ["default_policy", "demo_policy", "load_policy", "PolicyLoadError", "DEFAULT_VERSION", "DEMO_VERSION"]

# A new version whenever the data changes: cn-2026.2 adds the 2027 statutory holidays;
# demo-3 the survey window.
DEFAULT_VERSION = "cn-2026.2"
DEMO_VERSION = "demo-3"


class PolicyLoadError(ValueError):
    """A policy source could not be read or is not a valid Policy."""


def default_policy() -> Policy:
    """The domain defaults on the mainland-China working-day calendar."""
    return Policy(version=DEFAULT_VERSION, calendar=load_calendar("cn"))


def demo_policy() -> Policy:
    """The default policy's structure with every window shortened to seconds, for
    demos and tests. Working-day windows become exact seconds, so nothing waits for a
    weekend to pass."""
    s = Window.seconds
    return Policy(
        version=DEMO_VERSION,
        seller_response_not_shipped=s(60),
        seller_response_shipped_refund_only=s(75),
        seller_response_return_and_refund=s(90),
        buyer_response_after_refusal=s(60),
        buyer_response_to_offer=s(60),
        buyer_return_shipment=s(90),
        seller_confirm_return=s(120),
        mediator_take=s(60),
        mediator_take_urgent=s(20),
        mediator_rule=s(180),
        evidence_response=s(60),
        evidence_response_after_buyer=s(30),
        appeal=s(90),
        reopen_within=s(300),
        survey_window=s(300),
        reminder_before=timedelta(seconds=10),
        calendar=load_calendar("cn"),
    )


_PRESETS = {"default": default_policy, "demo": demo_policy}


def load_policy(source: str | os.PathLike[str]) -> Policy:
    """``"default"``, ``"demo"``, a shipped version (``policy.versions.SHIPPED``), or the
    path of a JSON file holding a Policy (as written by ``policy.model_dump_json()``).
    Raises ``PolicyLoadError`` naming the source and what is wrong with it."""
    if isinstance(source, str) and source in _PRESETS:
        return _PRESETS[source]()
    if isinstance(source, str) and source in versions.SHIPPED:
        return versions.shipped_policy(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyLoadError(
            f"policy {str(source)!r}: no such file (expected 'default', 'demo', a shipped version or a path to a Policy JSON file)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyLoadError(f"policy file {str(path)!r}: cannot read it: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyLoadError(
            f"policy file {str(path)!r}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(data, dict):
        raise PolicyLoadError(f"policy file {str(path)!r}: expected a JSON object, got {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyLoadError(f"policy file {str(path)!r}: not a valid Policy: {problems}") from exc
