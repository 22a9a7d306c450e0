"""Fuzzing the command line: whatever a user types, `attnforge` ends in one of two ways.

* exit 0, and with ``--json`` a document whose every number is finite and non-negative;
* exit 2 with exactly one line on stderr naming the problem.

Never a traceback, never a hang. The explicit cases below are the seed corpus (each was once a traceback or a hang);
hypothesis then varies strings, numbers, encodings and paths around the main options. The whole file runs in well
under 30 s: few examples per property, a deadline per example, and subprocesses only where a hang is the risk.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attnforge.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=15, deadline=5000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def run(argv: list[str]) -> tuple[int, str, str]:
    """``attnforge ARGV`` in-process: (exit code, stdout, stderr); a traceback fails the test right here."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


def _numbers(doc: object) -> list[float]:
    if isinstance(doc, bool) or doc is None or isinstance(doc, str):
        return []
    if isinstance(doc, (int, float)):
        return [float(doc)]
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in _numbers(v)]
    if isinstance(doc, list):
        return [x for v in doc for x in _numbers(v)]
    return []


def check(argv: list[str], expect: int | None = None) -> tuple[int, str, str]:
    """The contract: exit 0 with finite, non-negative JSON numbers, or exit 2 with exactly one stderr line."""
    rc, out, err = run(argv)
    assert "Traceback" not in err, err
    assert rc in (0, 2), (argv, rc, err)
    if rc == 2:
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].strip(), (argv, err)
        assert "error" in lines[0]
    elif "--json" in argv:
        doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in --json output of {argv}"))
        nums = _numbers(doc)
        assert all(math.isfinite(x) for x in nums), argv
        assert all(x >= 0 for x in nums), (argv, [x for x in nums if x < 0][:5])
    if expect is not None:
        assert rc == expect, (argv, rc, err)
    return rc, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hostile inputs: binary, non-UTF-8, a folder named like a file, a link to /dev/zero, bad traces and data."""
    d = tmp_path_factory.mktemp("hostile")
    (d / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    (d / "latin1.yaml").write_bytes("caf\xe9: {layers: 1}\n".encode("latin-1"))
    (d / "folder.yaml").mkdir()
    (d / "folder.csv").mkdir()
    (d / "zero.yaml").symlink_to("/dev/zero")
    (d / "named.yaml").write_text("m:\n  name: other\n  layers: 1\n  heads: 1\n  d_model: 64\n  d_head: 64\n  d_ff: 64\n")
    (d / "deep.yaml").write_text("[" * 5000 + "]" * 5000)
    (d / "list.json").write_text("[1, 2]")
    (d / "bin.json").write_bytes(b"\x00\xff" * 100)
    (d / "nan.json").write_text('{"points": [], "x": NaN}')
    (d / "a-file").write_text("x")
    trace = ROOT / "workloads" / "traces" / "summary-gpt2-small-wikitext2-per8.csv"
    lines = trace.read_text().splitlines()
    head = lines[0].split(",")
    row = lines[1].split(",")
    row[head.index("key_fetch_num")] = "inf"
    (d / "inf.csv").write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    row[head.index("key_fetch_num")] = "1" + "0" * 30
    (d / "huge.csv").write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    (d / "traces").mkdir()
    (d / "traces" / "t.csv").write_text(trace.read_text())
    (d / "traces" / "junk.csv").write_bytes(b"\xff\xfe" * 50)
    (d / "traces" / "dir.csv").mkdir()
    for name, body in {
        "bad": 'a,b\n"1,2\n', "empty": "", "header": "accelerator,cycles,latency_s,energy_j,dram_bytes\n",
        "text": "accelerator,cycles,latency_s,energy_j,dram_bytes\nx,abc,1,1,1\n",
    }.items():
        (d / f"res-{name}").mkdir()
        (d / f"res-{name}" / "results.csv").write_text(body)
    (d / "res-spec").mkdir()
    (d / "res-spec" / "results.csv").write_text("accelerator,cycles,latency_s,energy_j,dram_bytes\nx,1,1,1,1\n")
    (d / "res-spec" / "spec.json").write_text("{bad")
    for name, extra in {"seed": "seed: -1\nmode: random\nsamples: 1\n", "inf": "arch:\n  clock_mhz: [.inf]\n",
                        "nan": "arch:\n  clock_mhz: [.nan]\n", "bigseed": f"seed: {2**70}\n",
                        "hugeseq": "seq_lens: [99999999999999999999999]\n", "keys": "1: 2\n",
                        "big": "seq_lens: [1k, 2k, 4k, 8k, 16k, 32k, 64k, 128k, 256k, 512k]\n"
                               "batch: [1, 2, 4, 8, 16, 32, 64, 128]\n"
                               "arch:\n  clock_mhz: [" + ", ".join(str(100 + i) for i in range(200)) + "]\n"
                               "  buffer.bytes: [" + ", ".join(str((i + 1) << 20) for i in range(100)) + "]\n"}.items():
        body = "accelerators: [fusemax]\nworkloads: [bert-base]\n"
        body += "" if "seq_lens" in extra else "seq_lens: [1024]\n"
        (d / f"sweep-{name}.yaml").write_text(body + extra)
    (d / "suite0.json").write_text(json.dumps({
        "device": "cuda", "device_name": "X", "dtype": "float16", "kernel": "flash", "date": "2025-01-01",
        "versions": {}, "command": "", "points": [{
            "suite": "fusemax", "label": "bert 1K", "model": "bert-base", "batch": 64, "seq": 1024, "heads": 12,
            "d_head": 64, "sdpa_calls": 1, "latency_s": 0.0, "latency_all_s": [0.0], "tflops": 1.0}]}))
    return d


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the seed corpus: each of these once ended in a traceback (or would hang) ---------------------------------------
SEEDS: list[list[str]] = [
    ["simulate", "--seq-len", ""], ["simulate", "--seq-len", "   "], ["simulate", "--seq-len", ","],
    ["simulate", "--seq-len", "9" * 30], ["simulate", "--batch", "9" * 30], ["simulate", "--p", "-5"],
    ["simulate", "--seq-len", "1e3"], ["simulate", "--seq-len", "k"], ["simulate", "--seq-len", "\x00"],
    ["simulate", "--set", "buffer.bytes=[1"], ["simulate", "--set", "noequals"], ["simulate", "--set", "=1"],
    ["simulate", "--set", "clock_mhz=.inf"], ["simulate", "--set", "clock_mhz=.nan"],
    ["simulate", "--set", "buffer.bytes=" + "9" * 40], ["simulate", "--set", "clock_mhz=" + "[" * 3000],
    ["simulate", "--set", "buffer.bytes=!!python/object:os.system ls"],
    ["simulate", "--tile", "query_block=\u0661\u0662"], ["simulate", "--tile", "query_block=\u00b2"],
    ["simulate", "--tile", "query_block=" + "9" * 30], ["simulate", "--tile", "=4"],
    ["simulate", "--accel", "spatten", "--fidelity", "cycle", "--threshold", "nan"],
    ["simulate", "--accel", "spatten", "--threshold", "inf", "--json"],
    ["simulate", "--accel", "spatten", "--token-ratio", "nan", "--json"],
    ["bench", "--points", "-1"], ["bench", "--points", "0"], ["bench", "--repeats", "0"],
    ["sweep", "example", "--workers", "0"], ["sweep", "example", "--max-points", "10", "--quiet"],
    ["sweep", "example", "--backend", "ray", "--address", "not an address"],
    ["sweep", "example", "--backend", "ray", "--address", "10.255.255.1:99999"],
    ["sweep", "example", "--address", "127.0.0.1:6379"],
    ["topk-cycles", "--n", "nan"], ["topk-cycles", "--k", "inf"],
    ["nope"], [], ["simulate", "--batch", "x\ny"],
    ["reference", "--batch", "99999999999"], ["reference", "--seq-len", "99999999999"],
    ["reference", "--suite", "fusemax", "--budget", "nan"], ["reference", "--budget", "-1"],
]


@pytest.mark.parametrize("argv", SEEDS, ids=[" ".join(a)[:60] or "empty" for a in SEEDS])
def test_seed_corpus(argv: list[str]) -> None:
    check(argv, 2)


FILE_SEEDS: list[tuple[str, ...]] = [
    ("simulate", "--workload", "{d}/bin.yaml"), ("simulate", "--workload", "{d}/latin1.yaml"),
    ("simulate", "--workload", "{d}/folder.yaml"), ("simulate", "--workload", "{d}/zero.yaml"),
    ("simulate", "--workload", "{d}/named.yaml"), ("simulate", "--workload", "{d}/deep.yaml"),
    ("simulate", "--workload", "{d}/missing.yaml"), ("simulate", "--arch", "{d}/bin.yaml"),
    ("simulate", "--arch", "{d}/zero.yaml"), ("simulate", "--arch", "{d}/folder.yaml"),
    ("sweep", "{d}/bin.yaml"), ("sweep", "{d}/folder.yaml"), ("sweep", "{d}/zero.yaml"),
    ("sweep", "{d}/sweep-seed.yaml", "-o", "{d}/o"), ("sweep", "{d}/sweep-inf.yaml", "-o", "{d}/o"),
    ("sweep", "{d}/sweep-nan.yaml", "-o", "{d}/o"), ("sweep", "{d}/sweep-bigseed.yaml", "-o", "{d}/o"),
    ("sweep", "{d}/sweep-hugeseq.yaml", "-o", "{d}/o"), ("sweep", "{d}/sweep-keys.yaml", "-o", "{d}/o"),
    ("sweep", "{d}/sweep-big.yaml", "-o", "{d}/o"),
    ("sweep", "example", "-o", "{d}/a-file"), ("sweep", "example", "-o", "{d}/a-file/sub"),
    ("simulate", "--trace", "{d}"), ("simulate", "--trace", "{d}/folder.csv"), ("simulate", "--trace", "{d}/inf.csv"),
    ("simulate", "--trace", "{d}/huge.csv"), ("simulate", "--trace", "{d}/traces/junk.csv"),
    ("simulate", "--trace", "{d}/zero.yaml"),
    ("gpu-baseline", "--data", "{d}/list.json"), ("gpu-baseline", "--data", "{d}"),
    ("gpu-baseline", "--data", "{d}/bin.json"), ("gpu-baseline", "--data", "{d}/nan.json"),
    ("gpu-baseline", "--data", "{d}/suite0.json"), ("gpu-baseline", "--data", "{d}/zero.yaml"),
    ("gpu-baseline", "-o", "{d}/a-file"), ("gpu-baseline", "--save", "{d}/folder.yaml"),
    ("report", "{d}/res-bad"), ("report", "{d}/res-empty"), ("report", "{d}/res-header"), ("report", "{d}/res-text"),
    ("report", "{d}/res-spec"), ("report", "{d}/a-file"),
    ("compare", "-o", "{d}/a-file"), ("synth", "pe", "-o", "{d}/a-file"), ("rtl", "pe", "-o", "{d}/a-file"),
    ("regress", "--report", "{d}/a-file"), ("reference", "-o", "{d}/a-file", "--seq-len", "64"),
    ("reference", "--suite", "fusemax", "-o", "{d}/a-file/x.json"),
]


@pytest.mark.parametrize("argv", FILE_SEEDS, ids=[" ".join(a)[:60] for a in FILE_SEEDS])
def test_file_seed_corpus(files: Path, argv: tuple[str, ...]) -> None:
    check([a.format(d=files) for a in argv], 2)


def test_trace_beside_bad_files_still_replays(files: Path) -> None:
    """Baseline auto-detection skips a binary CSV and a folder named *.csv next to the trace."""
    rc, out, _ = check(["simulate", "--trace", str(files / "traces" / "t.csv"), "--json"], 0)
    assert json.loads(out)["rows"] > 0


def test_unreadable_file(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("x: 1\n")
    f.chmod(0)
    if os.geteuid() == 0:  # root reads anything: an unreadable path is then a folder without search permission
        (tmp_path / "locked").mkdir()
        (tmp_path / "locked" / "m.yaml").write_text("x: 1\n")
        (tmp_path / "locked").chmod(0)
        f = tmp_path / "locked" / "m.yaml"
        if os.access(f, os.R_OK):
            f = tmp_path / "locked"  # still: a folder where a file is expected
    try:
        check(["simulate", "--workload", str(f)], 2)
    finally:
        (tmp_path / "locked").chmod(0o755) if (tmp_path / "locked").exists() else None


def test_regress_without_cocotb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "cocotb_tools", None)
    monkeypatch.setitem(sys.modules, "cocotb_tools.runner", None)
    _, _, err = check(["regress", "--report", str(tmp_path / "r")], 2)
    assert "cocotb" in err


def test_read_only_output_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable")
        check(["compare", "-o", str(ro / "x")], 2)
        check(["sweep", "example", "-o", str(ro)], 2)
    finally:
        ro.chmod(0o755)


def test_unreachable_ray_address_fails_fast(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import time

    t0 = time.perf_counter()
    _, _, err = check(["sweep", "example", "-o", str(tmp_path / "s"), "--backend", "ray",
                       "--address", f"127.0.0.1:{_closed_port()}"], 2)
    assert "--address" in err and time.perf_counter() - t0 < 10
    assert not (tmp_path / "s").exists()  # failed before any work


# ---- subprocess cases: a hang is the risk, so each runs under a timeout ---------------------------------------------
@pytest.mark.parametrize("argv", [
    ["simulate", "--workload", "{d}/zero.yaml"],
    ["sweep", "{d}/zero.yaml"],
    ["simulate", "--trace", "{d}/zero.yaml"],
    ["gpu-baseline", "--data", "{d}/zero.yaml"],
])
def test_no_hang(files: Path, argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "attnforge", *(a.format(d=files) for a in argv)], capture_output=True,
                       text=True, timeout=30, env=env, cwd=files)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


def test_fifo_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    check(["simulate", "--workload", str(fifo)], 2)  # would block forever on open()


# ---- hypothesis: vary values around the main options ----------------------------------------------------------------
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["1k", "4K", "1M", "1m", "0x10", "1_024", " 64 ", "+8"]))


@FUZZ
@given(seq=st.one_of(text, numbers))
@example(seq="")
@example(seq="\u0664\u0660\u0669\u0666")  # Arabic-Indic 4096
@example(seq="4096,,")
def test_fuzz_seq_len(seq: str) -> None:
    check(["simulate", "--seq-len", seq, "--batch", "1", "--json"])


@FUZZ
@given(batch=numbers, p=st.integers(min_value=-3, max_value=2**31), m=st.integers(min_value=-3, max_value=2**31))
@example(batch="1", p=1, m=2**30)
def test_fuzz_shape(batch: str, p: int, m: int) -> None:
    check(["simulate", "--seq-len", "1k", "--batch", batch, "--p", str(p), "--m", str(m), "--json"])


@FUZZ
@given(key=st.sampled_from(["buffer.bytes", "clock_mhz", "dram.bandwidth_gib_s", "arrays", "nope.x", "", "buffer"]),
       value=st.one_of(text, numbers, st.sampled_from(["[1, 2]", "{a: 1}", "null", "true", ".inf", "-.inf", ".nan", "~",
                                                        "1e308", "-1", "0", "&a [*a]"])))
def test_fuzz_set(key: str, value: str) -> None:
    check(["simulate", "--seq-len", "1k", "--set", f"{key}={value}", "--json"])


@FUZZ
@given(name=st.sampled_from(["query_block", "key_block", "nope", ""]), value=st.one_of(text, numbers))
def test_fuzz_tile(name: str, value: str) -> None:
    check(["simulate", "--seq-len", "1k", "--tile", f"{name}={value}", "--json"])


@FUZZ
@given(opt=st.sampled_from(["--threshold", "--token-ratio", "--head-ratio", "--v-ratio", "--quant", "--topk-parallelism"]),
       value=st.one_of(numbers, text), cycle=st.booleans())
@example(opt="--threshold", value="nan", cycle=True)
def test_fuzz_spatten_knobs(opt: str, value: str, cycle: bool) -> None:
    argv = ["simulate", "--accel", "spatten", "--seq-len", "256", "--batch", "1", opt, value, "--json"]
    check(argv + (["--fidelity", "cycle", "--cycle-rows", "2"] if cycle else []))


@FUZZ
@given(opt=st.sampled_from(["--workload", "--arch", "--trace", "--accel"]),
       value=st.one_of(text, st.sampled_from(["/", ".", "..", "/dev/null", "/proc/self/mem", "x.yaml", "x.yaml:y",
                                              "bert-base.yaml", "a.csv", "/etc/passwd"])))
def test_fuzz_names_and_paths(opt: str, value: str) -> None:
    check(["simulate", opt, value, "--json"])


@FUZZ
@given(points=st.integers(min_value=-(2**40), max_value=2**40), repeats=st.integers(min_value=-3, max_value=2))
@example(points=-1, repeats=1)
def test_fuzz_bench(points: int, repeats: int) -> None:
    if 1 <= points <= 10_000_000 and repeats >= 1:
        points = min(points, 64)  # a valid count runs for real: keep it quick
    check(["bench", "--points", str(points), "--repeats", str(repeats), "--json"])


@FUZZ
@given(body=st.one_of(text, st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
                      st.sampled_from(["name: ../../x\n", "name: /abs\n", "name: ''\n", "samples: 0\nmode: random\n",
                                       "batch: [0]\n", "tiles: {query_block: [-1]}\n", "scope: nope\n",
                                       "causal: maybe\n", "arch: {clock_mhz: []}\n"])))
def test_fuzz_sweep_spec(tmp_path: Path, body: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_bytes(("accelerators: [flat]\nworkloads: [bert-base]\nseq_lens: [1k]\n" + body).encode("utf-8", "replace"))
    rc, _, _ = check(["sweep", str(f), "-o", str(tmp_path / "o"), "--quiet", "--workers", "1"])
    if rc == 0:  # the output stayed inside -o whatever the spec's name
        assert (tmp_path / "o" / "results.csv").exists()
