"""What a policy ref saves: `python -m audit.bench_policy_payloads`.

Prints the bytes of a dispute's workflow start input under the default policy recorded
whole and as its `PolicyRef`, then records the seller-agree-refund path both ways (through
the API and worker, as `audit.record_scenarios` does) and prints each history's payload
bytes (every payload's data and metadata, as the server stores them, unencrypted).
Bytes are deterministic, so one round of each is the measurement.
"""

import asyncio
import tempfile
from pathlib import Path

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

from audit import history as histories
from audit.record_scenarios import SELLER, Recorder, record
from config.temporal import PLAIN_CONVERTER
from identity import Actor, Role
from money import Money
from policy import default_policy, versions
from workflows.models import DisputeInput, DisputeKind, OrderSnapshot, ReasonCategory, RefundRequest

# The default policy under a version nothing ships: recorded whole, the same size as before refs.
WHOLE = default_policy().model_copy(update={"version": "cn-2026.x"})


def payload_bytes(message: Message) -> int:
    if isinstance(message, Payload):
        return message.ByteSize()
    total = 0
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = [v for v in value.values() if isinstance(v, Message)]
        else:
            values = [value] if isinstance(value, Message) else list(value)
        total += sum(payload_bytes(v) for v in values)
    return total


def start_input_bytes(policy) -> int:
    order = OrderSnapshot(order_id="ORD-1", buyer_id="alice", seller_id="acme",
                          paid=Money(amount=10_000, currency="CNY"), shipped=True)
    request = RefundRequest(kind=DisputeKind.REFUND_ONLY, reason=ReasonCategory.QUALITY,
                            amount=Money(amount=10_000, currency="CNY"), description="The kettle leaks from the base.")
    dispute = DisputeInput(dispute_id="dsp-ORD-1-1", order=order, request=request,
                           opened_by=Actor(role=Role.BUYER, party_id="alice"), policy=policy)
    return PLAIN_CONVERTER.payload_converter.to_payloads([dispute])[0].ByteSize()


async def _refund(r: Recorder, scenario: str) -> str:
    d = await r.open(scenario)
    await r.act(d, "seller-agree-refund", SELLER, {"note": "Sorry about that"})
    return d


async def whole(r: Recorder) -> str:
    r.base_policy = WHOLE
    return await _refund(r, "whole")


async def ref(r: Recorder) -> str:
    r.base_policy = default_policy()
    return await _refund(r, "ref")


def main() -> None:
    before, after = start_input_bytes(WHOLE), start_input_bytes(versions.ref_or_body(default_policy()))
    print(f"start input, default policy: whole {before} B, ref {after} B ({after / before:.2f}x)")
    with tempfile.TemporaryDirectory() as tmp:
        figures = {}
        for name, scenario in (("whole", whole), ("ref", ref)):  # one at a time: each sets the base policy
            [path] = asyncio.run(record(Path(tmp), [name], {name: scenario}))
            history = histories.read_file(path)
            figures[name] = (len(history.events), sum(payload_bytes(e) for e in history.events))
    (events_b, bytes_b), (events_a, bytes_a) = figures["whole"], figures["ref"]
    print(f"seller-agree-refund history payloads: whole {bytes_b} B in {events_b} events, "
          f"ref {bytes_a} B in {events_a} events ({bytes_a / bytes_b:.2f}x, {bytes_b - bytes_a} B less)")


if __name__ == "__main__":
    main()
