"""cocotb bench of fusemax-top: whole layers bit exact vs sim.fusemax.golden per tile, cycles == the exact top cycle
model (sim.fusemax.top_cycle_model), float error vs the float reference within the golden bound.

The memory port is answered by :class:`Memory`, cycle by cycle, with the timing of sim/contract/memport.py (latency,
outstanding requests, cycles per beat from the case's ``mem``); the long runs use the fastbench's HDL memory. Other tests:
refused descriptors (every status code, then an exact run), output back-pressure (bit exact, cycles not compared).
"""

from __future__ import annotations

import time
from typing import Any

import cocotb
from fast_jobs import TopLayer, top_layer, top_outputs
from tb_harness import Harness, config, record

from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.fusemax.golden import dequantize_output, error_vs_float
from attnforge.sim.fusemax.top_cycle_model import analytical_cycles, top_schedule
from attnforge.sim.memory.port import PortModel


class Memory:
    """The memory port's far side, cycle by cycle, timed by :class:`attnforge.sim.memory.port.PortModel` (the rules
    of sim/contract/memport.py, checked against the HDL memory model by tests/test_memport_rtl.py): ``mreq.ready``
    while a slot is free, each request's words at the cycles the model gives, in request order."""

    def __init__(self, dut: Any, timing: MemTiming, port: contract.MemPort) -> None:
        self.dut, self.timing = dut, timing
        self.req, self.resp = port.request(), port.response()
        self.valid = dut.mresp__valid  # the harness clears it on reset
        self.image: dict[int, int] = {}
        self.clear()

    def clear(self) -> None:
        self.port = PortModel(self.timing)
        self.beats: dict[int, int] = {}  # cycle -> response word
        self.cycle = 0
        self.accepted: list[tuple[int, int, int]] = []  # (cycle, addr, len)
        self.dropped = 0  # beats offered while the design's mresp.ready was low (the design promises never)

    def drive(self) -> None:
        self.dut.mreq__ready.value = int(self.port.ready(self.cycle))
        word = self.beats.get(self.cycle)
        self.dut.mresp__valid.value = int(word is not None)
        self.dut.mresp__payload.value = word or 0

    def sample(self, cycle: int) -> None:
        if int(self.dut.mresp__valid.value) and not int(self.dut.mresp__ready.value):
            self.dropped += 1
        if int(self.dut.mreq__valid.value) and int(self.dut.mreq__ready.value):
            r = self.req.unpack(self.dut.mreq__payload.value.to_unsigned())
            for i, at in enumerate(self.port.beat_cycles(cycle, r["len"])):
                self.beats[at] = self.resp.pack(
                    {"data": self.image.get(r["addr"] + i, 0), "tag": r["tag"], "last": int(i == r["len"] - 1)})
            self.accepted.append((cycle, r["addr"], r["len"]))
        self.cycle = cycle + 1


def _timing() -> MemTiming:
    return MemTiming(**config().get("mem", {})).validate()


async def _setup(dut: Any, seed: int, p_ready: float = 1.0) -> tuple[Harness, Memory]:
    h = Harness(dut, seed)
    h.source("desc")
    h.sink("st")
    h.sink("perf")
    h.sink("o", p_ready)
    h.count("mac_active")
    p = config()["params"]
    mem = Memory(dut, _timing(), contract.fusemax_top_mem(p["rows"], p["cols"]))
    h.sources["mem"] = mem  # type: ignore[assignment]  # driven and sampled with the streams, every cycle
    await h.start()
    return h, mem


async def run_layer(h: Harness, mem: Memory, layer: TopLayer) -> dict[str, Any]:
    """One descriptor through the top; returns the output [heads, P, d] and the cycles desc -> last output."""
    mem.clear()
    mem.cycle = h.cycle
    mem.image = layer.image
    o, st, perf = h.sinks["o"], h.sinks["st"], h.sinks["perf"]
    o.clear()
    st.clear()
    perf.clear()
    h.sources["desc"].fired.clear()
    h.counts["mac_active"] = 0
    h.sources["desc"].queue.append(layer.desc)
    n_out = len(layer.expect)
    t0, c0 = time.perf_counter(), h.cycle
    await h.run(lambda: len(o.beats) >= n_out and len(st.beats) >= 1 and len(perf.beats) >= 1, max_cycles=50_000_000)
    rtl_cycles = o.fired[-1] - h.sources["desc"].fired[0]
    counters = contract.fusemax_top(**layer.params)["perf"].unpack(perf.beats[0])
    return {"beats": list(o.beats), "cycles": rtl_cycles, "mac": h.counts["mac_active"], "status": st.beats[0],
            "wall": time.perf_counter() - t0, "simulated": h.cycle - c0, "busy": int(h.dut.busy.value),
            "perf": counters}


async def check_layer(h: Harness, mem: Memory, label: str, layer: TopLayer, p: int, m: int,
                      exact_cycles: bool = True) -> None:
    """Run a layer, compare bit for bit, cycles, MAC count and float error; record a row; then assert."""
    prm = layer.params
    res = await run_layer(h, mem, layer)
    sched = top_schedule(prm["rows"], prm["cols"], prm["d"], len(layer.heads), p, m, mem.timing, prm["max_keys"])
    diff = int(sum(a != b for a, b in zip(res["beats"], layer.expect, strict=True)))
    outs = top_outputs(layer, res["beats"], p)
    reps = [error_vs_float(dequantize_output(o, qa, layer.fx), *fl, layer.vis)
            for o, qa, fl in zip(outs, layer.heads, layer.floats, strict=True)]
    worst = max(reps, key=lambda r: r.max_abs_rel_vmax)
    cycles_ok = res["cycles"] == sched.total_cycles if exact_cycles else True
    row: dict[str, Any] = {
        "workload": label, "heads": len(layer.heads), "p": p, "m": m, "mem": vars(mem.timing),
        "rtl_cycles": res["cycles"], "sim_cycles": sched.total_cycles if exact_cycles else None,
        "analytical_cycles": analytical_cycles(prm["rows"], prm["cols"], prm["d"], prm["max_keys"], len(layer.heads), p,
                                               m, mem.timing) if exact_cycles else None,
        "mismatched_beats": diff, "max_abs_error": 0 if diff == 0 else None, "mac_cycles": res["mac"],
        "mac_utilization": res["mac"] / res["cycles"], "model_utilization": sched.utilization,
        "stall_cycles": sched.stall_cycles, "status": res["status"], "dropped_beats": mem.dropped,
        "float_max_abs_error": worst.max_abs, "float_max_abs_rel_vmax": worst.max_abs_rel_vmax,
        "float_bound": worst.bound, "cycles_simulated": res["simulated"], "wall_s": res["wall"],
        "backpressure": not exact_cycles,
    }
    float_ok = all(r.max_abs <= r.bound for r in reps)
    mac_ok = res["mac"] == sched.mac_cycles == res["perf"]["mac_cycles"]
    perf_ok = res["perf"]["cycles"] == res["cycles"]  # the top's own cycle counter agrees with the bench's
    row["passed"] = bool(diff == 0 and cycles_ok and mac_ok and perf_ok and float_ok and res["status"] == 0
                         and mem.dropped == 0 and res["busy"] == 0)
    record(row)
    assert res["status"] == 0, f"{label}: status {res['status']}"
    assert diff == 0, f"{label}: {diff} output beats differ from the golden model"
    assert cycles_ok, f"{label}: RTL cycles {res['cycles']} != cycle model {sched.total_cycles}"
    assert mac_ok, f"{label}: mac_active {res['mac']} (perf {res['perf']}) != {sched.mac_cycles}"
    assert perf_ok, f"{label}: perf counter {res['perf']} != bench cycles {res['cycles']}"
    assert float_ok, f"{label}: float error {worst.max_abs} above bound {worst.bound}"
    assert mem.dropped == 0 and res["busy"] == 0, f"{label}: dropped {mem.dropped} beats / still busy"


@cocotb.test()
async def test_layers(dut: Any) -> None:
    """Whole layers (heads x P x M from the case's shapes) with workload tensors, no output stalls: exact."""
    cfg = config()
    h, mem = await _setup(dut, cfg.get("seed", 0))
    for wl in cfg["workloads"]:
        for shape in cfg["shapes"]:
            heads, p, m = shape
            causal = bool(cfg.get("causal", False))
            layer = top_layer(cfg["params"], heads, p, m, workload=wl, seed=cfg.get("seed", 0),
                              bases=(3, 1000, 5000) if p % cfg["params"]["cols"] else None, causal=causal)
            await check_layer(h, mem, f"{wl}:{heads}x{p}x{m}{':causal' if causal else ''}", layer, p, m)


@cocotb.test()
async def test_backpressure(dut: Any) -> None:
    """Random output back-pressure (the engine stalls): still bit exact, the layer completes."""
    cfg = config()
    h, mem = await _setup(dut, cfg.get("seed", 0) + 1, p_ready=0.6)
    heads, p, m = cfg["shapes"][0]
    layer = top_layer(cfg["params"], heads, p, m, workload=cfg["workloads"][0], seed=cfg.get("seed", 0) + 1)
    await check_layer(h, mem, "backpressure", layer, p, m, exact_cycles=False)


@cocotb.test()
async def test_refused(dut: Any) -> None:
    """Each refusal reason gets its status code, nothing is requested and the top stays idle; then a valid layer
    runs exact, cycles included."""
    cfg = config()
    prm = cfg["params"]
    h, mem = await _setup(dut, cfg.get("seed", 0) + 2)
    c = contract.fusemax_top(**prm)
    codes = contract.TOP_STATUS
    good = {"heads": 1, "p": prm["cols"], "m": prm["rows"], "d": prm["d"], "causal": 0, "q_base": 0, "k_base": 0,
            "v_base": 0, "alpha": {"alpha_q": 1, "alpha_sh": 0}}
    bad = [({"heads": 0}, "zero_size"), ({"m": 0}, "zero_size"), ({"p": 0}, "zero_size"),
           ({"m": prm["max_keys"] + prm["rows"]}, "above_max"), ({"heads": prm["max_heads"] + 1}, "above_max"),
           ({"d": prm["d"] + 1}, "bad_d")]
    ok = True
    for change, why in bad:
        fields = {**good, **change}
        if any(fields[k] >= 1 << c["desc"][k].width for k in change):
            continue
        h.sinks["st"].clear()
        h.sources["desc"].queue.append(c["desc"].pack(fields))
        await h.run(lambda: len(h.sinks["st"].beats) >= 1, max_cycles=20)
        for _ in range(3):
            await h.step()
            ok &= int(dut.busy.value) == 0 and not mem.accepted
        ok &= h.sinks["st"].beats == [codes[why]]
    record({"workload": "refused-desc", "passed": ok, "rtl_cycles": None, "sim_cycles": None, "max_abs_error": 0})
    assert ok, "a refused descriptor got the wrong code, started the top or issued a request"
    heads, p, m = cfg["shapes"][0]
    layer = top_layer(prm, heads, p, m, workload=cfg["workloads"][0], seed=cfg.get("seed", 0) + 3)
    await check_layer(h, mem, "after-refusal", layer, p, m)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    """Reset in the middle of a layer (requests in flight, engine busy), then a whole layer must be exact with
    exact cycles: nothing of the interrupted run survives (banks, slots, order walkers, engine)."""
    cfg = config()
    h, mem = await _setup(dut, cfg.get("seed", 0) + 4)
    heads, p, m = cfg["shapes"][0]
    layer = top_layer(cfg["params"], heads, p, m, workload=cfg["workloads"][0], seed=cfg.get("seed", 0) + 5)
    mem.clear()
    mem.cycle = h.cycle
    mem.image = layer.image
    h.sources["desc"].queue.append(layer.desc)
    await h.run(lambda: len(h.sinks["o"].beats) >= 1)  # the engine is in its first tile's output
    assert int(dut.busy.value) == 1
    await h.reset(3)
    assert int(dut.busy.value) == 0, "top still busy after reset"
    await check_layer(h, mem, "reset-midrun", layer, p, m)
