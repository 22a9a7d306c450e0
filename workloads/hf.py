"""HuggingFace ``config.json`` files as workloads: ``--workload hf:PATH/config.json``, ``hf:PATH/`` or ``hf:NAME``.

Why: researchers have the config.json of the model they study, not a models.yaml entry. The hub cannot be reached
from here (and a simulator should not need it), so ``hf:NAME`` only resolves names of the packaged presets
(their ``hf_names``); anything else has to be a local file or folder.

Only the fields that size attention and the linear layers are read: layers, query heads, K/V heads, hidden size,
head width and FFN width (Llama/Mistral/Qwen/BERT names, or GPT-2's ``n_layer``/``n_head``/``n_embd``/``n_inner``).
Whether the model is causal follows from ``architectures``/``model_type``: decoder-only LMs are, encoders are
not. A sliding attention window is not modelled (every query sees all M keys); the model's ``source`` says so
when the config sets one. Every missing or bad field is one :class:`SpecError` naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from attnforge.sim.specs.errors import SpecError, from_pydantic
from attnforge.workloads.model import Model, load_models

#: model_type values of decoder-only language models (causal self-attention).
DECODER_TYPES: frozenset[str] = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "gemma", "gemma2", "phi", "phi3", "gpt2",
    "gpt_neox", "gptj", "gpt_bigcode", "falcon", "opt", "bloom", "starcoder2", "olmo", "stablelm", "cohere",
})
#: model_type values of bidirectional encoders (no causal mask).
ENCODER_TYPES: frozenset[str] = frozenset({
    "bert", "roberta", "xlm-roberta", "albert", "electra", "deberta", "deberta-v2", "mpnet", "camembert",
    "megatron-bert", "ernie", "nomic_bert", "modernbert",
})
#: Class-name endings in ``architectures`` that settle the question without a known model_type.
_CAUSAL_HEADS = ("ForCausalLM", "LMHeadModel")
_ENCODER_HEADS = ("ForMaskedLM", "ForTokenClassification", "ForQuestionAnswering", "ForPreTraining")


def hf_model(target: str) -> Model:
    """The Model of ``hf:TARGET``: a config file, a folder holding config.json, or a packaged preset's hub name."""
    path = Path(target)
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise SpecError("workload", f"hf:{target}: the folder has no config.json")
        return model_from_config(read_config(cfg), origin=str(cfg), default_name=path.resolve().name)
    if path.is_file():
        name = path.resolve().parent.name if path.name == "config.json" else path.stem
        return model_from_config(read_config(path), origin=str(path), default_name=name)
    if target.endswith((".json", "/")):
        raise SpecError("workload", f"hf:{target}: no such file or folder")
    preset = preset_for_hf_name(target)
    if preset is None:

        known = [n for m in load_models().values() for n in m.hf_names]
        raise SpecError("workload", f"hf:{target}: no such config file or folder, and no packaged model has that "
                        "HuggingFace name (the hub is not downloaded from)", known)
    return preset


def preset_for_hf_name(name: str) -> Model | None:
    """The packaged model listing ``name`` among its ``hf_names`` (exact, else case-insensitive), or None."""

    models = list(load_models().values())
    for m in models:
        if name in m.hf_names:
            return m
    folded = name.casefold()
    return next((m for m in models if folded in (n.casefold() for n in m.hf_names)), None)


def read_config(path: Path) -> dict[str, Any]:
    """A config.json as a dict; unreadable or malformed JSON is one SpecError naming the file."""
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise SpecError("workload", f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise SpecError("workload", f"malformed JSON in {path} at line {exc.lineno}") from None
    if not isinstance(raw, dict):
        raise SpecError("workload", f"{path} must hold a JSON object (a HuggingFace config)")
    return raw


def _gpt2_style(cfg: dict[str, Any]) -> bool:
    return cfg.get("model_type") == "gpt2" or any(k in cfg for k in ("n_layer", "n_head", "n_embd"))


def _size(cfg: dict[str, Any], key: str, origin: str, default: int | None = None) -> int:
    """A positive integer field; absent (or null) is an error unless there is a default."""
    val = cfg.get(key)
    if val is None:
        if default is not None:
            return default
        raise SpecError(key, f"missing in {origin}")
    if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
        raise SpecError(key, f"must be a positive integer, got {val!r} in {origin}")
    return val


def is_causal(cfg: dict[str, Any], origin: str) -> bool:
    """Decoder-only LMs are causal, encoders are not; decided by architectures, else model_type."""
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise SpecError("architectures", f"must be a list of class names in {origin}")
    if any(a.endswith(_CAUSAL_HEADS) for a in archs):
        return True
    if any(a.endswith(_ENCODER_HEADS) for a in archs):
        return False
    mt = cfg.get("model_type")
    if mt in DECODER_TYPES:
        return True
    if mt in ENCODER_TYPES:
        return False
    raise SpecError("model_type", f"cannot tell whether {mt!r} in {origin} is a decoder-only LM (causal) or an "
                    "encoder; give a models YAML file instead", sorted(DECODER_TYPES | ENCODER_TYPES))


def _shape_fields(cfg: dict[str, Any], origin: str) -> dict[str, Any]:
    """layers, heads, kv_heads, d_model, d_head, d_ff (and whether d_head stands apart) from either naming."""
    if _gpt2_style(cfg):
        layers, heads, d_model = (_size(cfg, k, origin) for k in ("n_layer", "n_head", "n_embd"))
        d_ff = _size(cfg, "n_inner", origin, default=4 * d_model)  # GPT-2's own default for a null n_inner
        heads_key, width_key = "n_head", "n_embd"
    else:
        layers, heads, d_model = (_size(cfg, k, origin) for k in ("num_hidden_layers", "num_attention_heads",
                                                                   "hidden_size"))
        d_ff = _size(cfg, "intermediate_size", origin)
        heads_key, width_key = "num_attention_heads", "hidden_size"
    kv_heads = _size(cfg, "num_key_value_heads", origin, default=heads)
    if heads % kv_heads:
        raise SpecError("num_key_value_heads", f"{kv_heads} must divide {heads_key} = {heads} in {origin}")
    if cfg.get("head_dim") is not None:
        d_head = _size(cfg, "head_dim", origin)
    elif d_model % heads:
        raise SpecError(width_key, f"{d_model} is not a multiple of {heads_key} = {heads} and {origin} gives no "
                        "head_dim")
    else:
        d_head = d_model // heads
    return {"layers": layers, "heads": heads, "kv_heads": kv_heads, "d_model": d_model, "d_head": d_head,
            "d_ff": d_ff, "d_head_independent": heads * d_head != d_model}


def _notes(cfg: dict[str, Any]) -> str:
    """What the config sets that the model here leaves out, said in its source rather than silently dropped."""
    window = cfg.get("sliding_window")
    if window and cfg.get("use_sliding_window", True):
        return f"; sliding_window {window} not modelled (every query attends to all M keys)"
    return ""


def model_from_config(cfg: dict[str, Any], *, origin: str, default_name: str) -> Model:
    """A validated Model from a HuggingFace config dict; named by ``_name_or_path``, else ``default_name``."""

    fields = _shape_fields(cfg, origin)
    causal = is_causal(cfg, origin)
    name = cfg.get("_name_or_path") or default_name
    if not isinstance(name, str):
        raise SpecError("_name_or_path", f"must be a string in {origin}")
    try:
        return Model(name=name, causal=causal, source=f"HuggingFace config {origin}{_notes(cfg)}", **fields)
    except ValidationError as exc:
        raise from_pydantic(exc, prefix=origin) from None
