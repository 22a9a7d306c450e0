"""The FuseMax tile engine's exact cycle model for runs of query tiles (what the whole-layer top calls)."""

from __future__ import annotations

import numpy as np
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


def _head(m: int, p: int = 8, seed: int = 3):
    from attnforge.sim.fusemax.golden import FixedPointConfig, quantize_attention

    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(s) for s in ((p, 8), (m, 8), (m, 8)))
    fx = FixedPointConfig(e=8, f=8, rows=4, max_keys=64)
    return (q, k, v), quantize_attention(q, k, v, fx), fx


@pytest.mark.parametrize("m", [1, 13, 30])
def test_golden_masks_the_last_key_tile(m: int) -> None:
    """A key count that is not a multiple of rows: the golden model masks the padding (error within the bound)."""
    from attnforge.sim.fusemax.golden import attention_fx, dequantize_output, error_vs_float

    floats, qa, fx = _head(m)
    out, _ = attention_fx(qa, fx)
    assert error_vs_float(dequantize_output(out, qa, fx), *floats).within_bound


def test_golden_causal() -> None:
    """Causal with the diagonal past every key is no mask at all; at -2 the first two queries see nothing (out 0)
    and the others match float attention under the same mask."""
    from attnforge.sim.fusemax.golden import attention_fx, dequantize_output, error_vs_float, visible_keys

    floats, qa, fx = _head(13)
    assert (attention_fx(qa, fx, causal=True, diag=13)[0] == attention_fx(qa, fx)[0]).all()
    out, _ = attention_fx(qa, fx, causal=True, diag=-2)
    assert not out[:2].any()
    vis = visible_keys(8, 13, True, -2)
    rep = error_vs_float(dequantize_output(out[2:], qa, fx), floats[0][2:], floats[1], floats[2], vis[2:])
    assert rep.within_bound
    out0, _ = attention_fx(qa, fx, causal=True, diag=0)
    assert (out0 != attention_fx(qa, fx)[0]).any()


def test_head_beats_pack_the_cfg_fields() -> None:
    from attnforge.sim.contract import designs as contract
    from attnforge.sim.fusemax.tile_jobs import head_beats

    _, qa, fx = _head(13, p=6)
    hb = head_beats(qa, fx, 4, causal=True, diag=-1)
    c = contract.fusemax_tile(4, 4, 8, 8, 64)
    words = [c["cfg"].unpack(w) for w in hb.cfg]
    assert [(w["n_tiles"], w["pad_keys"], w["causal"], w["diag"]) for w in words] == [(4, 3, 1, -1), (4, 3, 1, 3)]
    assert len(hb.q) == 2 * 8 and len(hb.k) == len(hb.v) == 2 * 4 * 8


@pytest.mark.parametrize("shape", [(4, 4, 8, 8, 64), (4, 4, 16, 16, 64), (8, 8, 32, 32, 256)])
def test_engine_run_cycles_fast_path_equals_the_timeline(shape: tuple[int, ...]) -> None:
    """The cached per-tile step gives the same cycles as building every tile's segments, for mixed key counts
    (short runs make the next tile wait for the previous output, long ones do not)."""
    from attnforge.sim.fusemax.cycle_model import engine_run

    rows, cols, e, f, mk = shape
    rng = np.random.default_rng(1)
    n_tiles = [int(x) for x in rng.integers(1, mk // rows + 1, 12)] + [1, 1, 2]
    run = engine_run(rows, cols, e, f, n_tiles, mk)
    assert engine_run_cycles(rows, cols, e, f, n_tiles, mk) == run[-1].total_cycles
    assert all(b.segments[0].start > a.segments[0].start for a, b in zip(run, run[1:], strict=False))
