"""One transfer at a time through the ledger's only write entry point, `create_transfers`,
for tests that build their ledgers move by move; and moves run at once, for races."""

import threading
from collections.abc import Callable

from ledger import Ledger, TransferPhase, TransferRequest, TransferResult


def _one(ledger: Ledger, **fields: object) -> TransferResult:
    return ledger.create_transfers([TransferRequest(**fields)])[0]


def transfer(ledger: Ledger, id: str, debit: str, credit: str, amount: int, currency: str, code: str,
             **fields: object) -> TransferResult:
    """Move `amount` from `debit` to `credit`, posted at once."""
    return _one(ledger, id=id, debit_account_id=debit, credit_account_id=credit, amount=amount, currency=currency,
                code=code, **fields)


def hold(ledger: Ledger, id: str, debit: str, credit: str, amount: int, currency: str, code: str,
         **fields: object) -> TransferResult:
    """A pending (two-phase) transfer."""
    return transfer(ledger, id, debit, credit, amount, currency, code, phase=TransferPhase.pending, **fields)


def post(ledger: Ledger, id: str, pending_id: str, amount: int | None = None, **fields: object) -> TransferResult:
    """Post `amount` (default: all) of a pending transfer."""
    return _one(ledger, id=id, pending_id=pending_id, amount=amount, phase=TransferPhase.post_pending, **fields)


def void(ledger: Ledger, id: str, pending_id: str, **fields: object) -> TransferResult:
    """Release a pending transfer entirely."""
    return _one(ledger, id=id, pending_id=pending_id, phase=TransferPhase.void_pending, **fields)


def at_once(*moves: Callable[[], object]) -> list[object]:
    """Run the moves at once; each one's result or the exception it raised."""
    start = threading.Barrier(len(moves))
    results: list[object] = [None] * len(moves)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = moves[index]()
        except Exception as error:  # noqa: BLE001 - the test inspects what each move raised
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(moves))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
