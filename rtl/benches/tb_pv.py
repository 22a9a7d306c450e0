"""cocotb bench of the SpAtten prob x V unit against attnforge.sim.spatten.golden.pv (bit-exact outputs, exact cycles)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_fx_common import bad_row_counts, fx_cfg, refusal_test, standard_tests
from tb_harness import run_jobs

from attnforge.sim.spatten.cycle_model import bad_row, pv_cycles, pv_in_words, pv_out_word, pv_refused_job
from attnforge.sim.spatten.golden import QueryJob, pv, qk, softmax


def _rows(probs: np.ndarray, v: np.ndarray) -> tuple[dict, dict, int]:
    cfg = fx_cfg()
    out = pv(probs, v, cfg).tolist()
    words = pv_in_words(probs.tolist(), v, cfg)
    return {"i": words}, {"o": [pv_out_word(out, cfg)]}, pv_cycles(len(words), cfg)


def _job(j: QueryJob) -> tuple[dict, dict, int]:
    cfg = fx_cfg()
    p = softmax(qk(j.q, j.k, cfg), j.alpha_q, j.alpha_sh, cfg).probs
    keep = np.sort(np.argsort(-p, kind="stable")[:j.kv])
    return _rows(p[keep], j.v[keep])


globals().update(standard_tests(_job, ["i"], ["o"], "i", "o"))  # workloads, random, stalls, reset
_setup = globals()["_setup"]


@cocotb.test()
async def test_corners(dut: Any) -> None:
    """One row, probabilities 1.0 against the most negative V (largest |output|), a full max_n row of equal
    probabilities, a row count that leaves the last beat partial."""
    cfg = fx_cfg()
    lo = -(1 << (cfg.v_bits - 1))
    one = 1 << cfg.prob_frac
    n = cfg.max_n
    cases = [(np.array([one]), np.full((1, cfg.max_d), lo)),
             (np.full(n, one // n), np.full((n, cfg.max_d), lo)),
             (np.arange(cfg.s + 1) * 7, np.arange((cfg.s + 1) * cfg.min_d).reshape(cfg.s + 1, cfg.min_d) - 9)]
    h = await _setup(dut)
    await run_jobs(h, "corners", [_rows(p, v) for p, v in cases], "i", "o", True)


def _refused_mix(seed: int) -> list:
    cfg, rng = fx_cfg(), np.random.default_rng(seed)
    pairs = []
    for counts in [c for c in bad_row_counts(cfg) if max(c) > cfg.s or sum(c) > cfg.max_n]:
        v = rng.integers(-2048, 2048, (cfg.s, cfg.max_d))
        bad = pv_refused_job(bad_row(counts, cfg, rng, cfg.prob_bits, signed=False), v, cfg)
        n = int(rng.integers(1, cfg.max_n + 1))
        good = _rows(rng.integers(0, 1 << cfg.prob_frac, n) // n, rng.integers(-2048, 2048, (n, cfg.max_d)))
        pairs.append((({"i": bad[0]}, {"o": bad[1]}, bad[2]), good))
    return pairs


test_refused_jobs = refusal_test(
    _setup, _refused_mix, "i", "o",
    "Jobs that break the row rule are taken whole and answered by outputs 0 with err; the next job is exact.")
