"""Workloads from what researchers have: HuggingFace configs (hf:PATH, hf:NAME) and GQA/MQA models.

What GQA must do to the numbers: K/V DRAM traffic falls with the number of K/V heads (MQA < GQA < MHA) while FLOPs
stay those of the query heads; decode reads each K/V head's cache once per step; kv_heads = heads is plain MHA.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnforge.api import simulate
from attnforge.cli.main import main
from attnforge.sim.specs.errors import SpecError
from attnforge.workloads import Model, get_model, load_models, make_workload

ROOT = Path(__file__).resolve().parent.parent
LLAMA3 = ROOT / "examples" / "llama-3-8b-config.json"

LLAMA_CFG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096, "intermediate_size": 14336}
GPT2_CFG = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 12, "n_head": 12, "n_embd": 768}
BERT_CFG = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "num_hidden_layers": 12,
            "num_attention_heads": 12, "hidden_size": 768, "intermediate_size": 3072}


def _write(tmp_path: Path, cfg: dict, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def _shape(m: Model) -> tuple:
    return (m.layers, m.heads, m.kv_heads, m.d_model, m.d_head, m.d_ff, m.causal)


# ---- config parsing ----------------------------------------------------------------------------------------------
def test_llama_config_file_and_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-llama"
    folder.mkdir()
    _write(folder, LLAMA_CFG)
    for target in (f"hf:{folder / 'config.json'}", f"hf:{folder}", f"hf:{folder}/"):
        m = get_model(target)
        assert _shape(m) == (32, 32, 8, 4096, 128, 14336, True)
        assert m.name == "my-llama" and m.group == 4  # no _name_or_path: the folder's name


def test_example_llama3_config_matches_the_preset() -> None:
    m = get_model(f"hf:{LLAMA3}")
    assert m.name == "meta-llama/Meta-Llama-3-8B"
    assert _shape(m) == _shape(get_model("llama3-8b"))


def test_gpt2_style_config(tmp_path: Path) -> None:
    m = get_model(f"hf:{_write(tmp_path, GPT2_CFG)}")
    assert _shape(m) == (12, 12, 12, 768, 64, 3072, True)  # no n_inner: GPT-2's 4 x n_embd
    assert _shape(get_model(f"hf:{ROOT / 'examples' / 'gpt2'}")) == _shape(get_model("gpt2-small"))
    assert get_model(f"hf:{_write(tmp_path, {**GPT2_CFG, 'n_inner': 1000}, 'c2.json')}").d_ff == 1000


def test_bert_style_config_is_not_causal(tmp_path: Path) -> None:
    m = get_model(f"hf:{_write(tmp_path, {**BERT_CFG, '_name_or_path': 'bert-base-uncased'})}")
    assert _shape(m) == _shape(get_model("bert-base")) and not m.causal and m.name == "bert-base-uncased"


def test_head_dim_apart_from_hidden_size(tmp_path: Path) -> None:
    cfg = {**LLAMA_CFG, "model_type": "gemma", "architectures": ["GemmaForCausalLM"], "hidden_size": 3072,
           "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 256}
    m = get_model(f"hf:{_write(tmp_path, cfg)}")
    assert (m.heads, m.d_head, m.d_model, m.d_head_independent) == (16, 256, 3072, True)


def test_sliding_window_is_said_not_modelled(tmp_path: Path) -> None:
    assert "sliding_window 4096 not modelled" in get_model(f"hf:{_write(tmp_path, {**LLAMA_CFG, 'sliding_window': 4096})}").source
    off = {**LLAMA_CFG, "sliding_window": 4096, "use_sliding_window": False}
    assert "not modelled" not in get_model(f"hf:{_write(tmp_path, off, 'q.json')}").source


@pytest.mark.parametrize(("change", "field"), [
    ({"num_attention_heads": None}, "num_attention_heads"),
    ({"num_hidden_layers": 0}, "num_hidden_layers"),
    ({"hidden_size": "4096"}, "hidden_size"),
    ({"intermediate_size": None}, "intermediate_size"),
    ({"num_key_value_heads": 5}, "num_key_value_heads"),
    ({"num_key_value_heads": True}, "num_key_value_heads"),
    ({"hidden_size": 4100}, "hidden_size"),  # not a multiple of the heads, and no head_dim
    ({"head_dim": -1}, "head_dim"),
    ({"architectures": "LlamaForCausalLM"}, "architectures"),
    ({"architectures": [], "model_type": "mystery"}, "model_type"),
])
def test_bad_field_is_one_line_naming_it(tmp_path: Path, change: dict, field: str) -> None:
    cfg = {k: v for k, v in {**LLAMA_CFG, **change}.items() if v is not None}
    with pytest.raises(SpecError) as exc:
        get_model(f"hf:{_write(tmp_path, cfg)}")
    assert exc.value.field == field and "\n" not in str(exc.value)


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "empty").mkdir()
    for target, words in (("broken.json", "malformed JSON"), ("list.json", "JSON object"), ("empty", "no config.json"),
                          ("missing.json", "no such file")):
        with pytest.raises(SpecError, match=words):
            get_model(f"hf:{tmp_path / target}")


def test_hf_names_map_to_packaged_presets() -> None:
    assert get_model("hf:meta-llama/Meta-Llama-3-8B").name == "llama3-8b"
    assert get_model("hf:mistralai/mistral-7b-v0.1").name == "mistral-7b"  # case-insensitive
    assert get_model("hf:Qwen/Qwen2-7B").name == "qwen2-7b"
    assert get_model("hf:gpt2").name == "gpt2-small"
    with pytest.raises(SpecError, match="no packaged model has that HuggingFace name"):
        get_model("hf:someone/unknown-model")


def test_presets_cite_their_config() -> None:
    models = load_models()
    for name, kv, heads in (("llama3-8b", 8, 32), ("llama3.1-8b", 8, 32), ("mistral-7b", 8, 32), ("qwen2-7b", 4, 28)):
        m = models[name]
        assert (m.kv_heads, m.heads, m.d_head, m.causal) == (kv, heads, 128, True)
        assert "config.json" in m.source
    assert "not modelled" in models["mistral-7b"].source


# ---- kv_heads validation -----------------------------------------------------------------------------------------
def test_kv_heads_defaults_to_heads_and_must_divide(tmp_path: Path) -> None:
    assert get_model("bert-base").kv_heads == 12
    base = "tiny:\n  layers: 2\n  heads: 8\n  d_model: 512\n  d_head: 64\n  d_ff: 1024\n"
    for kv, ok in (("8", True), ("2", True), ("1", True), ("3", False), ("0", False), ("16", False)):
        f = tmp_path / f"m{kv}.yaml"
        f.write_text(base + f"  kv_heads: {kv}\n")
        if ok:
            assert get_model(str(f)).kv_heads == int(kv)
        else:
            with pytest.raises(SpecError, match="kv_heads"):
                get_model(str(f))


def test_gqa_tensors_share_kv() -> None:
    wl = make_workload("llama3-8b", batch=1, seq_len=8)
    t = wl.tensors()
    assert t["k"].shape == (1, 32, 8, 128)
    assert (t["k"][0, 0] == t["k"][0, 3]).all() and not (t["k"][0, 0] == t["k"][0, 4]).all()


# ---- the GQA effect on the numbers ----------------------------------------------------------------------------------
def _with_kv(kv: int) -> Model:
    return get_model("llama3-8b").model_copy(update={"kv_heads": kv, "name": f"kv{kv}"})


def _run(kv: int, **kw) -> dict:
    return simulate(workload=_with_kv(kv), **kw)[0].to_dict()


@pytest.mark.parametrize("accel", ["unfused", "flat", "fusemax"])
@pytest.mark.parametrize("stage", ["prefill", "decode"])
def test_mqa_lt_gqa_lt_mha_traffic_same_flops(accel: str, stage: str) -> None:
    # Prefill at 1K: MQA's 32 x 1K stacked queries take two query blocks, GQA's 4 x 1K one, so both save.
    kw = dict(accelerator=accel, seq_lens=[1024 if stage == "prefill" else 4096], batch=1, stage=stage)
    mqa, gqa, mha = (_run(kv, **kw) for kv in (1, 8, 32))
    assert mqa["dram_bytes"] < gqa["dram_bytes"] < mha["dram_bytes"]
    assert mqa["flops"] == gqa["flops"] == mha["flops"]
    assert gqa["kv_heads"] == 8 and gqa["heads"] == 32 and "kv_heads" not in mha


def test_sharing_is_bounded_by_the_query_block() -> None:
    """At 4K prefill a query block holds four heads' queries and more: GQA (group 4) streams each K/V head once,
    and MQA (32 x 4K stacked queries) cannot do better than one pass of its one K/V head per block of the
    buffer's queries: its K/V bytes are the blocks' count times one head's K and V."""
    kw = dict(accelerator="fusemax", seq_lens=[4096], batch=1)
    mqa, gqa, mha = (_run(kv, **kw) for kv in (1, 8, 32))
    head_kv = 2 * 4096 * 128 * 2  # one K/V head's K and V, 16-bit
    q_and_o = mha["dram_bytes"] - 32 * head_kv
    assert gqa["dram_bytes"] == q_and_o + 8 * head_kv and gqa["tiles"]["query_blocks"] == 1
    blocks = mqa["tiles"]["query_blocks"]
    assert 1 < blocks == -(-32 * 4096 // mqa["tiles"]["query_block"])
    assert mqa["dram_bytes"] == q_and_o + blocks * head_kv < gqa["dram_bytes"] < mha["dram_bytes"]


def test_decode_reads_each_kv_cache_once_per_step() -> None:
    m, b, d, wb = 8192, 2, 128, 2
    kw = dict(accelerator="fusemax", seq_lens=[m], batch=b, stage="decode")
    gqa, mha = _run(8, **kw), _run(32, **kw)
    q_and_o = 2 * b * 32 * 1 * d * wb
    assert gqa["p"] == 1 and gqa["m"] == m
    assert gqa["dram_bytes"] == q_and_o + 2 * b * 8 * m * d * wb  # K and V of 8 KV heads, once
    assert mha["dram_bytes"] == q_and_o + 2 * b * 32 * m * d * wb
    assert gqa["stage"] == "decode"


def test_kv_heads_equal_heads_is_multi_head() -> None:
    kw = dict(accelerator="fusemax", seq_lens=[1024, 16384], batch=4)
    plain = get_model("llama2-7b")
    explicit = plain.model_copy(update={"kv_heads": 32})
    a = [r.to_dict() for r in simulate(workload=plain, **kw)]
    b = [r.to_dict() for r in simulate(workload=explicit, **kw)]
    assert a == b


def test_end_to_end_kv_projections_shrink() -> None:
    kw = dict(accelerator="fusemax", seq_lens=[1024], batch=1, scope="end-to-end")
    gqa, mha = _run(8, **kw), _run(32, **kw)
    rows, d = 1024, 4096
    assert mha["flops"] - gqa["flops"] == 2 * rows * 2 * d * (32 - 8) * 128  # K and V: D x kv_heads*d_head each


# ---- SpAtten and the CLI -------------------------------------------------------------------------------------------
def test_spatten_refuses_shared_kv() -> None:
    with pytest.raises(SpecError, match="multi-head attention only"):
        simulate(accelerator="spatten", workload="llama3-8b", seq_lens=[1024])
    simulate(accelerator="spatten", workload=_with_kv(32), seq_lens=[256], batch=1)  # MHA still runs


def test_cli_hf_workload(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["simulate", "--accel", "fusemax", "--workload", f"hf:{LLAMA3}", "--seq-len", "8k", "--stage",
               "decode", "--batch", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    row = out[0] if isinstance(out, list) else out
    assert rc == 0 and row["kv_heads"] == 8 and row["workload"] == "meta-llama/Meta-Llama-3-8B"


@pytest.mark.parametrize("argv", [
    ["simulate", "--workload", "hf:no/such/config.json"],
    ["simulate", "--accel", "spatten", "--workload", "hf:meta-llama/Meta-Llama-3-8B"],
])
def test_cli_refusals_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err


def test_cli_relative_example_path(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["simulate", "--workload", "hf:examples/llama-3-8b-config.json", "--seq-len", "1k"]) == 0
    assert "meta-llama/Meta-Llama-3-8B" in capsys.readouterr().out


@pytest.mark.parametrize("accel", ["unfused", "flat", "fusemax"])
def test_short_query_blocks_of_a_group_share_column_tiles(accel: str) -> None:
    """Decode (P = 1 on 256 columns): a group's 4 queries meet the same K and V, so they share one column tile per
    K/V head instead of taking one each: the arrays' time is a quarter of multi-head attention's, FLOPs the same.
    A prefill's P fills its own tiles, so there each query head keeps its own (the same array time as MHA)."""
    dec = dict(accelerator=accel, seq_lens=[8192], batch=1, stage="decode")
    gqa, mha = _run(8, **dec), _run(32, **dec)
    assert gqa["flops"] == mha["flops"]
    assert gqa["compute_cycles"] == pytest.approx(mha["compute_cycles"] / 4, rel=1e-12)
    assert gqa["energy_breakdown_j"]["buffer"] < mha["energy_breakdown_j"]["buffer"] / 3
    pre = dict(accelerator=accel, seq_lens=[1024], batch=1)
    assert _run(8, **pre)["compute_cycles"] == _run(32, **pre)["compute_cycles"]
