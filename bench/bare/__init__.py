"""The frozen bare baseline: a plain Temporal workflow of the same shape as the dispute path of
2026-12-01 (main at 79fd4b8), driven straight from a Temporal client (`BareDisputes`) or
behind a thin HTTP endpoint (`bench.bare.http`).

Frozen from one dispute recorded through the API on that commit (register the order, open,
`seller-agree-refund`; SQLite, default policy): 67 history events; 2 updates (`opened` by
update-with-start, `seller_agree_refund`); 8 activities run one after another: freeze_escrow 1,
notify 4, settle_dispute 1, release_order 1, archive_final_case 1; 5 search-attribute upsert
events (DisputeState, NextDeadline, MediatorId, AwaitingMediator, Urgent, NeedsSenior at opening
and again at closing, Settlement once the money moved, and the TemporalChangeVersion upserts of
2 `workflow.patched` markers: before the Settlement upsert and before the archive); no timer,
since the seller answered while the opening's notifications ran (the case's clock starts a
deadline timer only when it gets to wait, and so does this one's). The opening's update answers
once freeze_escrow is done; seller_agree_refund's answers once settle, release and its two
notifications are done; the archive runs after it.

Do not change this shape to follow the product: it is the yardstick the product is measured
against (issue 12). Each activity inserts one row into its own table (`bench.bare.worker`).
"""
