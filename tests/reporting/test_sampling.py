"""The spot-check draw: a share of every mediator's closed cases, the same for the same seed."""

import math

from reporting.quality import stratified_draw

# 7 mediators handling 3 to 120 cases each, and 40 cases no mediator handled.
POPULATION = {f"dsp-ORD-{m}-{n:03d}-1": f"mediator-{m}" for m in range(7) for n in range(3 + m * m * 2 + m)}
POPULATION |= {f"dsp-ORD-none-{n:03d}-1": None for n in range(40)}


def test_each_mediator_is_represented_by_the_share_of_their_cases() -> None:
    drawn = stratified_draw(POPULATION, 0.10, seed=42)
    for mediator in {m or "" for m in POPULATION.values()}:
        theirs = {d for d, m in POPULATION.items() if (m or "") == mediator}
        assert len(drawn[mediator]) == math.ceil(0.10 * len(theirs)) >= 1
        assert set(drawn[mediator]) <= theirs
    assert sum(len(ids) for ids in drawn.values()) >= 0.10 * len(POPULATION)


def test_the_same_seed_draws_the_same_cases_and_another_seed_others() -> None:
    assert stratified_draw(POPULATION, 0.10, seed=42) == stratified_draw(dict(reversed(POPULATION.items())), 0.10, 42)
    assert stratified_draw(POPULATION, 0.10, seed=42) != stratified_draw(POPULATION, 0.10, seed=43)
