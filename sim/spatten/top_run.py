"""A golden pass of the whole SpAtten accelerator (``spatten-top``) on a workload, for the cycle and analytical
fidelities of ``simulate --arch spatten-top`` and their tests.

Why here and not in the benches: the cycle model and the analytical model both need the pass's data-dependent
facts (kept token and head sets, refetches, top-k results), so the CLI and the fast tests build the same golden
run the RTL bench checks, without the bench's memory image. MiniLM runs on the real text
(:func:`attnforge.sim.spatten.top_golden.text_input`) when its weights are installed; without them, and for any
other model, a seeded encoder of the model's shape (:func:`attnforge.sim.spatten.realdata.synthetic_inputs`) gives
the tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten import top_golden as tg
from attnforge.sim.spatten.realdata import minilm_path, synthetic_inputs
from attnforge.sim.specs.spatten_policy import Policy


@dataclass(frozen=True)
class TopPass:
    """A golden pass and where its tensors came from (``real:...`` or ``synthetic:seedN``)."""

    run: tg.TopRun
    source: str
    tokens: int
    heads: int


def golden_pass(*, layers: int, heads: int, d_head: int, tokens: int, fx: SpattenFx, policy: Policy,
                real: bool = False, seed: int = 0, d_ff: int | None = None) -> TopPass:
    """All ``layers`` on ``tokens`` tokens with the policy's schedule (:func:`top_golden.schedule`). ``real``:
    MiniLM on the real text when its weights are installed (the first ``tokens`` tokens), else a seeded encoder
    of the given shape (``d_ff`` default 4 x d_model)."""
    if real and minilm_path() is not None:
        enc, x, _ = tg.text_input()
        x = x[:tokens]
    else:
        d_model = heads * d_head
        enc, xs = synthetic_inputs(layers=layers, heads=heads, d_model=d_model, d_ff=d_ff or 4 * d_model,
                                   lengths=(tokens,), seed=seed)
        x = xs[0]
    run = tg.forward(enc, x, tg.schedule(policy, len(enc.layers), enc.heads, x.shape[0], fx), fx)
    return TopPass(run, enc.source, int(x.shape[0]), enc.heads)


def agreement(arch_name: str, *, layers: int, heads: int, d_head: int, tokens: int, policy: Policy, real: bool,
              seed: int = 0) -> dict[str, object]:
    """The top's exact cycle model and the analytical model on one golden pass at a preset's instance: cycles of
    both, per layer too (the analytical's per-layer RUN cycles against the cycle model's)."""
    from attnforge.sim.contract.memport import MemTiming
    from attnforge.sim.contract.spatten_top import SpattenTopCfg
    from attnforge.sim.spatten.top_analytical import instance_fx, layers_from_run, pass_cycles, sequence_length
    from attnforge.sim.spatten.top_cycle_model import top_cycles
    from attnforge.sim.specs.arch import get_preset

    arch = get_preset(arch_name)
    t, fx = arch.top, instance_fx(arch)
    assert t is not None
    tp = golden_pass(layers=layers, heads=heads, d_head=d_head, tokens=tokens, fx=fx, policy=policy, real=real,
                     seed=seed)
    cfg = SpattenTopCfg(fx, t.max_heads, t.max_layers)
    cyc = top_cycles(tp.run, cfg, MemTiming(t.mem_latency_cycles, t.mem_outstanding, t.mem_interval_cycles))
    lays = layers_from_run(tp.run, arch)
    n0 = sequence_length(tp.run)
    ana = pass_cycles(arch, lays, tokens=n0)
    gauss = pass_cycles(arch, layers_from_run(tp.run, arch, measured_topk=False), tokens=n0)
    return {"arch": arch_name, "tensors": tp.source, "tokens": tokens, "layers": layers,
            "kept": [(la.tokens, la.heads, la.kv) for la in lays], "cycle_model": cyc["cycles"],
            "analytical": ana["cycles"], "analytical_gaussian_topk": gauss["cycles"]}


def agreement_table(minilm: bool = True) -> str:
    """Analytical against the exact cycle model on the quick regression's synthetic passes (spatten-top-small,
    token/head ratio 0.4, V ratio 0.3) and, with ``minilm``, the whole-MiniLM run (spatten-top, 128 tokens of the
    real text, token ratio 0.3, head ratio 0.2, V ratio 0.3; about a minute): ``python -m
    attnforge.sim.spatten.top_run`` prints it (docs/spatten.md §Three fidelities)."""
    syn = Policy(token_ratio=0.4, head_ratio=0.4, v_ratio=0.3, threshold=0.1)
    rows = [agreement("spatten-top-small", layers=ly, heads=4, d_head=8, tokens=n, policy=syn, real=False)
            for ly, n in ((2, 12), (3, 16), (6, 64))]
    if minilm:
        pol = Policy(token_ratio=0.3, head_ratio=0.2, v_ratio=0.3, threshold=0.1)
        rows.append(agreement("spatten-top", layers=6, heads=12, d_head=32, tokens=128, policy=pol, real=True))
    lines = ["| arch | tensors | layers x tokens | cycle model | analytical | dev | analytical, Gaussian top-k | dev |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, a, g = r["cycle_model"], r["analytical"], r["analytical_gaussian_topk"]
        lines.append(f"| {r['arch']} | {r['tensors']} | {r['layers']} x {r['tokens']} | {c:,} | {a:,.0f} | "
                     f"{a / c - 1:+.1%} | {g:,.0f} | {g / c - 1:+.1%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(agreement_table())
