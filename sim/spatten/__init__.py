"""SpAtten (Wang et al., HPCA 2021): golden model of the algorithm, trace replay and the pieces its builder uses.

One concept per module: :mod:`topk` (quick-select top-k engine), :mod:`quant` (progressive quantization),
:mod:`pruning` (cascade token/head and local V pruning, layer schedules), :mod:`golden` (a numpy encoder that runs
all of it on real or synthetic tensors), :mod:`realdata` (all-MiniLM-L6-v2 weights when installed),
:mod:`policy` (the knobs of one run), :mod:`pipeline` (per-module cycles of the datapath) and :mod:`trace`
(SpAtten's own per-(iteration, layer, head) traces). The schedule builder lives in ``mappings/spatten.py`` so the
shared engine does all cycle and energy accounting.
"""
