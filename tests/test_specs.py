"""Arch presets, YAML loading, overrides, workloads and length parsing: every bad input is a one-line SpecError."""

from __future__ import annotations

import math

import pytest
from helpers import simulate

from attnforge.sim.specs.arch import Arch, get_preset, load_arch, preset_names
from attnforge.sim.specs.errors import SpecError
from attnforge.workloads import get_model, load_models, make_workload, parse_length

PRESETS = ["flat", "fusemax", "unfused"]


def test_preset_names():
    assert set(PRESETS) <= set(preset_names())
    assert preset_names() == sorted(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads(name):
    a = get_preset(name)
    assert isinstance(a, Arch)
    assert a.name == name
    assert load_arch(name) == a
    assert a.area_mm2() > 0


@pytest.mark.parametrize("name", PRESETS)
def test_fusemax_paper_presets_shape(name):
    a = get_preset(name)
    assert a.arrays["2d"].dims == (256, 256)
    assert a.arrays["1d"].dims == (256,)
    assert a.word_bytes == 2
    assert not a.arrays["2d"].systolic  # the paper's aggregate model has no skew fill/drain


def test_preset_buffers():
    assert get_preset("fusemax").buffer.bytes == 16 * 2**20
    assert get_preset("flat").buffer.bytes == 32 * 2**20
    # unfused extends flat
    assert get_preset("unfused").buffer == get_preset("flat").buffer
    assert get_preset("unfused").arrays == get_preset("flat").arrays


def test_unknown_preset():
    with pytest.raises(SpecError) as ei:
        load_arch("tpu-v9")
    msg = str(ei.value)
    assert ei.value.field == "arch"
    assert msg.startswith("arch")
    assert "tpu-v9" in msg
    for name in PRESETS:
        assert name in msg
    assert "\n" not in msg


def test_malformed_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\narrays: [1, 2\n  buffer: {bytes: 3\n")
    with pytest.raises(SpecError) as ei:
        load_arch(p)
    assert "malformed YAML" in str(ei.value)
    assert "\n" not in str(ei.value)


def test_yaml_not_a_mapping(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError):
        load_arch(p)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError) as ei:
        load_arch(tmp_path / "nope.yaml")
    assert "not found" in str(ei.value)


def test_negative_buffer_bytes_extends(tmp_path):
    p = tmp_path / "neg.yaml"
    p.write_text("extends: fusemax\nname: neg\nbuffer:\n  bytes: -1\n")
    with pytest.raises(SpecError) as ei:
        load_arch(p)
    assert "buffer" in str(ei.value)
    assert "buffer" in ei.value.field


def test_negative_buffer_bytes_full_file(tmp_path):
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("attnforge.sim.specs.presets").joinpath("fusemax.yaml").read_text())
    raw["buffer"]["bytes"] = -4096
    p = tmp_path / "full.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as ei:
        load_arch(p)
    assert "buffer.bytes" in str(ei.value)


def test_valid_yaml_file_with_extends(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("extends: fusemax\nname: big\nbuffer:\n  bytes: 67108864\n")
    a = load_arch(p)
    assert a.name == "big"
    assert a.buffer.bytes == 64 * 2**20
    # deep merge keeps the rest of the buffer table
    assert a.buffer.energy_ref_bytes == get_preset("fusemax").buffer.energy_ref_bytes
    assert a.energy == get_preset("fusemax").energy


def test_override_applies():
    a = load_arch("fusemax", overrides={"buffer.bytes": 1 << 20, "clock_mhz": 1000})
    assert a.buffer.bytes == 1 << 20
    assert a.clock_mhz == 1000
    # the cached preset is untouched
    assert get_preset("fusemax").buffer.bytes == 16 * 2**20


@pytest.mark.parametrize("key", ["buffer.nonexistent", "nosuch.field", "nosuch", "arrays.3d.dims"])
def test_override_unknown_field(key):
    with pytest.raises(SpecError) as ei:
        load_arch("fusemax", overrides={key: 1})
    assert "no such field" in str(ei.value)
    assert key in str(ei.value)
    assert ei.value.allowed  # the names that level does have


def test_rf_depth_moves_rf_energy_and_pe_area():
    """A deeper or shallower PE register file than its figures' depth (``ref_words``) scales its read/write energy
    by the artifact's own 4 -> 12 entry trend and the PE area per entry; the preset itself is unchanged; a depth
    that would leave a PE no area is one error naming the field."""
    base = get_preset("fusemax")
    deep = load_arch("fusemax", overrides={"arrays.2d.rf.words": 24})
    assert base.pj("2d", "rf_read") == 0.653 and base.pj("2d", "mac") == deep.pj("2d", "mac")
    assert deep.pj("2d", "rf_read") == pytest.approx(0.653 * 2 ** (math.log(0.653 / 0.292) / math.log(3)))
    assert deep.pj("2d", "rf_write") == pytest.approx(0.570 * 2 ** (math.log(0.570 / 0.225) / math.log(3)))
    assert deep.area_mm2() - base.area_mm2() == pytest.approx(256 * 256 * 12 * 1404 / 1e6)
    # the table's own pair: FLAT's 4-entry figures, scaled to FuseMax's 12 entries, give FuseMax's figures
    flat12 = load_arch("flat", overrides={"arrays.2d.rf.words": 12})
    assert flat12.pj("2d", "rf_read") == pytest.approx(0.653) and flat12.pj("2d", "rf_write") == pytest.approx(0.570)
    wl = make_workload("bert-base", seq_len=1024, batch=4)
    r0, r1 = simulate("fusemax", wl), simulate("fusemax", wl, arch=deep)
    assert r1.cycles == r0.cycles and r1.energy_j > r0.energy_j
    with pytest.raises(SpecError) as ei:
        load_arch("fusemax", overrides={"arrays.1d.rf.ref_words": 64})  # 32 entries, figures for 64: no PE left
    assert "arrays.1d.rf.words" in str(ei.value) and ">= " in str(ei.value)


def test_override_invalid_value():
    with pytest.raises(SpecError) as ei:
        load_arch("fusemax", overrides={"buffer.bytes": 0})
    assert "buffer" in str(ei.value)


def test_unknown_workload():
    with pytest.raises(SpecError) as ei:
        make_workload("gpt-17")
    msg = str(ei.value)
    assert "gpt-17" in msg
    for name in ("bert-base", "trxl", "t5-small", "xlm"):
        assert name in msg
    with pytest.raises(SpecError):
        get_model("gpt-17")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch": 0},
        {"batch": -3},
        {"seq_len": 0},
        {"seq_len": -1024},
        {"p": 0},
        {"m": -1},
        {"batch": 2.5},
        {"batch": True},
    ],
)
def test_bad_sizes(kwargs):
    with pytest.raises(SpecError):
        make_workload("bert-base", **kwargs)


def test_bad_stage():
    with pytest.raises(SpecError) as ei:
        make_workload("bert-base", stage="train")
    assert "prefill" in str(ei.value) and "decode" in str(ei.value)


def test_make_workload_defaults():
    wl = make_workload("bert-base")
    assert (wl.batch, wl.p, wl.m, wl.heads, wl.e, wl.f) == (64, 1024, 1024, 12, 64, 64)
    assert wl.rank_sizes() == {"b": 64, "h": 12, "p": 1024, "m": 1024, "e": 64, "f": 64}
    assert make_workload("gpt2-small").causal is True
    assert make_workload("gpt2-small", causal=False).causal is False


@pytest.mark.parametrize(
    ("text", "value"),
    [("4k", 4096), ("4K", 4096), ("1M", 1048576), ("1m", 1048576), ("4096", 4096), (" 64k ", 65536)],
)
def test_parse_length(text, value):
    assert parse_length(text) == value


@pytest.mark.parametrize("text", ["", "k", "abc", "4x", "1.5k", "0", "-4k", "M1"])
def test_parse_length_bad(text):
    with pytest.raises(SpecError) as ei:
        parse_length(text)
    assert "seq-len" in str(ei.value)


@pytest.mark.parametrize(
    ("name", "d_model", "heads", "d_head", "d_ff"),
    [
        ("bert-base", 768, 12, 64, 3072),
        ("trxl", 1024, 16, 64, 4096),
        ("t5-small", 512, 8, 64, 2048),
        ("xlm", 2048, 16, 128, 8192),
    ],
)
def test_fusemax_paper_workloads(name, d_model, heads, d_head, d_ff):
    m = get_model(name)
    assert (m.d_model, m.heads, m.d_head, m.d_ff) == (d_model, heads, d_head, d_ff)
    assert m.causal is False


def test_load_models_file(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("tiny:\n  layers: 2\n  heads: 2\n  d_model: 8\n  d_head: 4\n  d_ff: 16\n")
    models = load_models(p)
    assert list(models) == ["tiny"]
    assert models["tiny"].d_model == 8


@pytest.mark.parametrize(
    "text",
    [
        "tiny:\n  layers: 2\n  heads: 3\n  d_model: 8\n  d_head: 4\n  d_ff: 16\n",  # heads*d_head != d_model
        "tiny:\n  layers: 0\n  heads: 2\n  d_model: 8\n  d_head: 4\n  d_ff: 16\n",
        "tiny:\n  layers: 2\n  heads: 2\n  d_model: 8\n  d_head: 4\n  d_ff: 16\n  colour: red\n",
        "tiny: [1, 2\n",
        "[]\n",
    ],
)
def test_load_models_bad(tmp_path, text):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(SpecError):
        load_models(p)


def test_buffer_too_small():
    arch = load_arch("fusemax", overrides={"buffer.bytes": 1024})
    wl = make_workload("bert-base", seq_len=4096)
    with pytest.raises(SpecError) as ei:
        simulate("fusemax", wl, arch=arch)
    assert "arch.buffer.bytes" in str(ei.value)
    assert ei.value.field == "arch.buffer.bytes"


def test_unknown_accelerator_and_scope():
    wl = make_workload("bert-base")
    with pytest.raises(SpecError) as ei:
        simulate("tpu", wl)
    assert "fusemax" in str(ei.value) and "flat" in str(ei.value)
    with pytest.raises(SpecError) as ei:
        simulate("fusemax", wl, scope="everything")
    assert "end-to-end" in str(ei.value)


def test_hbm_channels_set_alone_move_the_pin_rate(tmp_path):
    """`--set hbm.channels=8` (or a file that extends a preset and sets only the channels) halves SpAtten's pins:
    the model scales its HBM by dram.bandwidth_gib_s, so a channel count changed alone would have no effect on the
    time. A pin rate the user names stays theirs (a bandwidth sweep acts as channels of this kind)."""
    gib = 1e9 / 2**30
    assert load_arch("spatten", {"hbm.channels": 8}).dram.bandwidth_gib_s == pytest.approx(8 * 32 * gib)
    assert load_arch("spatten", {"hbm.channel_gb_s": 16}).dram.bandwidth_gib_s == pytest.approx(16 * 16 * gib)
    both = load_arch("spatten", {"hbm.channels": 8, "dram.bandwidth_gib_s": 100.0})
    assert both.dram.bandwidth_gib_s == 100.0 and both.hbm.channels == 8
    other = load_arch("spatten", {"spatten.topk_comparators": 8})
    assert other.dram.bandwidth_gib_s == get_preset("spatten").dram.bandwidth_gib_s
    p = tmp_path / "half.yaml"
    p.write_text("extends: spatten\nname: half\nhbm:\n  channels: 8\n")
    assert load_arch(p).dram.bandwidth_gib_s == pytest.approx(8 * 32 * gib)
    p.write_text("extends: spatten\nname: half\nhbm:\n  channels: 8\ndram:\n  bandwidth_gib_s: 100\n")
    assert load_arch(p).dram.bandwidth_gib_s == 100.0
    # a bad channel count is named as the user wrote it, not as the pin rate derived from it
    for bad in ({"hbm.channels": 0}, {"hbm.channel_gb_s": -3}):
        with pytest.raises(SpecError, match=next(iter(bad)).replace(".", r"\.")):
            load_arch("spatten", bad)
    # and the time follows: a decode step at 1k context waits on the HBM
    from attnforge.api import Scenario
    from attnforge.api import simulate as run

    def cycles(**ov: object) -> float:
        sc = Scenario.build(accelerator="spatten", workload="gpt2-small", seq_lens=[1024], batch=1, stage="decode",
                            overrides=ov)
        return float(run(sc)[0].cycles)

    assert cycles(**{"hbm.channels": 8}) > 1.5 * cycles()


def test_override_sets_a_field_the_preset_leaves_at_its_default() -> None:
    """`--set spatten.query_overlap=false` names a field of the schema that spatten.yaml leaves at its default: it
    is set, not refused; an unknown name is still one error that lists every field, defaulted ones included."""
    arch = load_arch("spatten", {"spatten.query_overlap": False, "spatten.softmax_passes": 3})
    assert arch.spatten.query_overlap is False and arch.spatten.softmax_passes == 3
    with pytest.raises(SpecError, match="no such field 'bogus'") as err:
        load_arch("spatten", {"spatten.bogus": 1})
    assert "query_overlap" in str(err.value) and "topk_filter_overlap" in str(err.value)
    with pytest.raises(SpecError, match="no such field 'top'"):
        load_arch("spatten", {"top.max_d": 3})
