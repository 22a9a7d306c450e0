"""The FuseMax tile engine's exact cycle model for runs of query tiles (what the whole-layer top calls)."""

from __future__ import annotations

import pytest

from attnforge.sim.fusemax.cycle_model import engine_run_cycles, tile_schedule


def test_engine_run_of_one_tile_is_the_tile_schedule() -> None:
    assert engine_run_cycles(4, 4, 8, 8, [3], 64) == tile_schedule(4, 4, 8, 8, 3, 64).total_cycles


@pytest.mark.parametrize("n_tiles", [[1, 1], [4, 2, 3], [16] * 5])
def test_engine_run_is_no_longer_than_tiles_one_by_one(n_tiles: list[int]) -> None:
    """Back to back never costs more than running each tile alone with a one-cycle cfg hand-over between them."""
    alone = sum(tile_schedule(8, 8, 16, 16, n, 256).total_cycles + 1 for n in n_tiles) - 1
    got = engine_run_cycles(8, 8, 16, 16, n_tiles, 256)
    assert 0 < got <= alone
    assert engine_run_cycles(8, 8, 16, 16, [], 256) == 0
