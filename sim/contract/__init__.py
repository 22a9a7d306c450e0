"""The hardware contract: what the RTL and the cycle / golden models share, without importing amaranth.

* :mod:`.depths` -- pipeline depths and structural sizes (register counts the RTL builds and the cycle models count);
* :mod:`.layout` -- plain-data bit layouts (:class:`Field`, :class:`Array`, :class:`Struct`) with pack / unpack;
* :mod:`.designs` -- every registered design's stream payloads and config words as layouts.

Models import from here, never from ``rtl``; the RTL builds its ports and payload views from the same layouts.
"""

from attnforge.sim.contract.depths import (
    FILTER_PIPE,
    FM_ACC_PIPE,
    FM_EXP_PIPE,
    FM_MAC_PIPE,
    FM_OUT_PIPE,
    OP_BITS,
    PE_PIPE,
    PV_MUL_PIPE,
    ROUND_PIPE,
    SKID_LATENCY,
    SOFTMAX_EXP_PIPE,
    SOFTMAX_NORM_PIPE,
    SP_BACK_SLICES,
    SP_FRONT_SLICES,
    ZE_STAGES,
    count_bits,
    decision_latency,
    fm_min_e,
    fm_min_f,
    fm_sm_latency,
    fm_tree_levels,
    idx_bits,
    n_bits,
    pe_acc_bits,
    pv_tree_pipe,
    qk_tree_pipe,
    vec_latency,
    vmax_levels,
)
from attnforge.sim.contract.designs import DESIGN_NAMES, Contract, Stream, for_design
from attnforge.sim.contract.layout import Array, Field, Layout, Struct, flatten, lanes, pack, struct, unpack

__all__ = [
    "FILTER_PIPE", "FM_ACC_PIPE", "FM_EXP_PIPE", "FM_MAC_PIPE", "FM_OUT_PIPE", "OP_BITS", "PE_PIPE", "ROUND_PIPE",
    "PV_MUL_PIPE", "SOFTMAX_EXP_PIPE", "SOFTMAX_NORM_PIPE", "SKID_LATENCY", "SP_BACK_SLICES",
    "SP_FRONT_SLICES", "fm_min_e", "fm_min_f",
    "fm_sm_latency", "fm_tree_levels",
    "ZE_STAGES", "count_bits", "decision_latency", "idx_bits", "n_bits", "pe_acc_bits", "pv_tree_pipe", "qk_tree_pipe",
    "vec_latency", "vmax_levels", "DESIGN_NAMES", "Contract", "Stream", "for_design", "Array", "Field", "Layout",
    "Struct", "flatten", "lanes", "pack", "struct", "unpack",
]
