"""Options shared by the run commands, and the one place they become a Scenario.

Every option of ``simulate`` and ``compare`` defaults to None here, and the Scenario's own defaults apply after;
that way a command can tell "not given" from "given the default value" and refuse an option it cannot honour
(``--seq-len`` with ``--trace``, say) instead of ignoring it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from attnforge.sim.specs.arch import parse_overrides as overrides
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.scenario import DEFAULT_GENERATE, PHASES, POLICY_KNOBS, Scenario
from attnforge.workloads import parse_length


def lengths(text: str | None, default: str = "4096") -> list[int]:
    """'1k,4k' -> [1024, 4096]; an empty list or an empty entry ('1k,,4k') is an error, not silently dropped."""
    raw = default if text is None else str(text)
    items = [t.strip() for t in raw.split(",")]
    if not any(items):
        raise SpecError("--seq-len", f"no length in {raw!r}", "e.g. 4096, 4k, 1M or 1k,4k")
    if not all(items):
        raise SpecError("--seq-len", f"an empty entry in {raw!r}", "e.g. 4096, 4k, 1M or 1k,4k")
    return [parse_length(t) for t in items]


def one_length(text: str | None, flag: str, default: str = "4096") -> int:
    """One length for a command that takes one ('4k' -> 4096); a list is refused rather than cut to its first."""
    got = lengths(text, default)
    if len(got) != 1:
        raise SpecError(flag, f"this command takes one length, got {len(got)} in {text!r}", "e.g. 4096 or 4k")
    return got[0]


def int_params(items: Sequence[str] | None, flag: str, example: str) -> dict[str, int]:
    """``NAME=INTEGER`` options (``--tile``, ``--rtl-param``) -> {name: int}, ASCII digits only."""
    out: dict[str, int] = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        v = v.strip()
        if not sep or not k.strip() or not (v.isascii() and v.isdigit()):
            raise SpecError(flag, f"expected NAME=INTEGER, got {item!r}", example)
        out[k.strip()] = int(v)
    return out


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The workload, shape, arch and output options of simulate and compare."""
    p.add_argument("--workload", "-w", default=None,
                   help="model name (see `attnforge list`) or a models YAML file (FILE.yaml[:NAME]); default bert-base")
    p.add_argument("--batch", "-b", type=int, default=None, help="batch size (default 64, as in the FuseMax paper)")
    p.add_argument("--p", type=int, default=None, help="query length P (default: the sequence length; 1 in decode)")
    p.add_argument("--m", type=int, default=None, help="key length M (default: the sequence length)")
    p.add_argument("--causal", action="store_true", default=None, help="causal mask (default: the model's own, e.g. GPT-2)")
    p.add_argument("--stage", choices=("prefill", "decode"), default=None, help="prefill (P=M, default) or decode (P=1)")
    p.add_argument("--phase", choices=PHASES, default=None,
                   help="a causal model's generative run, --seq-len being the prompt: its causal prompt pass, or its "
                        "generation steps (one point per generated token, cache from prompt+1); encoders refuse it")
    p.add_argument("--generate", type=int, default=None, metavar="N",
                   help=f"with --phase generate: tokens generated (default {DEFAULT_GENERATE}, as in the SpAtten paper)")
    p.add_argument("--scope", choices=("attention", "end-to-end"), default=None,
                   help="attention only (default), or one layer end to end (adds Q/K/V/O projections and the FFN)")
    p.add_argument("--arch", default=None, help="arch YAML file (or preset name) replacing the accelerator's preset")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override an arch field, e.g. buffer.bytes=8388608")
    p.add_argument("--tile", action="append", metavar="NAME=N",
                   help="fix a tile size instead of searching it, e.g. query_block=512 (queries resident per block)")
    p.add_argument("--mapping", default=None, metavar="NAME|FILE.yaml",
                   help="run this mapping instead of the accelerator's own (cascade accelerators): a built-in mapping "
                        "name or a mapping file, which may name a cascade file (docs/variants.md); in compare, "
                        "--accels fusemax,fusemax@FILE.yaml gives one accelerator its own")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--actions", action="store_true",
                   help="add the energy audit: per component and action, the count, pJ each and joules (JSON \"actions\", "
                   "CSV actions.<comp>.<act>.count/.energy_j), leakage separately; sum(count x pJ) + leakage = energy_j")


def add_spatten_options(p: argparse.ArgumentParser) -> None:
    """--trace and the SpAtten algorithm knobs (they become the Scenario's policy)."""
    g = p.add_argument_group("SpAtten", "trace replay and algorithm settings (accelerators spatten, spatten-1/8, ...)")
    g.add_argument("--trace", default=None, metavar="FILE|NAME",
                   help="replay a SpAtten workload trace: a CSV file, or the name of a packaged one "
                        "(e.g. gpt2-small-wikitext2-per8; `attnforge list` shows them)")
    g.add_argument("--baseline", default=None, metavar="FILE|NAME",
                   help="with --trace: unpruned trace to compare against (default: an unpruned trace of the same model "
                        "shape beside the trace)")
    g.add_argument("--trace-widths", choices=("paper", "bench"), default=None,
                   help="with --trace: fetch the trace's widths as the paper's converter takes them (default; -1 as 12 "
                        "bits) or as SpAtten's released test bench feeds them (K of -1/10/12 bits as 8-bit MSBs with "
                        "every row's LSBs, V as 8 bits)")
    g.add_argument("--token-ratio", type=float, default=None, help="average token pruning ratio in [0, 1)")
    g.add_argument("--head-ratio", type=float, default=None, help="average head pruning ratio in [0, 1)")
    g.add_argument("--v-ratio", type=float, default=None, help="local V pruning ratio in [0, 1)")
    g.add_argument("--quant", default=None, help="K setting: MSB+LSB (progressive, e.g. 6+4) or a static width (8)")
    g.add_argument("--threshold", type=float, default=None, help="LSB refetch threshold on the max probability, (0, 1]")
    g.add_argument("--topk-parallelism", type=int, default=None, help="comparators per top-k engine (default: arch)")
    g.add_argument("--lsb-refetch-rate", type=float, default=None, metavar="F",
                   help="fraction of query rows that refetch K's LSBs, [0, 1] (progressive --quant only; default: "
                        "measured by the golden model on seeded synthetic attention, 23-42%% at GPT-2 lengths, where "
                        "SpAtten's real GPT-2-Small trace refetches 6.1%%)")


#: Options that only a trace replay (``simulate --trace``) reads: refused anywhere else rather than ignored.
TRACE_ONLY = ("trace", "baseline", "trace_widths")


def refuse_trace_only(args: argparse.Namespace, why: str) -> None:
    """One SpecError for the first trace-replay option given where no trace is replayed."""
    for opt in TRACE_ONLY:
        if getattr(args, opt, None):
            raise SpecError("--" + opt.replace("_", "-"), why, ["simulate --trace FILE|NAME"])


def add_fidelity_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fidelity", choices=("analytical", "cycle"), default="analytical",
                   help="analytical engine (default) or the RTL's exact cycle model (fusemax tile engine, SpAtten pipeline)")
    p.add_argument("--cycle-rows", type=int, default=None, metavar="N",
                   help="with --fidelity cycle --accel spatten: query rows sampled, spread over heads and "
                        "positions (default 96; all of them when there are fewer jobs)")
    p.add_argument("--rtl-param", action="append", metavar="NAME=INT",
                   help="with --fidelity cycle: RTL instance parameter, e.g. rows=8 (e/f default to d_head)")


def policy_knobs(args: argparse.Namespace) -> dict[str, Any] | None:
    """The SpAtten knobs given on the command line, or None when none was."""
    knobs = {k: getattr(args, k, None) for k in POLICY_KNOBS}
    knobs = {k: v for k, v in knobs.items() if v is not None}
    return knobs or None


def scenario(args: argparse.Namespace, accel: str, seq_text: str | None, default_seq: str = "4096") -> Scenario:
    """Every run option of ``args`` into one validated Scenario for ``accel``; ``ACCEL@MAPPING`` (a mapping name or
    file) runs that mapping on the accelerator's arch, overriding ``--mapping`` for this one accelerator."""
    accel, at, own_mapping = accel.partition("@")
    return Scenario.build(
        accelerator=accel,
        workload=args.workload or "bert-base",
        seq_lens=lengths(seq_text, default_seq),
        batch=64 if args.batch is None else args.batch,
        p=args.p,
        m=args.m,
        causal=args.causal,
        stage=args.stage or "prefill",
        phase=getattr(args, "phase", None),
        generate=getattr(args, "generate", None),
        scope=args.scope or "attention",
        arch=args.arch,
        overrides=overrides(args.set),
        tiles=int_params(args.tile, "--tile", "query_block=N"),
        policy=policy_knobs(args),
        fidelity=getattr(args, "fidelity", None) or "analytical",
        rtl_params=int_params(getattr(args, "rtl_param", None), "--rtl-param", "rows=8"),
        sample_rows=getattr(args, "cycle_rows", None),
        mapping=own_mapping if at else getattr(args, "mapping", None),
    )
