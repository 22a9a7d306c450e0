"""Pipeline depths and structural sizes that the RTL builds and the cycle models count.

Each number here is both a register count in an ``rtl`` block and a term of an exact cycle formula in
``sim/*/cycle_model.py`` (or ``sim/spatten/topk_golden.py``). Keeping the one definition in an amaranth-free module
lets the models import it without importing the RTL, and lets the RTL assert its structure against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnforge.sim.contract.fixedpoint import clog2

if TYPE_CHECKING:  # pragma: no cover
    from attnforge.sim.contract.spatten_fx import SpattenFx

# ---------------------------------------------------------------- FuseMax

#: Registers in front of the PE's accumulator (operands, product, retimed product): rtl/pe.py builds this many.
PE_PIPE = 3
#: The tile engine's MAC: an operand-select register per column (Q from its register file or the stream) and per
#: row (K or V), then the PE's MAC pipeline (``PE_PIPE``). The select register keeps the Q register file's read mux
#: (indexed by the beat counter) and the QK/SLNV operand mux apart (on ECP5 the two were the critical path).
FM_MAC_PIPE = 1 + PE_PIPE
#: Exponent unit stages behind its distance register: operand copies per DSP, partial products by alpha, their second
#: register, their sum, coarse and fine rounding shift, ROM, shifter (the last one writes the tile engine's SLN / PRM
#: buffer). The copies on both sides of the DSP are there for the same reason as FM_OUT_PIPE's.
FM_EXP_PIPE = 8
#: Rescale of a running sum (RD, RNV): operand registers (the running sum and PRM, one copy per DSP), partial
#: products by PRM, their sum plus the rounding half, shift and add.
FM_ACC_PIPE = 4
#: Output beat: RNV read, operand copies per DSP, partial products by 1/RD, their second register, their sum plus the
#: rounding half, shift (the output register). The copies on both sides of the DSP (rtl/common.py ``split_mul``) let
#: the placer put one register next to it: on ECP5 a bare register -> DSP -> register path is mostly routing.
FM_OUT_PIPE = 6


def fm_tree_levels(rows: int) -> int:
    """Registered levels of a column adder tree over ``rows`` values (SLD, SLNV)."""
    return clog2(rows)


def fm_sm_latency(rows: int) -> int:
    """Tile engine softmax step, from S visible to SLN (and PRM) visible: the registered max tree (LM), RM, the
    distances, then the exponent unit."""
    return vmax_levels(rows) + 2 + FM_EXP_PIPE


def fm_min_f(rows: int) -> int:
    """Shortest SLNV segment: the last RD (final ``fm_tree_levels + FM_ACC_PIPE`` cycles after the last SLN) must be
    final before the run's last SLNV beat, so that its reciprocal starts before the run's own tail is flagged (and
    the RD pipeline has read ``n_tiles`` before the next query tile's cfg replaces it)."""
    return fm_tree_levels(rows) + FM_ACC_PIPE + 1


def fm_min_e(rows: int) -> int:
    """Shortest QK segment: the S register must hold a tile until the distance stage has read it."""
    return vmax_levels(rows) + 2


#: Opcode bits of the 1D vector unit's command beat.
OP_BITS = 3


def vec_latency(op: str, qw: int) -> int:
    """1D vector unit (rtl/vector1d.py ``Vector1D``), cycles from an op's command handshake to its result in the
    output register, which is every op's last stage: max and add one (the comparator or adder); mul the tile's
    rescale pipeline with nothing added (operand copies per DSP, partial products, their sum plus the rounding half,
    shift: ``FM_ACC_PIPE``); exp a distance register, then the tile's exponent unit (``FM_EXP_PIPE``); recip the
    restoring divider (start, ``qw`` iterations, done hand-off)."""
    return {"mul": FM_ACC_PIPE, "exp": 1 + FM_EXP_PIPE, "recip": qw + 2}.get(op, 1)

# ---------------------------------------------------------------- SpAtten

#: Register stages of the pipelined zero eliminator with its output registered (one fewer without).
ZE_STAGES = 3
#: Top-k round: registered comparator operands, registered comparator flags, then the zero eliminators.
ROUND_PIPE = 2 + ZE_STAGES
#: Top-k filter pass: flags, tie prefix sum, keep flags, then the zero eliminator without its output register.
FILTER_PIPE = 3 + ZE_STAGES - 1
#: Softmax exponent pipeline: distance, operand copies per DSP, partial products by alpha, their second register,
#: their sum, coarse and fine rounding shift, ROM, shifter. The copies on both sides of the DSPs (rtl/common.py
#: ``split_mul``) let the placer put one register next to each: on ECP5 a bare register -> DSP -> register path was
#: the whole top's critical path (the normalizing multiply: 5.4 + 4.7 ns of routing around the DSP's 3.9).
SOFTMAX_EXP_PIPE = 9
#: The normalize pass adds the operand copies, the partial products by the reciprocal, their second register and
#: their sum.
SOFTMAX_NORM_PIPE = SOFTMAX_EXP_PIPE + 4
#: Prob x V from an input beat to its column trees: the input register (probabilities masked by the count, V words),
#: operand copies per DSP, the products, their second register (the same cut as SOFTMAX_EXP_PIPE's; prob x V's
#: DSP routes limited the SpAtten pipeline to 89.83 MHz on ECP5).
PV_MUL_PIPE = 4
#: A registered stream slice (rtl/common.py SkidBuffer) delays every beat by one cycle while its consumer takes
#: beats as they come (a stalled consumer finds up to two beats waiting in it).
SKID_LATENCY = 1
#: Registered stream slices in the SpAtten pipeline's front (rtl/spatten/pipeline.py): bit-width converter to Q x K
#: and Q x K to the softmax. Neither link ever stalls (the softmax is loading whenever scores come, Q x K takes a K
#: line per cycle), so each adds SKID_LATENCY to a pass.
SP_FRONT_SLICES = 2
#: Registered stream slices in the SpAtten pipeline's back: the local-V top-k's output rows to the V side (V request,
#: kept-pairs FIFO). It cuts the V side's ready (the V fetcher's count FIFO, the pairs FIFO) from the top-k's stall
#: enable, which holds its whole filter pipeline (on ECP5 that chain was spatten-top's critical path). Each output
#: row reaches the V side SKID_LATENCY later; while the V side stalls the slice holds two rows, which the top-k would
#: otherwise have held in its own pipeline, so the rows reach the V side in the same order as before, each no earlier
#: than one cycle after the one before.
SP_BACK_SLICES = 1
#: spatten-top's Q fetcher registers its memory request (address and label computed a cycle ahead, rtl/spatten/top.py
#: ``_qfetch``): a Q request leaves at the earliest this many cycles after RUN's first cycle or after the previous
#: Q grant.
SP_Q_REQ_REG = 1
#: spatten-top's controller registers each descriptor with its checks' verdict and decides in a CHECK state the
#: cycle after (rtl/spatten/top.py ``_controller``): every descriptor, refused or not, costs this many cycles more
#: between its handshake and the state it leads to.
SP_DESC_REG = 1
#: spatten-top's boundary top-k takes the importance read-out through this many registered stream slices
#: (SkidBuffer): each boundary top-k's input, and so its output, is SKID_LATENCY cycles later per slice.
SP_TOPK_SLICES = 1
#: spatten-top's list compaction picks a boundary top-k output beat's kept ids into registers and writes them the
#: cycle after (rtl/spatten/top.py ``_compact``): each boundary top-k ends this many cycles later.
SP_COMPACT_REG = 1
#: Registered stream slices (SkidBuffer) on spatten-top's importance input, after the mux of the controller's and
#: the feeder's beats: each beat reaches the block SKID_LATENCY later, and the slice holds up to two beats the
#: block is not ready for (the top's cycle model walks it).
SP_IMP_SLICES = 1
#: The importance block's read-out gather is registered (rtl/spatten/importance.py ``_read``: partial AND-ORs over
#: groups of accumulators): each read beat leaves this many cycles later, and the read's answer with it.
IMP_GATHER_PIPE = 1


def sp_boundary_tail() -> int:
    """spatten-top's boundary top-k beyond the top-k's own cycles, from the importance block taking the first read
    beat to RUN (or the next list's BOUND): the read-out reaches the top-k ``2 + IMP_GATHER_PIPE`` cycles after
    its take and passes the top-k's input slices (``SP_TOPK_SLICES``); the compaction writes the last output row a
    cycle after it (``SP_COMPACT_REG``), and the controller leaves TOPK with that write. Both spatten-top models
    (the cycle walk and the analytical one) charge it from here."""
    return 2 + IMP_GATHER_PIPE + SP_TOPK_SLICES * SKID_LATENCY + SP_COMPACT_REG + 1


def pe_acc_bits(in_bits: int, depth: int) -> int:
    """Bits for the exact sum of ``depth`` products of two signed ``in_bits`` numbers."""
    return 2 * in_bits + clog2(depth)


def vmax_levels(n: int) -> int:
    """Registers of the pipelined comparator tree over ``n`` values: the inputs, then one per tree level."""
    return 1 + clog2(n)


def qk_tree_pipe(cfg: SpattenFx) -> int:
    """Registered adder-tree levels of rtl/spatten/qk.py: log2 max_d (every D leaves the tree at the top level)."""
    return cfg.max_d.bit_length() - 1


def pv_tree_pipe(cfg: SpattenFx) -> int:
    """Registered column-tree levels of rtl/spatten/pv.py: log2 S (S products per column per beat)."""
    return max(0, (cfg.s - 1).bit_length())


def decision_latency(cfg: SpattenFx) -> int:
    """Cycles from a row's last beat to its decision: the registered max tree, then the fold and decision register."""
    return vmax_levels(cfg.s) + 1


def count_bits(lanes: int) -> int:
    """Bits of a beat's ``count`` field (0..lanes)."""
    return lanes.bit_length()


def idx_bits(max_n: int) -> int:
    """Bits of an element index (0..max_n-1)."""
    return max(1, (max_n - 1).bit_length())


def n_bits(max_n: int) -> int:
    """Bits of a length (0..max_n)."""
    return max(1, max_n.bit_length())
