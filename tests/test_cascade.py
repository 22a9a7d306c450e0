"""Cascade analyses (op counts, passes, crossing tensors, spill words) against hand-computed values."""

from __future__ import annotations

import pytest

from attnforge.sim.analytical.cascade import get_cascade, tiled_sizes
from attnforge.sim.specs.errors import SpecError

# b=1, h=2, p=8, m=16, e=4, f=4; m0=4 -> m1=4
B, H, P, M, E, F, M0 = 1, 2, 8, 16, 4, 4, 4
M1 = M // M0
SIZES = {"b": B, "h": H, "p": P, "m": M, "e": E, "f": F, "m0": M0, "m1": M1}
BH = B * H


def test_tiled_sizes_adds_m0_m1():
    s = tiled_sizes({"b": B, "h": H, "p": P, "m": M, "e": E, "f": F}, M0)
    assert s["m0"] == 4 and int(s["m1"]) == 4
    # padding: 17 keys need 5 tiles of 4
    assert int(tiled_sizes({"m": 17}, 4)["m1"]) == 5


def test_three_pass_ops():
    ops = get_cascade("3-pass").ops(SIZES)
    expected = {
        "QK": BH * M * P * E,  # 2*16*8*4 = 1024
        "GM": BH * P * M,  # 256
        "SN": BH * M * P,  # 256
        "SD": BH * P * M,  # 256
        "A": BH * M * P,  # 256
        "AV": BH * F * P * M,  # 1024
    }
    assert expected == {"QK": 1024, "GM": 256, "SN": 256, "SD": 256, "A": 256, "AV": 1024}
    assert ops == expected


def test_two_pass_ops():
    ops = get_cascade("2-pass").ops(SIZES)
    expected = {
        "QK": BH * M1 * M0 * P * E,  # 1024
        "LM": BH * M1 * P * M0,  # 256
        "GM": BH * P * M1,  # 64
        "SLN": BH * M1 * M0 * P,  # 256
        "SLD": BH * M1 * P * M0,  # 256
        "SLNV": BH * M1 * F * P * M0,  # 1024
        "PRM": BH * M1 * P,  # 64
        "SD": BH * P * M1,  # 64
        "NV": BH * F * P * M1,  # 256
        "AV": BH * F * P,  # 64
    }
    assert expected == {"QK": 1024, "LM": 256, "GM": 64, "SLN": 256, "SLD": 256, "SLNV": 1024,
                        "PRM": 64, "SD": 64, "NV": 256, "AV": 64}
    assert ops == expected


def test_one_pass_ops():
    ops = get_cascade("1-pass").ops(SIZES)
    expected = {
        "QK": 1024,  # b h m1 m0 p e
        "LM": 256,  # b h m1 p m0
        "RM": 64,  # b h m1 p
        "SLN": 256,  # b h m1 m0 p
        "PRM": 64,  # b h m1 p
        "SPD": 64,  # b h m1 p
        "SLD": 256,  # b h m1 p m0
        "RD": 64,  # b h m1 p
        "SPNV": 256,  # b h m1 f p
        "SLNV": 1024,  # b h m1 f p m0
        "RNV": 256,  # b h m1 f p
        "AV": 64,  # b h f p
    }
    assert ops == expected
    assert list(ops) == ["QK", "LM", "RM", "SLN", "PRM", "SPD", "SLD", "RD", "SPNV", "SLNV", "RNV", "AV"]


def test_ops_by_operator_one_pass():
    by_op = get_cascade("1-pass").ops_by_operator(SIZES)
    # mac: QK 1024 + SPD 64 + SPNV 256 + SLNV 1024; max: LM 256 + RM 64; exp: SLN 256 + PRM 64;
    # add: SLD 256 + RD 64 + RNV 256; div: AV 64
    assert by_op == {"mac": 2368, "max": 320, "exp": 320, "add": 576, "div": 64}


def test_ops_scale_with_batch_and_heads():
    c = get_cascade("3-pass")
    base = c.ops(SIZES)["QK"]
    bigger = c.ops({**SIZES, "b": 3, "h": 5})["QK"]
    assert bigger == base * 3 * 5 // (B * H)


@pytest.mark.parametrize(("name", "passes"), [("3-pass", 3), ("2-pass", 2), ("1-pass", 1)])
def test_pass_counts(name, passes):
    assert get_cascade(name).passes == passes


def test_pass_of_three_pass():
    assert get_cascade("3-pass").pass_of == {"QK": 1, "GM": 1, "SN": 2, "SD": 2, "A": 3, "AV": 3}


def test_pass_of_two_pass():
    assert get_cascade("2-pass").pass_of == {
        "QK": 1, "LM": 1, "GM": 1, "SLN": 1, "SLD": 1, "SLNV": 1, "PRM": 2, "SD": 2, "NV": 2, "AV": 2,
    }


def test_pass_of_one_pass_all_first():
    po = get_cascade("1-pass").pass_of
    assert len(po) == 12
    assert set(po.values()) == {1}


def test_crossing_tensors():
    assert get_cascade("3-pass").crossing_tensors() == ["QK", "SN"]
    assert get_cascade("2-pass").crossing_tensors() == ["LM", "SLD", "SLNV"]
    assert get_cascade("1-pass").crossing_tensors() == []


def test_live_fibers():
    # 3-pass: boundary 1 holds QK (read by SN in pass 2); boundary 2 holds SN (read by A in pass 3)
    assert get_cascade("3-pass").live_fibers_per_query() == 1
    assert get_cascade("1-pass").live_fibers_per_query() == 0


def test_spill_words_three_pass():
    # QK: b*h*m*p = 256 words, written once, read again in pass 2 -> 512
    # SN: 256 words, written in pass 2, read in pass 3 -> 512
    assert get_cascade("3-pass").spill_words(SIZES) == 2 * (BH * M * P) + 2 * (BH * M * P) == 1024


def test_spill_words_two_pass():
    # LM: b*h*m1*p = 64 -> 128; SLD: 64 -> 128; SLNV: b*h*m1*f*p = 256 -> 512
    assert get_cascade("2-pass").spill_words(SIZES) == 128 + 128 + 512 == 768


def test_spill_words_one_pass_zero():
    assert get_cascade("1-pass").spill_words(SIZES) == 0


def test_unknown_cascade_is_spec_error():
    with pytest.raises(SpecError) as ei:
        get_cascade("4-pass")
    msg = str(ei.value)
    assert "cascade" in msg and "1-pass" in msg and "3-pass" in msg
