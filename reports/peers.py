"""Side by side with the field's tools: SCALE-Sim v3 (cycles) and ZigZag (energy) on attention's GEMMs.

The GEMMs are BERT-Base's per-head Q x K^T (P x M x E) and P x V (P x F x M) at several sequence lengths, on a
comparable 32 x 32 output-stationary systolic array (preset ``systolic-os32``). attnforge runs them through its
ordinary engine (the one-Einsum ``gemm`` mapping); the peers run in their own virtual environment (SCALE-Sim 3.0
needs numpy < 2), driven through subprocesses with inputs generated here from the same arch spec, so both tools
see the same array size, per-word energies and buffer. `attnforge peers --setup` builds that environment.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from attnforge.sim.specs.arch import CascadeArch, get_preset, load_arch
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.progress import phase

REQUIREMENTS = Path(__file__).with_name("peers-requirements.txt")
PEER_PACKAGES = [ln.strip() for ln in REQUIREMENTS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
DEFAULT_ENV = Path(os.environ.get("ATTNFORGE_PEERS_ENV", Path.home() / ".cache" / "attnforge" / "peers-venv"))
ARCH = "systolic-os32"


@dataclass(frozen=True)
class Gemm:
    """Output rows x output columns x reduction (SCALE-Sim's M, N, K)."""

    name: str
    rows: int
    cols: int
    k: int


def attention_gemms(seq_lens: list[int], d_head: int = 64) -> list[Gemm]:
    out = []
    for s in seq_lens:
        out.append(Gemm(f"QK s={s}", s, s, d_head))
        out.append(Gemm(f"PV s={s}", s, d_head, s))
    return out


# ---- attnforge ---------------------------------------------------------------------------------------------


def ours(g: Gemm, arch: CascadeArch) -> dict[str, float]:
    """Cycles and energy of one GEMM through attnforge's engine (output rows on the array rows: rank m)."""
    from attnforge.mappings import build_schedule, get_mapping
    from attnforge.sim.analytical.engine import run_schedule

    s = build_schedule(get_mapping("gemm"), arch, batch=1, heads=1, p=g.rows, m=g.cols, e=g.k, f=g.k)
    ev = run_schedule("gemm", s, arch)
    e = {k: float(v) for k, v in ev.energy_pj.items()}
    return {"compute_cycles": float(ev.compute_cycles), "energy_pj": sum(e.values()), "mac_pj": e.get("2d", 0.0),
            "buffer_pj": e.get("buffer", 0.0), "dram_pj": e.get("dram", 0.0), "rf_pj": e.get("rf", 0.0)}


def ours_rate(gemms: list[Gemm], arch: CascadeArch, repeats: int = 5, points: int = 2000) -> float:
    """Evaluations per second of the same GEMMs, vectorised as attnforge runs a sweep."""
    from attnforge.mappings import build_schedule, get_mapping
    from attnforge.sim.analytical.engine import run_schedule

    rows = np.resize(np.array([g.rows for g in gemms]), points)
    cols = np.resize(np.array([g.cols for g in gemms]), points)
    ks = np.resize(np.array([g.k for g in gemms]), points)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        # one vectorised call per distinct reduction length (k is a per-call scalar in the schedule builder)
        for k in np.unique(ks):
            sel = ks == k
            run_schedule("gemm", build_schedule(get_mapping("gemm"), arch, batch=1, heads=1, p=rows[sel], m=cols[sel],
                                                e=int(k), f=int(k)), arch)
        best = min(best, time.perf_counter() - t0)
    return points / best


# ---- peer environment -------------------------------------------------------------------------------------


def setup_env(path: Path = DEFAULT_ENV) -> Path:
    """Create the peers' virtual environment (idempotent)."""
    py = path / "bin" / "python"
    if not py.exists():
        phase(f"peers: creating the peers' venv at {path}")
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    phase(f"peers: pip install {' '.join(PEER_PACKAGES)} into it (about 3 minutes the first time)")
    subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return py


def peer_python(path: Path = DEFAULT_ENV) -> Path:
    py = path / "bin" / "python"
    if not py.exists():
        raise SpecError("peers env", f"no peer environment at {path}", "run `attnforge peers --setup` first")
    return py


# ---- SCALE-Sim -----------------------------------------------------------------------------------------------

_SCALESIM_CFG = """[general]
run_name = attnforge

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 256
FilterSramSzkB: 256
OfmapSramSzkB: 128
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 10
Dataflow: os
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def scalesim(gemms: list[Gemm], arch: CascadeArch, py: Path) -> tuple[list[float], float]:
    """SCALE-Sim compute cycles per GEMM (its 'Total Cycles', no prefetch) and its wall seconds for all of them."""
    a2 = arch.arrays["2d"]
    with tempfile.TemporaryDirectory() as d:
        dd = Path(d)
        (dd / "arch.cfg").write_text(_SCALESIM_CFG.format(rows=a2.rows, cols=a2.cols))
        lines = ["Layer, M, N, K,"] + [f"g{i}, {g.rows}, {g.cols}, {g.k}," for i, g in enumerate(gemms)]
        (dd / "topo.csv").write_text("\n".join(lines) + "\n")
        t0 = time.perf_counter()
        subprocess.run([str(py), "-m", "scalesim.scale", "-c", "arch.cfg", "-t", "topo.csv", "-l", "topo.csv", "-p", "out",
                        "-i", "gemm", "-s", "1"], cwd=dd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        report = next((dd / "out").rglob("COMPUTE_REPORT.csv"))
        with report.open() as fh:
            rows = list(csv.DictReader(fh, skipinitialspace=True))
    return [float(r["Total Cycles"]) for r in rows], wall


# ---- ZigZag ----------------------------------------------------------------------------------------------------


def _zz_mem(name: str, size_bits: int, words_per_access: int, pj_per_word_r: float, pj_per_word_w: float,
            operands: list[str], served: list[str]) -> dict:
    bw = 16 * words_per_access
    allocs = [f"{op}, {d}" for op in operands for d in ("tl", "fh")] + (["O, fl", "O, th"] if "O" in operands else [])
    return {name: {
        "size": size_bits, "r_cost": pj_per_word_r * words_per_access, "w_cost": pj_per_word_w * words_per_access,
        "area": 0, "latency": 1, "auto_cost_extraction": False, "operands": operands,
        "ports": [{"name": "rw_port_1", "type": "read_write", "bandwidth_min": 16, "bandwidth_max": bw, "allocation": allocs}],
        "served_dimensions": served,
    }}


def zigzag_inputs(g: Gemm, arch: CascadeArch) -> tuple[list, dict, list]:
    """ZigZag workload, hardware and mapping generated from the same arch spec (per-word energies kept per word)."""
    a2 = arch.arrays["2d"]
    wl = [{"id": 0, "name": g.name.replace(" ", "_").replace("=", ""), "operator_type": "Gemm",
           "equation": "O[d0][d1]+=I[d0][d2]*W[d2][d1]", "loop_dims": ["D0", "D1", "D2"],
           "loop_sizes": [g.rows, g.cols, g.k], "operand_precision": {"W": 16, "I": 16, "O": 16, "O_final": 16},
           "operand_source": {"I": 0}}]
    mems: dict = {}
    mems.update(_zz_mem("rf_O", 16 * a2.rf.words, 1, arch.pj("2d", "rf_read"), arch.pj("2d", "rf_write"), ["O"], []))
    gb_words = a2.rows + a2.cols  # one operand row and column per cycle feed the array edges
    mems.update(_zz_mem("gb", arch.buffer.bytes * 8, gb_words, arch.pj("buffer", "read"), arch.pj("buffer", "write"),
                        ["I1", "I2", "O"], ["D1", "D2"]))
    dram_words = max(1, int(arch.dram_bytes_per_cycle // arch.word_bytes))
    dram_pj_per_word = arch.pj("dram", "byte") * arch.word_bytes  # ZigZag costs a 16-bit word per access
    mems.update(_zz_mem("dram", 10**12, dram_words, dram_pj_per_word, dram_pj_per_word, ["I1", "I2", "O"], ["D1", "D2"]))
    hw = {"name": arch.name, "memories": mems,
          "operational_array": {"input_precision": [16, 16], "unit_energy": arch.pj("2d", "mac"), "unit_area": 1,
                                "dimensions": ["D1", "D2"], "sizes": [a2.rows, a2.cols]}}
    mapping = [{"name": "default", "spatial_mapping": {"D1": [f"D0, {a2.rows}"], "D2": [f"D1, {a2.cols}"]},
                "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]
    return wl, hw, mapping


_ZZ_DRIVER = r"""
import json, logging, sys, time
logging.disable(logging.CRITICAL)
from zigzag.api import get_hardware_performance_zigzag
out = []
for case in json.load(open(sys.argv[1])):
    t0 = time.perf_counter()
    e, lat, cmes = get_hardware_performance_zigzag(case["wl"], case["hw"], case["map"], opt="energy",
        dump_folder=case["dump"], loma_show_progress_bar=False)
    def find(x):
        if hasattr(x, "mem_energy_breakdown"):
            return x
        if isinstance(x, (list, tuple)):
            for y in x:
                r = find(y)
                if r is not None:
                    return r
    cme = find(cmes)
    mem = {str(k): [float(v) for v in vals] for k, vals in cme.mem_energy_breakdown.items()}
    out.append({"energy_pj": float(e), "latency": float(lat), "mac_pj": float(cme.mac_energy),
                "mem_pj": float(cme.mem_energy), "mem_breakdown": mem, "seconds": time.perf_counter() - t0})
print(json.dumps(out))
"""


def zigzag(gemms: list[Gemm], arch: CascadeArch, py: Path) -> list[dict]:
    import yaml

    with tempfile.TemporaryDirectory() as d:
        dd = Path(d)
        cases = []
        for i, g in enumerate(gemms):
            wl, hw, mp = zigzag_inputs(g, arch)
            for kind, obj in (("wl", wl), ("hw", hw), ("map", mp)):
                (dd / f"{kind}{i}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
            cases.append({"wl": f"wl{i}.yaml", "hw": f"hw{i}.yaml", "map": f"map{i}.yaml", "dump": f"out{i}"})
        (dd / "cases.json").write_text(json.dumps(cases))
        (dd / "driver.py").write_text(_ZZ_DRIVER)
        res = subprocess.run([str(py), "driver.py", "cases.json"], cwd=dd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---- the comparison -------------------------------------------------------------------------------------------


@dataclass
class PeerRow:
    gemm: str
    ours_cycles: float
    ours_aggregate_cycles: float
    scalesim_cycles: float
    cycle_gap: float
    ours_energy_uj: float
    zigzag_energy_uj: float
    energy_gap: float
    ours_mac_dram_uj: float
    zigzag_mac_dram_uj: float


def compare_peers(seq_lens: list[int], env: Path = DEFAULT_ENV) -> dict:
    py = peer_python(env)
    arch = get_preset(ARCH)
    aggregate = load_arch(ARCH, {"arrays.2d.systolic": False})
    assert isinstance(arch, CascadeArch) and isinstance(aggregate, CascadeArch)  # systolic-os32 extends flat
    gemms = attention_gemms(seq_lens)
    ss_cycles, ss_wall = scalesim(gemms, arch, py)
    zz = zigzag(gemms, arch, py)
    rows = []
    for g, ssc, z in zip(gemms, ss_cycles, zz, strict=True):
        o = ours(g, arch)
        agg = ours(g, aggregate)
        zz_dram = sum(v[-1] for v in z["mem_breakdown"].values())  # last level of each operand = DRAM
        rows.append(PeerRow(
            gemm=g.name, ours_cycles=o["compute_cycles"], ours_aggregate_cycles=agg["compute_cycles"],
            scalesim_cycles=ssc, cycle_gap=o["compute_cycles"] / ssc - 1,
            ours_energy_uj=o["energy_pj"] / 1e6, zigzag_energy_uj=z["energy_pj"] / 1e6,
            energy_gap=o["energy_pj"] / z["energy_pj"] - 1,
            ours_mac_dram_uj=(o["mac_pj"] + o["dram_pj"]) / 1e6, zigzag_mac_dram_uj=(z["mac_pj"] + zz_dram) / 1e6,
        ))
    zz_wall = sum(z["seconds"] for z in zz)
    rate = ours_rate(gemms, arch)
    return {
        "arch": ARCH,
        "rows": [asdict(r) for r in rows],
        "evals_per_s": {"attnforge": rate, "scalesim": len(gemms) / ss_wall, "zigzag": len(gemms) / zz_wall},
        "speedup_vs_scalesim": rate / (len(gemms) / ss_wall),
        "speedup_vs_zigzag": rate / (len(gemms) / zz_wall),
    }


def format_peers(d: dict) -> str:
    lines = [f"{'GEMM':<12} {'ours cyc':>10} {'SCALE-Sim':>10} {'gap':>7} {'ours aggr':>10}   "
             f"{'ours uJ':>9} {'ZigZag uJ':>9} {'gap':>7}   {'MAC+DRAM ours':>13} {'ZigZag':>9}"]
    for r in d["rows"]:
        lines.append(f"{r['gemm']:<12} {r['ours_cycles']:>10.0f} {r['scalesim_cycles']:>10.0f} {r['cycle_gap']:>+7.2%} "
                     f"{r['ours_aggregate_cycles']:>10.0f}   {r['ours_energy_uj']:>9.2f} {r['zigzag_energy_uj']:>9.2f} "
                     f"{r['energy_gap']:>+7.1%}   {r['ours_mac_dram_uj']:>13.2f} {r['zigzag_mac_dram_uj']:>9.2f}")
    e = d["evals_per_s"]
    lines.append("")
    lines.append(f"evaluations/s: attnforge {e['attnforge']:,.0f}, SCALE-Sim {e['scalesim']:.3g}, ZigZag {e['zigzag']:.3g} "
                 f"({d['speedup_vs_scalesim']:,.0f}x SCALE-Sim, {d['speedup_vs_zigzag']:,.0f}x ZigZag)")
    return "\n".join(lines)
