"""Simulate your arch file through the Python API and print latency, energy and the bound per point.

Run from the repository root: python examples/simulate.py
"""

from __future__ import annotations

from pathlib import Path

import attnforge

HERE = Path(__file__).resolve().parent


def main() -> None:
    ours = attnforge.Scenario.build(accelerator="fusemax", workload="bert-base", seq_lens=["1k", "16k", "64k"],
                                    batch=64, arch=HERE / "my_arch.yaml")
    base = attnforge.Scenario.build(accelerator="fusemax", workload="bert-base", seq_lens=["1k", "16k", "64k"], batch=64)
    for mine, ref in zip(attnforge.simulate(ours), attnforge.simulate(base), strict=True):
        print(f"seq {mine.seq_len:>6}: {mine.latency_s * 1e3:8.3f} ms ({ref.latency_s / mine.latency_s:.2f}x the preset), "
              f"{mine.energy_j:9.3f} J, {mine.bound}-bound, 2D utilization {mine.utilization['2d']:.3f}")
    df = attnforge.to_frame(attnforge.simulate(ours))
    print(df[["arch", "seq_len", "cycles", "latency_s", "energy_j", "dram_bytes"]].to_string(index=False))


if __name__ == "__main__":
    main()
