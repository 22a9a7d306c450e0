"""The one fixed-point golden model of attnforge's RTL (bit exact), imported by RTL tests, CLI and reports."""

from sim.golden.attention import (
    ERROR_BOUND_REL_VMAX,
    VEC_OPS,
    ErrorReport,
    QuantizedAttention,
    alpha_for,
    array2d_matmul,
    attention_fx,
    dequantize_output,
    error_vs_float,
    exp_unit,
    float_attention,
    from_ints,
    pe_mac,
    quantize_attention,
    vector1d,
    workload_head,
)
from sim.golden.fixedpoint import (
    FixedPointConfig,
    FixedPointOverflow,
    check_width,
    exp2_neg,
    exp2_table,
    quantize,
    reciprocal,
    round_shift,
)

__all__ = [
    "ERROR_BOUND_REL_VMAX", "VEC_OPS", "ErrorReport", "FixedPointConfig", "FixedPointOverflow", "QuantizedAttention",
    "alpha_for", "array2d_matmul", "attention_fx", "check_width", "dequantize_output", "error_vs_float", "exp2_neg",
    "exp2_table", "exp_unit", "float_attention", "from_ints", "pe_mac", "quantize", "quantize_attention", "reciprocal",
    "round_shift", "vector1d", "workload_head",
]
