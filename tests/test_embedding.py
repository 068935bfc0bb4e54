"""Sentence embeddings: all-MiniLM-L6-v2 (a sentence-transformers folder) as a `TextEmbedder`
against transformers' BertModel with mean pooling done by hand, zero-shot STS-B through
`tfdistil evaluate`, the SavedModel in a fresh process, and the pooling modes load_hf refuses.

The STS-B check uses the first 300 dev pairs (not all 1,500) to stay fast."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import serve_in_fresh_process, shared_data_path

STSB_DEV = shared_data_path() / "glue" / "STS-B" / "dev.tsv"
STSB_PAIRS = 300
MAX_SEQ_LENGTH = 256  # the checkpoint's sentence_bert_config.json

SENTENCES = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "hi",
    "The quick brown fox jumps over the lazy dog!",
    "Café au lait, s'il vous plaît — naïve façade.",
    "Two dogs are running through a field of tall grass near the river.",
    "IT'S ALL CAPS AND SHOUTING",
    "Numbers: 3.14159, 2,718 and 1e-5.",
    "A child is riding a horse.",
    "The stock market fell sharply on Tuesday after the announcement.",
    "",
    "Why?",
    "emoji 🙂 and tabs\tinside",
    "She said \"no\" (twice) and left.",
    "Ein Mann spielt Gitarre.",
    "unbelievably antidisestablishmentarianism",
    "The cat sat on the mat.",
    "A plane is taking off.",
    "Someone is cooking pasta in a big pot of boiling water.",
    # Longer than max_seq_length: both sides truncate to 256 tokens.
    " ".join(["a long sentence about many things"] * 60),
]


@pytest.fixture(scope="module")
def folder(minilm_dir):
    return minilm_dir


@pytest.fixture(scope="module")
def reference(folder):
    """texts -> (n, 384) float32: BertModel's last hidden state mean-pooled over the attention
    mask and L2-normalised (what sentence-transformers computes), with HF's tokenizer."""
    import torch
    import transformers
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on 2 shared cores, more threads thrash (6x slower here)
    model = transformers.BertModel.from_pretrained(str(folder)).eval()
    tokenizer = transformers.BertTokenizer.from_pretrained(str(folder))

    def embed(texts, batch_size=32):
        out = []
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[i: i + batch_size]), padding=True, truncation=True,
                              max_length=MAX_SEQ_LENGTH, return_tensors="pt")
            with torch.no_grad():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None].to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(mean, p=2, dim=1).numpy())
        return np.concatenate(out)

    yield embed
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def embedder(folder):
    from tfdistil.convert import load_hf

    return load_hf(str(folder), task="text_embedding")


@pytest.fixture(scope="module")
def run_dir(folder, tmp_path_factory):
    from tfdistil.tasks.embedding import write_embedder_run

    return write_embedder_run(str(folder), str(tmp_path_factory.mktemp("runs") / "minilm"))


def _keras_embed(model, tokenizer, texts):
    import tensorflow as tf

    return np.asarray(model(tokenizer(tf.constant(texts)), training=False))


def test_embeddings_equal_transformers_mean_pooling(embedder, reference):
    from tfdistil.models import TextEmbedder

    model, tokenizer = embedder
    assert isinstance(model, TextEmbedder)
    assert tokenizer.sequence_length == MAX_SEQ_LENGTH
    ours = _keras_embed(model, tokenizer, SENTENCES)
    assert ours.dtype == np.float32 and ours.shape == (len(SENTENCES), 384)
    expected = reference(SENTENCES)
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # Batch composition (hence padding width) does not move an embedding.
    alone = _keras_embed(model, tokenizer, SENTENCES[:1])
    np.testing.assert_allclose(alone[0], ours[0], atol=1e-5, rtol=0)


def _stsb_slice(path):
    """The header and first STSB_PAIRS lines of STS-B dev, and (first, second, score) read by hand."""
    with open(STSB_DEV, encoding="utf-8") as f:
        lines = f.read().splitlines()[: STSB_PAIRS + 1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:]]
    pick = [header.index(c) for c in ("sentence1", "sentence2", "score")]
    return [[row[i] for row in rows] for i in pick]


def test_zero_shot_stsb_equals_the_pytorch_computation(run_dir, reference, tmp_path, capsys):
    from scipy.stats import pearsonr, spearmanr

    from tfdistil import cli

    data = tmp_path / "dev.tsv"
    first, second, gold = _stsb_slice(data)
    assert cli.main(["evaluate", "--run", run_dir, "--data", str(data)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == STSB_PAIRS and result["main_metric"] == "spearman"

    a, b = reference(first), reference(second)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    gold = np.asarray(gold, dtype=np.float64)
    assert abs(result["spearman"] - spearmanr(cosine, gold).statistic) < 1e-4
    assert abs(result["pearson"] - pearsonr(cosine, gold).statistic) < 1e-4
    assert result["spearman"] > 0.8  # a real sentence encoder, not a constant
    print(f"zero-shot STS-B dev[:{STSB_PAIRS}]: Spearman {result['spearman']:.4f}, Pearson {result['pearson']:.4f}",
          file=sys.stderr)


def test_saved_model_embeds_in_a_fresh_process(run_dir, tmp_path):
    from tfdistil.jobs.export import export_run
    from tfdistil.jobs.runs import load_run_model, load_run_tokenizer

    _, model = load_run_model(run_dir)
    tokenizer = load_run_tokenizer(run_dir)
    texts = SENTENCES[:6]
    expected = _keras_embed(model, tokenizer, texts)
    version = export_run(run_dir, out=str(tmp_path / "saved"))
    # The export must not read the run's vocabulary file any more.
    vocab = Path(run_dir) / "vocab.txt"
    moved = vocab.rename(tmp_path / "vocab.moved")
    try:
        calls = [{"dir": str(version), "signature": "serving_default", "inputs": {"text": texts},
                  "dtypes": {"text": "string"}},
                 {"dir": str(version), "signature": "serving_default", "inputs": {"text": texts[2:3]},
                  "dtypes": {"text": "string"}}]
        results = serve_in_fresh_process(calls, tmp_path)
    finally:
        moved.rename(vocab)
    assert set(results[0]) == {"embedding"}
    served = np.asarray(results[0]["embedding"], dtype=np.float32)
    assert served.shape == (len(texts), 384)
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(results[1]["embedding"])[0], expected[2], atol=1e-5, rtol=0)


def _sentence_transformers_folder(folder, tmp_path, pooling, modules=None):
    """A copy of the checkpoint's configuration files (no weights) with another pooling."""
    target = tmp_path / "st"
    (target / "1_Pooling").mkdir(parents=True)
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        shutil.copy(folder / name, target / name)
    config = json.loads((folder / "1_Pooling" / "config.json").read_text())
    config.update({key: False for key in config if key.startswith("pooling_mode_")}, **pooling)
    (target / "1_Pooling" / "config.json").write_text(json.dumps(config))
    listed = json.loads((folder / "modules.json").read_text())
    (target / "modules.json").write_text(json.dumps(listed + (modules or [])))
    return target


def test_load_hf_refuses_what_mean_pooling_cannot_reproduce(folder, tmp_path):
    from tfdistil.convert import load_hf

    cls = _sentence_transformers_folder(folder, tmp_path, {"pooling_mode_cls_token": True})
    with pytest.raises(ValueError, match=r"pools with cls_token.*mean pooling"):
        load_hf(str(cls), task="text_embedding")
    both = tmp_path / "both"
    shutil.copytree(cls, both)
    config = json.loads((both / "1_Pooling" / "config.json").read_text())
    config["pooling_mode_mean_tokens"] = True
    (both / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"pools with cls_token, mean_tokens"):
        load_hf(str(both), task="text_embedding")
    shutil.rmtree(tmp_path / "st")
    dense = _sentence_transformers_folder(folder, tmp_path, {"pooling_mode_mean_tokens": True}, modules=[
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}])
    with pytest.raises(ValueError, match=r"sentence_transformers\.models\.Dense"):
        load_hf(str(dense), task="text_embedding")


def test_embedding_task_refuses_training(folder, tmp_path, capsys):
    from tfdistil.jobs.runs import RunError
    from tfdistil.tasks import get_task

    task = get_task("embedding")
    with pytest.raises(RunError, match="no training or distillation yet"):
        task.finetune_loss()
    with pytest.raises(RunError, match="no training or distillation yet"):
        task.distill_comparison()
    # The CLI refuses before loading the checkpoint, and leaves no run folder behind.
    from tfdistil import cli

    data = str(tmp_path / "pairs.tsv")
    lines = STSB_DEV.read_text(encoding="utf-8").splitlines()[:5]
    (tmp_path / "pairs.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["--task", "embedding", "--hf", str(folder), "--train", data, "--dev", data,
            "--runs-dir", str(tmp_path / "runs"), "--name", "emb"]
    assert cli.main(["finetune", *args]) == 2
    assert "no training or distillation yet" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "emb").exists()
