"""Design names for the CLI and the regressions: name -> constructor, parameter schema, golden settings.

Parameters arrive as strings (``--param rows=8``); each is checked against its schema here, so every user
mistake is one :class:`attnforge.sim.specs.errors.SpecError` line naming the parameter and its allowed range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amaranth.lib import wiring

from attnforge.sim.contract.designs import VEC_OPS
from attnforge.sim.contract.fixedpoint import ERROR_BOUND_REL_VMAX, FixedPointConfig
from attnforge.sim.specs.errors import SpecError

if TYPE_CHECKING:
    from attnforge.sim.contract.spatten_fx import ImportanceCfg, SpattenFx
    from attnforge.sim.contract.spatten_top import SpattenTopCfg


@dataclass(frozen=True)
class Param:
    default: int
    lo: int
    hi: int
    doc: str


@dataclass(frozen=True)
class Design:
    name: str
    description: str
    params: Mapping[str, Param]
    build: Callable[..., wiring.Component]
    golden: Callable[[Mapping[str, int]], dict[str, object]]
    check: Callable[[Mapping[str, int]], None] = lambda p: None


def _pe(**p: int) -> wiring.Component:
    from attnforge.rtl.pe import PE

    return PE(in_bits=p["in_bits"], depth=p["depth"])


def _array(**p: int) -> wiring.Component:
    from attnforge.rtl.array2d import Array2D

    return Array2D(rows=p["rows"], cols=p["cols"], in_bits=p["in_bits"], depth=p["depth"])


def _vector(**p: int) -> wiring.Component:
    from attnforge.rtl.vector1d import Vector1D

    return Vector1D(width=p["width"], data_bits=p["data_bits"], max_keys=p["max_keys"])


def _tile(**p: int) -> wiring.Component:
    from attnforge.rtl.fusemax_tile import FuseMaxTile

    return FuseMaxTile(rows=p["rows"], cols=p["cols"], e=p["e"], f=p["f"], max_keys=p["max_keys"])


def _fm_top(**p: int) -> wiring.Component:
    from attnforge.rtl.fusemax_top import FuseMaxTop

    return FuseMaxTop(rows=p["rows"], cols=p["cols"], d=p["d"], max_keys=p["max_keys"], max_queries=p["max_queries"],
                      max_heads=p["max_heads"])


def _fm_top_golden(p: Mapping[str, int]) -> dict[str, object]:
    return {**_tile_golden({"rows": p["rows"], "e": p["d"], "f": p["d"], "max_keys": p["max_keys"]}),
            "per_tile": "attnforge.sim.fusemax.golden (every query tile of every head)",
            "cycles": "attnforge.sim.fusemax.top_cycle_model.top_schedule (exact, given the memory timing)"}


def _fm_top_check(p: Mapping[str, int]) -> None:
    for k in ("rows", "cols"):
        if p[k] & (p[k] - 1):
            raise SpecError(f"--param {k}", f"{p[k]} must be a power of two")
    _tile_check({"rows": p["rows"], "max_keys": p["max_keys"], "e": p["d"]})


def _topk(**p: int) -> wiring.Component:
    from attnforge.rtl.spatten.topk import TopK

    return TopK(comparators=p["comparators"], max_n=p["max_n"], data_bits=p["data_bits"], signed_data=p["signed_data"])


def _topk_golden(p: Mapping[str, int]) -> dict[str, object]:
    from attnforge.sim.contract import FILTER_PIPE, ROUND_PIPE

    return {"model": "attnforge.sim.spatten.topk_golden", "pivot": "first element of the current candidate set (stream order)",
            "target": "0-based t = k - 1; keep t - |R| + 1 ties, earliest first",
            "payloads": "the manifest's streams (attnforge.sim.contract.designs.topk)",
            "cycles": "R0 + D + sum over later rounds (ceil(m/C) + 2 + D) + 2 + F + R0, R0 = ceil(n/C), "
                      f"D = {ROUND_PIPE}, F = {FILTER_PIPE} (pipeline stages)"}


def _topk_check(p: Mapping[str, int]) -> None:
    c = p["comparators"]
    if c & (c - 1):
        raise SpecError("--param comparators", f"{c} must be a power of two")


def _fx(p: Mapping[str, int]) -> SpattenFx:
    from attnforge.sim.contract.spatten_fx import SpattenFx

    return SpattenFx(lanes=p["lanes"], min_d=p["min_d"], max_d=p["max_d"], max_n=p["max_n"])


def _validated(cfg_of: Callable[[Mapping[str, int]], Any]) -> Callable[[Mapping[str, int]], None]:
    """A registry check from a config builder: the config's own ``validate()``, its error renamed to the CLI's
    ``--param`` field, so one rule serves the library and the command line."""

    def check(p: Mapping[str, int]) -> None:
        try:
            cfg_of(p).validate()
        except SpecError as e:
            raise SpecError(f"--param {e.field}", e.problem, e.allowed) from None

    return check


_fx_check = _validated(_fx)


def _fx_build(cls: str) -> Callable[..., wiring.Component]:
    def build(**p: int) -> wiring.Component:
        import importlib

        mod, name = cls.rsplit(".", 1)
        return getattr(importlib.import_module(mod), name)(_fx(p))

    return build


def _fx_golden(p: Mapping[str, int]) -> dict[str, object]:
    c = _fx(p)
    return {"model": "attnforge.sim.spatten.golden", "beats_and_cycles": "attnforge.sim.spatten.cycle_model",
            "scores_per_beat": c.s,
            "score_bits": c.score_bits, "prob_bits": c.prob_bits, "prob_frac": c.prob_frac, "msb_bits": c.msb_bits,
            "lsb_bits": c.lsb_bits, "acc_bits": c.acc_bits, "out_bits": c.out_bits, "out_frac": c.out_frac,
            "softmax": c.fx.to_dict()}


_FX_PARAMS = {"lanes": Param(16, 2, 512, "Q x K multipliers per cycle (paper: 512), power of two"),
              "min_d": Param(4, 1, 128, "smallest head dimension; lanes/min_d scores per beat"),
              "max_d": Param(8, 1, 128, "largest head dimension (paper: 64)"),
              "max_n": Param(64, 1, 1024, "longest key row")}


def _acc_golden(p: Mapping[str, int]) -> dict[str, object]:
    from attnforge.sim.contract import pe_acc_bits

    return {"acc_bits": pe_acc_bits(p["in_bits"], p["depth"]), "rounding": "exact integer accumulation"}


def _vec_golden(p: Mapping[str, int]) -> dict[str, object]:
    fx = FixedPointConfig(max_keys=p["max_keys"], rows=1)
    return {"ops": VEC_OPS, "fixed_point": fx.to_dict(), "rounding": "round half up (add 2^(s-1), arithmetic shift)"}


def _tile_golden(p: Mapping[str, int]) -> dict[str, object]:
    fx = FixedPointConfig(e=p["e"], f=p["f"], rows=p["rows"], max_keys=p["max_keys"])
    return {"fixed_point": fx.to_dict(), "error_bound_rel_vmax": ERROR_BOUND_REL_VMAX,
            "quantization": "symmetric per-tensor int8, scale = max|x|/127, round half away from zero",
            "rounding": "round half up (add 2^(s-1), arithmetic shift) after every multiply; reciprocal floors",
            "exp": f"2^-t: {1 << fx.tf}-entry table on the fraction, rounding shift by the integer part"}


def _vec_check(p: Mapping[str, int]) -> None:
    fx = FixedPointConfig(max_keys=p["max_keys"], rows=1)
    need = max(fx.alpha_bits + fx.alpha_shift_bits, fx.qw + 1, fx.d_bits, fx.rd_bits + 1)
    if p["data_bits"] < need:
        raise SpecError("--param data_bits", f"{p['data_bits']} is too narrow for max_keys={p['max_keys']}", f">= {need}")


def _tile_check(p: Mapping[str, int]) -> None:
    from attnforge.sim.contract import fm_min_e

    if p["max_keys"] % p["rows"]:
        raise SpecError("--param max_keys", f"{p['max_keys']} must be a multiple of rows={p['rows']}")
    if p["e"] < fm_min_e(p["rows"]):
        raise SpecError("--param e", f"{p['e']} is shorter than the softmax step's hold on S (rows={p['rows']})",
                        f">= {fm_min_e(p['rows'])}")


def _imp_cfg(p: Mapping[str, int]) -> ImportanceCfg:
    from attnforge.sim.contract.spatten_fx import ImportanceCfg

    return ImportanceCfg(_fx(p), p["max_heads"], p["max_queries"], p["max_layers"])


def _imp_build(**p: int) -> wiring.Component:
    from attnforge.rtl.spatten.importance import Importance

    return Importance(_imp_cfg(p))


_imp_check = _validated(_imp_cfg)


def _imp_golden(p: Mapping[str, int]) -> dict[str, object]:
    c = _imp_cfg(p)
    return {"model": "attnforge.sim.spatten.importance_golden", "imp_bits": c.imp_bits, "token_bound": c.token_bound,
            "head_bound": c.head_bound, "prob_bits": c.fx.prob_bits, "out_bits": c.fx.out_bits, "lanes_per_beat": c.s,
            "arithmetic": "exact unsigned sums: token += probability code, head += sum_f |out[f]| (f < D)",
            "cycles": "refused max(1, ceil(n/S)) (multi-beat ops) or 1; clear 1; add_tokens ceil(n/S) + 3; "
                      f"add_head 3 + {c.abs_tree_pipe}; read ceil(n/S) + 1 (first i to r handshake)"}


_IMP_PARAMS = {**_FX_PARAMS, "max_heads": Param(12, 1, 256, "head accumulators"),
               "max_queries": Param(64, 1, 1 << 16, "queries per head and layer the widths are sized for"),
               "max_layers": Param(6, 1, 256, "layers the scores accumulate over before a clear")}


def _sp_top_cfg(p: Mapping[str, int]) -> SpattenTopCfg:
    from attnforge.sim.contract.spatten_top import SpattenTopCfg

    return SpattenTopCfg(_fx(p), p["max_heads"], p["max_layers"], p["addr_bits"])


def _sp_top_build(**p: int) -> wiring.Component:
    from attnforge.rtl.spatten.top import SpattenTop

    return SpattenTop(_sp_top_cfg(p))


_sp_top_check = _validated(_sp_top_cfg)


def _sp_top_golden(p: Mapping[str, int]) -> dict[str, object]:
    c = _sp_top_cfg(p)
    return {"model": "attnforge.sim.spatten.top_golden", "pipeline": _fx_golden(p), "imp_bits": c.imp.imp_bits,
            "memory_word_bits": c.mem.data_bits, "row_address": "base + head * stride + token"}


_TOP_PARAMS = {"lanes": Param(8, 2, 512, "Q x K multipliers per cycle; the top needs lanes == max_d"),
               "min_d": Param(2, 1, 128, "smallest head dimension the tree taps; lanes/min_d scores per beat"),
               "max_d": Param(8, 1, 128, "head dimension of the layers it runs"),
               "max_n": Param(64, 1, 1024, "most tokens (sizes the alive list, accumulators and buffers)"),
               "max_heads": Param(4, 1, 64, "most heads"), "max_layers": Param(6, 1, 256, "layers per pass"),
               "addr_bits": Param(20, 8, 32, "memory word address width")}


def _memtest(**p: int) -> wiring.Component:
    from attnforge.rtl.benches.memtest import MemTest

    return MemTest(**p)


def _memtest_golden(p: Mapping[str, int]) -> dict[str, object]:
    return {"timing": "attnforge.sim.memory.port.PortModel (rules in attnforge.sim.contract.memport)",
            "data": "each beat is the memory word at addr + beat index"}


DESIGNS: dict[str, Design] = {
    "pe": Design("pe", "signed int8 MAC processing element (stream in a,b,last; stream out the sum)",
                 {"in_bits": Param(8, 2, 16, "operand width"), "depth": Param(64, 1, 1 << 16, "longest accumulation")},
                 _pe, _acc_golden),
    "array2d": Design("array2d", "output-stationary rows x cols MAC array built from PEs (QK / SLNV)",
                      {"rows": Param(4, 1, 64, "PE rows (keys, M0)"), "cols": Param(4, 1, 64, "PE columns (queries, P0)"),
                       "in_bits": Param(8, 2, 16, "operand width"), "depth": Param(64, 1, 1 << 16, "longest accumulation")},
                      _array, _acc_golden),
    "vector1d": Design("vector1d", "1D vector unit: max, add, pipelined Q1.15 multiply and exp2 unit (the tile's 1D operators), "
                       "reciprocal (restoring divider)",
                       {"width": Param(4, 1, 64, "lanes (queries, P0)"), "data_bits": Param(40, 24, 64, "lane width"),
                        "max_keys": Param(256, 1, 1024, "softmax denominators the reciprocal is sized for")},
                       _vector, _vec_golden, _vec_check),
    "fusemax-tile": Design("fusemax-tile", "FuseMax 1-pass attention tile engine (2D array + 1D array, pipelined binding)",
                           {"rows": Param(4, 1, 32, "2D rows = keys per key tile (M0)"),
                            "cols": Param(4, 1, 32, "2D columns = 1D lanes = queries per output tile (P0)"),
                            "e": Param(8, 1, 128, "head dimension of Q and K"), "f": Param(8, 1, 128, "head dimension of V"),
                            "max_keys": Param(256, 1, 1024, "longest key sequence (sizes accumulators)")},
                           _tile, _tile_golden, _tile_check),
    "fusemax-top": Design("fusemax-top", "FuseMax whole-layer top: tile engine, double-buffered K/V global buffer and Q "
                          "buffer in BRAM, DMA on a memory port, controller for every head and query tile",
                          {"rows": Param(4, 1, 32, "2D rows = keys per key tile (power of two)"),
                           "cols": Param(4, 1, 32, "2D columns = queries per query tile (power of two)"),
                           "d": Param(8, 4, 128, "head dimension (E = F) the engine is built for"),
                           "max_keys": Param(64, 1, 1024, "longest key sequence (sizes the K/V banks)"),
                           "max_queries": Param(64, 1, 1 << 16, "longest query sequence"),
                           "max_heads": Param(16, 1, 256, "most heads per descriptor")},
                          _fm_top, _fm_top_golden, _fm_top_check),
    "topk": Design("topk", "SpAtten top-k engine: quick-select (first-element pivot), FIFO_L/FIFO_R, zero eliminators, "
                   "order-preserving filter pass",
                   {"comparators": Param(16, 1, 64, "comparators per array = elements per beat (power of two)"),
                    "max_n": Param(256, 1, 4096, "longest score vector"), "data_bits": Param(8, 2, 32, "score width"),
                    "signed_data": Param(1, 0, 1, "scores are two's complement (1) or unsigned (0)")},
                   _topk, _topk_golden, _topk_check),
    "qk": Design("qk", "SpAtten Q x K: broadcast-multiply, reconfigurable adder tree (lanes/D dot products per cycle)",
                 _FX_PARAMS, _fx_build("attnforge.rtl.spatten.qk.QK"), _fx_golden, _fx_check),
    "softmax": Design("softmax", "SpAtten fixed-point softmax: row max, exp pass, one division, normalize pass",
                      _FX_PARAMS, _fx_build("attnforge.rtl.spatten.softmax.Softmax"), _fx_golden, _fx_check),
    "progquant": Design("progquant", "SpAtten progressive quantization: MSB/LSB assembly, max-probability decision",
                        _FX_PARAMS, _fx_build("attnforge.rtl.spatten.progquant.ProgQuant"), _fx_golden, _fx_check),
    "pv": Design("pv", "SpAtten prob x V: S probabilities x V rows per cycle, column adder trees, accumulators",
                 _FX_PARAMS, _fx_build("attnforge.rtl.spatten.pv.PV"), _fx_golden, _fx_check),
    "spatten-pipeline": Design("spatten-pipeline", "SpAtten one-query pipeline: Q x K, softmax, progressive-quant check "
                               "with LSB refetch, local-V top-k, prob x V, against a memory model",
                               _FX_PARAMS, _fx_build("attnforge.rtl.spatten.pipeline.SpattenPipeline"), _fx_golden, _fx_check),
    "importance": Design("importance", "SpAtten cascade-pruning accumulators: cumulative token and head importance, "
                         "read out as the top-k engine's input", _IMP_PARAMS, _imp_build, _imp_golden, _imp_check),
    "spatten-top": Design("spatten-top", "SpAtten whole accelerator: one layer per descriptor, cascade token/head "
                          "pruning (importance + top-k at layer boundaries), K/V fetched for alive tokens and heads "
                          "through a memory port, two queries in flight", _TOP_PARAMS, _sp_top_build, _sp_top_golden,
                          _sp_top_check),
    "memtest": Design("memtest", "test-only scripted requester on a memory port (checks the fastbench memory model)",
                      {"addr_bits": Param(8, 1, 24, "word address width"), "data_bits": Param(16, 1, 64, "word width"),
                       "len_bits": Param(4, 1, 8, "burst length width"), "tag_bits": Param(4, 1, 8, "tag width"),
                       "cycle_bits": Param(16, 8, 32, "width of the logged cycle numbers")},
                      _memtest, _memtest_golden),
}


def get_design(name: str) -> Design:
    if name not in DESIGNS:
        raise SpecError("design", f"unknown design {name!r}", DESIGNS)
    return DESIGNS[name]


def parse_params(design: str, items: Sequence[str] | Mapping[str, object] | None) -> dict[str, int]:
    """``["rows=8", ...]`` or a mapping -> validated, complete parameter dict (defaults filled in)."""
    d = get_design(design)
    raw: dict[str, object] = {}
    if isinstance(items, Mapping):
        raw = dict(items)
    else:
        for item in items or []:
            k, sep, v = str(item).partition("=")
            if not sep:
                raise SpecError("--param", f"expected NAME=INTEGER, got {item!r}", d.params)
            raw[k.strip()] = v.strip()
    out = {k: p.default for k, p in d.params.items()}
    for k, v in raw.items():
        if k not in d.params:
            raise SpecError("--param", f"design {design} has no parameter {k!r}", d.params)
        try:
            iv = int(str(v), 0)
        except ValueError:
            raise SpecError(f"--param {k}", f"expected an integer, got {v!r}") from None
        p = d.params[k]
        if not p.lo <= iv <= p.hi:
            raise SpecError(f"--param {k}", f"{iv} out of range", f"{p.lo}..{p.hi}")
        out[k] = iv
    d.check(out)
    return out


def build(design: str, params: Mapping[str, int]) -> wiring.Component:
    return get_design(design).build(**params)
