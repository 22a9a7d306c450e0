"""The pieces of mappings.build: the query-block search, the spill decision, and the errors they lead to.

Numbers are small enough to check by hand: P = 1024 queries on P0 = 256 columns (blocks of 1 to 4 column tiles),
10 fixed words and 100 M-fiber words per query.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from attnforge.mappings import build_schedule, get_mapping
from attnforge.mappings.build import (
    BlockFit,
    BlockProblem,
    _given_problem,
    _largest_block,
    _query_block,
    _query_block_v,
    _spill_decision,
)
from attnforge.sim.specs.arch import load_arch
from attnforge.sim.specs.errors import SpecError

P, P0, FIXED, FIBER = 1024, 256, 10.0, 100.0


@pytest.mark.parametrize(
    ("p", "given", "words", "expected"),
    [
        (1024, 0, 110.0 * 1024, 1024),  # the whole of P fits: one block
        (1024, 0, 110.0 * 512, 512),  # two column tiles fit: two blocks of two
        (1024, 0, 110.0 * 768, 512),  # three fit, but P needs two blocks anyway: balanced, two tiles each
        (768, 0, 110.0 * 512, 512),  # 3 column tiles, 2 fit: blocks of 2 and 1 (no need to divide 3)
        (17 * 256, 0, 110.0 * 8 * 256, 6 * 256),  # 17 tiles, 8 fit: three blocks of 6, 6 and 5, not 17 of one
        (1000, 0, 110.0 * 1024, 1024),  # a ragged P is padded to whole column tiles
        (100, 0, 110.0 * 100, 100),  # a P shorter than P0 is one block of P
        (100, 0, 110.0 * 99, None),  # ... which must fit whole
        (1024, 0, 110.0 * 255, None),  # not even one column tile fits
        (1024, 512, 110.0 * 1024, 512),  # the user's block, when it fits
        (1024, 512, 110.0 * 511, None),
    ],
)
def test_largest_block(p: int, given: int, words: float, expected: int | None) -> None:
    assert _largest_block(p, P0, given, 110.0, words) == expected


@pytest.mark.parametrize(("p", "given", "expected"), [(1024, 512, None), (1000, 1000, None), (1024, 0, None),
                                                      (1024, 300, BlockProblem.GIVEN_DOES_NOT_TILE)])
def test_given_block_must_tile(p: int, given: int, expected: BlockProblem | None) -> None:
    assert _given_problem(p, P0, given) is expected


def test_ragged_tile_count_takes_balanced_blocks_not_one_tile_each() -> None:
    """17 column tiles with room for 8 per block: 3 blocks (K and V stream 3 times), not the 17 one-tile blocks
    that a search over the divisors of 17 would be left with."""
    assert _query_block(17 * P0, P0, FIXED, FIBER, 8 * P0 * 110.0, 0.5, 0) == BlockFit(6 * P0, 0.0)


def test_largest_block_that_holds_its_fibers() -> None:
    # 256 * 110 = 28160 words fit, 512 * 110 do not.
    assert _query_block(P, P0, FIXED, FIBER, 30000.0, 0.5, 0) == BlockFit(256, 0.0)
    assert _query_block(P, P0, FIXED, FIBER, 1024 * 110.0, 0.5, 0) == BlockFit(1024, 0.0)


def test_partial_spill_keeps_the_smallest_block() -> None:
    # Room for 3/4 of the smallest block's fibers after its fixed state: a quarter spills.
    buffer = 256 * FIXED + 256 * FIBER * 0.75
    assert _query_block(P, P0, FIXED, FIBER, buffer, 0.5, 0) == BlockFit(256, 0.25)


def test_full_spill_past_threshold_grows_the_block_back() -> None:
    # 3/4 would spill (> 0.5): all fibers go off chip and the block grows to the largest whose fixed state fits.
    buffer = 256 * FIXED + 256 * FIBER * 0.25  # 8960 words: 512 * 10 fit, 1024 * 10 do not
    assert _query_block(P, P0, FIXED, FIBER, buffer, 0.5, 0) == BlockFit(512, 1.0)
    # The same buffer under a threshold that tolerates the spill keeps the partial spill.
    assert _query_block(P, P0, FIXED, FIBER, buffer, 0.9, 0) == BlockFit(256, 0.75)


def test_spill_decision_without_fibers_never_spills() -> None:
    assert _spill_decision(256, 1024, FIXED, 0.0, 3000.0, 0.5) == BlockFit(256, 0.0)


def test_buffer_too_small_for_the_fixed_state() -> None:
    assert _query_block(P, P0, FIXED, FIBER, 2000.0, 0.5, 0) is BlockProblem.BUFFER_TOO_SMALL
    assert _spill_decision(256, 256, FIXED, FIBER, 2000.0, 0.5) is BlockProblem.BUFFER_TOO_SMALL


def test_vectorised_search_reports_each_point() -> None:
    rows, spill, problems = _query_block_v(np.array([1024, 1024]), P0, FIXED, FIBER, np.array([30000.0, 2000.0]), 0.5, 0)
    assert rows.dtype == np.int64 and spill.dtype == np.float64
    assert rows[0] == 256 and spill[0] == 0.0
    assert list(problems) == [None, BlockProblem.BUFFER_TOO_SMALL]


def _build(mapping_name: str, arch_overrides: dict[str, object] | None = None, **mapping_changes: object) -> object:
    mapping = replace(get_mapping(mapping_name), **mapping_changes)
    arch = load_arch("fusemax", arch_overrides)
    return build_schedule(mapping, arch, batch=1, heads=1, p=np.array([300, 1000]), m=1000, e=64, f=64)


def test_build_schedule_names_the_buffer_when_nothing_fits() -> None:
    with pytest.raises(SpecError) as err:
        _build("flat", {"buffer.bytes": 1000})
    assert err.value.field == "arch.buffer.bytes"
    assert "cannot hold the smallest tile of mapping flat" in err.value.problem


def test_build_schedule_names_the_tile_that_does_not_divide() -> None:
    # 1000 is the whole of the second point's P, but not a whole number of column tiles for the first.
    with pytest.raises(SpecError) as err:
        _build("flat", query_block=1000)
    assert err.value.field == "--tile query_block"


def test_build_schedule_reports_chosen_blocks() -> None:
    s = _build("flat")
    assert list(s.tiles["query_block"]) == [512, 1024]  # P = 300 pads to two 256-query column tiles
    assert list(s.tiles["query_blocks"]) == [1, 1]
