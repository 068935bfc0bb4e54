"""tfdistil.convert against the reference: transformers' PyTorch BERT/DistilBERT on CPU.

1. The real MiniLM checkpoint (BertModel, no `bert.` prefix) on real SST-2 sentences.
2. Random tiny checkpoints written by transformers itself, every supported HF class.
3. Round trips: our models -> save_hf -> transformers (no missing/unexpected keys).
4. Old formats (`pytorch_model.bin`, LayerNorm gamma/beta, tied copies, shards, bf16).
5. Errors, each naming what is wrong.
"""
import json
import warnings

import numpy as np
import pytest

import torch
import transformers
from safetensors.numpy import load_file, save_file  # noqa: E402

import tfdistil  # noqa: E402
from tfdistil import models  # noqa: E402
from tfdistil.convert import hf_label_names, load_hf, save_hf  # noqa: E402

torch.set_num_threads(2)
transformers.logging.set_verbosity_error()

TINY_BERT = dict(
    vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=37, max_position_embeddings=64,
)
TINY_DISTILBERT = dict(vocab_size=1000, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64)
TINY_OURS = dict(
    vocabulary_size=1000, num_layers=2, num_heads=4, hidden_dim=32, intermediate_dim=37, max_sequence_length=64
)
NUM_LABELS = 3

# HF class -> (our model class, task)
HF_CLASSES = {
    "BertModel": (models.BertBackbone, "backbone"),
    "BertForSequenceClassification": (models.TextClassifier, "text_classification"),
    "BertForTokenClassification": (models.TokenClassifier, "token_classification"),
    "BertForQuestionAnswering": (models.SpanQA, "question_answering"),
    "BertForMaskedLM": (models.MaskedLM, "masked_lm"),
    "DistilBertModel": (models.DistilBertBackbone, "backbone"),
    "DistilBertForSequenceClassification": (models.TextClassifier, "text_classification"),
    "DistilBertForTokenClassification": (models.TokenClassifier, "token_classification"),
    "DistilBertForQuestionAnswering": (models.SpanQA, "question_answering"),
    "DistilBertForMaskedLM": (models.MaskedLM, "masked_lm"),
}


# --------------------------------------------------------------------------- helpers


def hf_tiny(hf_class, seed=0):
    """A transformers model of tiny size, every parameter perturbed (biases and LayerNorms
    would otherwise sit at 0 and 1 and hide a mapping mistake)."""
    torch.manual_seed(seed)
    sizes = TINY_DISTILBERT if hf_class.startswith("DistilBert") else TINY_BERT
    config_class = transformers.DistilBertConfig if hf_class.startswith("DistilBert") else transformers.BertConfig
    # Span QA has 2 outputs (start, end); HF sizes its head by num_labels.
    labels = 2 if hf_class.endswith("QuestionAnswering") else NUM_LABELS
    config = config_class(**sizes, num_labels=labels)
    model = getattr(transformers, hf_class)(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def save_config(hf_model, folder):
    """config.json as `save_pretrained` writes it (it fills in `architectures`)."""
    hf_model.config.architectures = [type(hf_model).__name__]
    hf_model.config.save_pretrained(folder)


def randomize(model, seed=0):
    """Perturb every weight of one of our models (same reason as in `hf_tiny`)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = np.asarray(variable.numpy(), dtype="float32")
        variable.assign(value + 0.1 * rng.standard_normal(value.shape).astype("float32"))
    return model


def random_batch(batch=3, seq=12, vocab=1000, seed=0):
    """Token ids with padding: row i has seq - 3 * i real tokens."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, vocab, size=(batch, seq)).astype("int32")
    lengths = np.array([seq - 3 * i for i in range(batch)])
    padding_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype("int32")
    segment_ids = ((np.arange(seq)[None, :] >= lengths[:, None] // 2) * padding_mask).astype("int32")
    token_ids = token_ids * padding_mask
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def hf_outputs(model, batch):
    """The HF model's outputs as a dict of numpy arrays named as ours."""
    kwargs = {
        "input_ids": torch.tensor(batch["token_ids"], dtype=torch.long),
        "attention_mask": torch.tensor(batch["padding_mask"], dtype=torch.long),
    }
    if model.config.model_type == "bert":
        kwargs["token_type_ids"] = torch.tensor(batch["segment_ids"], dtype=torch.long)
    with torch.no_grad():
        out = model(**kwargs)
    if hasattr(out, "start_logits"):
        return {"start_logits": out.start_logits.numpy(), "end_logits": out.end_logits.numpy()}
    if hasattr(out, "logits"):
        return {"logits": out.logits.numpy()}
    result = {"sequence_output": out.last_hidden_state.numpy()}
    if getattr(out, "pooler_output", None) is not None:
        result["pooled_output"] = out.pooler_output.numpy()
    return result


def our_outputs(model, batch):
    out = model(batch, training=False)
    if not isinstance(out, dict):
        out = {"logits": out}
    return {key: np.asarray(value) for key, value in out.items()}


def assert_outputs_close(ours, theirs, atol=1e-5, padding_mask=None):
    """Equal outputs; per-token outputs (batch, seq, ...) only at real tokens when a
    `padding_mask` is given: tfdistil's blocks skip padding, so what comes out at padding
    positions is not the padded computation's (see test_padded_path_matches_at_every_position)."""
    for key, expected in theirs.items():
        assert key in ours, f"{key} missing from our outputs {sorted(ours)}"
        got = ours[key]
        if padding_mask is not None and got.shape[:2] == padding_mask.shape:
            real = padding_mask.astype(bool)
            got, expected = got[real], expected[real]
        np.testing.assert_allclose(got, expected, atol=atol, rtol=0, err_msg=key)


def tiny_backbone(architecture):
    if architecture == "bert":
        return models.BertBackbone(**TINY_OURS)
    return models.DistilBertBackbone(**TINY_OURS)


def tiny_task(architecture, task):
    backbone = tiny_backbone(architecture)
    if task == "backbone":
        return backbone
    if task == "text_classification":
        return models.TextClassifier(backbone, NUM_LABELS)
    if task == "token_classification":
        return models.TokenClassifier(backbone, NUM_LABELS)
    if task == "question_answering":
        return models.SpanQA(backbone)
    return models.MaskedLM(backbone)


def read_sst2(shared_data, n=32):
    lines = (shared_data / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["label", "content"]
    return [line.split("\t", 1)[1] for line in lines[1 : n + 1]]


@pytest.fixture(scope="module")
def minilm(minilm_dir, shared_data):
    """The real checkpoint loaded once: ours, HF's, HF's tokenization and HF's outputs."""
    sentences = read_sst2(shared_data)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    encoded = hf_tokenizer(sentences, padding=True, return_tensors="np")
    batch = {
        "token_ids": encoded["input_ids"].astype("int32"),
        "segment_ids": encoded["token_type_ids"].astype("int32"),
        "padding_mask": encoded["attention_mask"].astype("int32"),
    }
    hf_model = transformers.BertModel.from_pretrained(minilm_dir, dtype=torch.float32).eval()
    model, tokenizer = load_hf(minilm_dir, tokenizer_kwargs={"pad_to_sequence_length": False})
    return dict(
        sentences=sentences, batch=batch, hf=hf_outputs(hf_model, batch), model=model, tokenizer=tokenizer
    )


# --------------------------------------------------------------------------- 1. real checkpoint


def test_minilm_sequence_output_matches_transformers(minilm):
    assert isinstance(minilm["model"], models.BertBackbone)
    assert minilm["model"].num_layers == 6 and minilm["model"].hidden_dim == 384
    ours = our_outputs(minilm["model"], minilm["batch"])
    real = minilm["batch"]["padding_mask"].astype(bool)
    diff = np.abs(ours["sequence_output"] - minilm["hf"]["sequence_output"])[real]
    assert diff.max() <= 1e-4, diff.max()
    np.testing.assert_allclose(ours["pooled_output"], minilm["hf"]["pooled_output"], atol=1e-4, rtol=0)


def test_minilm_mean_pooled_embeddings_match(minilm):
    batch = minilm["batch"]
    ours = our_outputs(minilm["model"], batch)["sequence_output"]
    pooled = np.asarray(tfdistil.layers.Pooler(mode="mean")(ours, padding_mask=batch["padding_mask"]))
    mask = batch["padding_mask"][:, :, None].astype("float32")
    reference = (minilm["hf"]["sequence_output"] * mask).sum(1) / mask.sum(1)
    cosine = (pooled * reference).sum(-1) / (np.linalg.norm(pooled, axis=-1) * np.linalg.norm(reference, axis=-1))
    assert cosine.min() >= 0.99999, cosine.min()


def test_minilm_tokenizer_matches_transformers(minilm):
    tokenizer = minilm["tokenizer"]
    assert isinstance(tokenizer, tfdistil.text.WordPieceTokenizer)
    assert tokenizer.lowercase and tokenizer.sequence_length == 512
    encoded = tokenizer(minilm["sentences"])
    for ours, theirs in (("token_ids", "token_ids"), ("padding_mask", "padding_mask"), ("segment_ids", "segment_ids")):
        np.testing.assert_array_equal(np.asarray(encoded[ours]), minilm["batch"][theirs])


# --------------------------------------------------------------------------- 2. transformers checkpoints


@pytest.mark.parametrize("hf_class", list(HF_CLASSES))
def test_load_transformers_checkpoint(hf_class, tmp_path):
    hf_model = hf_tiny(hf_class)
    hf_model.save_pretrained(tmp_path)
    model, tokenizer = load_hf(tmp_path)
    our_class, _ = HF_CLASSES[hf_class]
    assert type(model) is our_class
    assert tokenizer is None  # no vocabulary in the folder
    if hasattr(model, "num_classes"):
        assert model.num_classes == NUM_LABELS
    batch = random_batch()
    assert_outputs_close(our_outputs(model, batch), hf_outputs(hf_model, batch), padding_mask=batch["padding_mask"])


@pytest.mark.parametrize("hf_class", ["BertModel", "DistilBertForTokenClassification"])
def test_padded_path_matches_at_every_position(hf_class, tmp_path):
    """The default (padding skipped) equals transformers on real tokens, the padded computation
    (`skip_padding(model, "never")`) everywhere, padding positions included; the batch has 30 real
    tokens of 48 (36 rows computed), so the default really skips padding."""
    hf_model = hf_tiny(hf_class)
    hf_model.save_pretrained(tmp_path)
    model, _ = load_hf(tmp_path)
    batch = random_batch(batch=4)
    assert batch["padding_mask"].sum() == 30
    theirs = hf_outputs(hf_model, batch)
    with tfdistil.layers.skip_padding(model, "never"):
        padded = our_outputs(model, batch)
    assert_outputs_close(padded, theirs)
    skipped = our_outputs(model, batch)
    assert_outputs_close(skipped, theirs, padding_mask=batch["padding_mask"])
    key = next(iter(theirs))
    assert np.abs(skipped[key] - padded[key]).max() > 1e-3  # padding positions differ: the path was taken


# --------------------------------------------------------------------------- 3. round trips

ROUND_TRIPS = [
    (arch, task)
    for arch in ("bert", "distilbert")
    for task in ("backbone", "text_classification", "token_classification", "question_answering", "masked_lm")
]


@pytest.mark.parametrize("architecture,task", ROUND_TRIPS)
def test_save_hf_loads_in_transformers(architecture, task, tmp_path):
    model = randomize(tiny_task(architecture, task))
    save_hf(model, None, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    hf_class = config["architectures"][0]
    assert HF_CLASSES[hf_class][1] == task and hf_class.lower().startswith(architecture)
    assert config["model_type"] == architecture

    hf_model, info = getattr(transformers, hf_class).from_pretrained(tmp_path, output_loading_info=True)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(key), (key, info[key])
    batch = random_batch(seed=1)
    ours = our_outputs(model, batch)
    assert_outputs_close(ours, hf_outputs(hf_model.eval(), batch), padding_mask=batch["padding_mask"])

    # ... and back: the same model again.
    reloaded, _ = load_hf(tmp_path)
    assert type(reloaded) is type(model)
    assert_outputs_close(our_outputs(reloaded, batch), ours, atol=0)


def test_save_hf_auto_classes_and_label_names(tmp_path):
    model = randomize(models.TextClassifier(tiny_backbone("distilbert"), NUM_LABELS))
    save_hf(model, None, tmp_path, label_names=["negative", "neutral", "positive"])
    hf_model = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(hf_model).__name__ == "DistilBertForSequenceClassification"
    assert hf_model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert hf_label_names(tmp_path) == ["negative", "neutral", "positive"]
    backbone = transformers.AutoModel.from_pretrained(tmp_path)  # the backbone of a task folder
    assert type(backbone).__name__ == "DistilBertModel"


@pytest.mark.parametrize("architecture", ["bert", "distilbert"])
def test_save_hf_tokenizer_loads_in_transformers(architecture, minilm, minilm_dir, tmp_path):
    tokenizer = minilm["tokenizer"]
    kwargs = dict(TINY_OURS, vocabulary_size=tokenizer.vocabulary_size(), num_layers=1)
    backbone_class = models.BertBackbone if architecture == "bert" else models.DistilBertBackbone
    save_hf(backbone_class(**kwargs), tokenizer, tmp_path)
    tokenizer_config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == ("BertTokenizer" if architecture == "bert" else "DistilBertTokenizer")
    assert tokenizer_config["do_lower_case"] is True

    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path)
    sentences = minilm["sentences"][:8] + ["Héllo, WORLD! [MASK] don't"]
    expected = transformers.AutoTokenizer.from_pretrained(minilm_dir)(sentences, padding=True)["input_ids"]
    assert hf_tokenizer(sentences, padding=True)["input_ids"] == expected

    _, reloaded = load_hf(tmp_path, tokenizer_kwargs={"pad_to_sequence_length": False})
    assert reloaded.get_vocabulary() == tokenizer.get_vocabulary()
    np.testing.assert_array_equal(np.asarray(reloaded(sentences)["token_ids"]), np.array(expected))


# --------------------------------------------------------------------------- 4. other formats and options


def test_pytorch_bin_with_legacy_names_and_tied_copies(tmp_path):
    """A transformers-v4-style `pytorch_model.bin`: LayerNorm gamma/beta, the tied
    decoder weight and bias written out, a position_ids buffer."""
    hf_model = hf_tiny("BertForMaskedLM")
    state = dict(hf_model.state_dict())
    assert "cls.predictions.decoder.weight" in state
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in state.items()}
    state["bert.embeddings.position_ids"] = torch.arange(64)[None]
    torch.save(state, tmp_path / "pytorch_model.bin")
    save_config(hf_model, tmp_path)

    model, _ = load_hf(tmp_path)
    batch = random_batch()
    assert_outputs_close(our_outputs(model, batch), hf_outputs(hf_model, batch), padding_mask=batch["padding_mask"])


def test_pytorch_bin_distilbert_classifier(tmp_path):
    hf_model = hf_tiny("DistilBertForSequenceClassification")
    torch.save(hf_model.state_dict(), tmp_path / "pytorch_model.bin")
    save_config(hf_model, tmp_path)
    model, _ = load_hf(tmp_path)
    batch = random_batch()
    assert_outputs_close(our_outputs(model, batch), hf_outputs(hf_model, batch), padding_mask=batch["padding_mask"])


def test_bert_for_pretraining_checkpoint(tmp_path):
    """Google's BERT checkpoints: masked LM + next-sentence head (skipped) + pooler."""
    hf_model = hf_tiny("BertForPreTraining")
    hf_model.save_pretrained(tmp_path)
    model, _ = load_hf(tmp_path)
    assert isinstance(model, models.MaskedLM)
    batch = random_batch()
    with torch.no_grad():
        expected = hf_model(
            input_ids=torch.tensor(batch["token_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["padding_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
        ).prediction_logits.numpy()
    assert_outputs_close(our_outputs(model, batch), {"logits": expected}, padding_mask=batch["padding_mask"])
    assert_outputs_close(our_outputs(model.backbone, batch), hf_outputs(hf_model.bert, batch), padding_mask=batch["padding_mask"])


def test_sharded_safetensors(tmp_path):
    hf_model = hf_tiny("BertForTokenClassification")
    hf_model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, shard_names in shards.items():
        save_file({n: tensors[n] for n in shard_names}, tmp_path / shard, metadata={"format": "pt"})
        weight_map.update({n: shard for n in shard_names})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    model, _ = load_hf(tmp_path)
    batch = random_batch()
    assert_outputs_close(our_outputs(model, batch), hf_outputs(hf_model, batch), padding_mask=batch["padding_mask"])


def test_bfloat16_safetensors(tmp_path):
    hf_model = hf_tiny("DistilBertModel")
    with torch.no_grad():
        for parameter in hf_model.parameters():
            parameter.copy_(parameter.to(torch.bfloat16).float())  # exactly representable in bf16
    hf_model.to(torch.bfloat16).save_pretrained(tmp_path)
    model, _ = load_hf(tmp_path)
    batch = random_batch()
    assert_outputs_close(our_outputs(model, batch), hf_outputs(hf_model.float(), batch), padding_mask=batch["padding_mask"])


def test_new_head_on_a_pretrained_backbone(tmp_path):
    hf_model = hf_tiny("BertModel")
    hf_model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="num_classes"):
        load_hf(tmp_path, task="text_classification")
    model, _ = load_hf(tmp_path, task="text_classification", num_classes=2)
    assert isinstance(model, models.TextClassifier) and model.num_classes == 2
    batch = random_batch()
    ours = our_outputs(model.backbone, batch)
    assert_outputs_close(ours, hf_outputs(hf_model, batch), padding_mask=batch["padding_mask"])
    assert our_outputs(model, batch)["logits"].shape == (3, 2)


def test_other_task_from_a_task_checkpoint(tmp_path):
    hf_model = hf_tiny("BertForSequenceClassification")
    hf_model.save_pretrained(tmp_path)
    batch = random_batch()
    expected = hf_outputs(hf_model.bert, batch)
    # The checkpoint's classifier is dropped, no error even with strict=True.
    backbone, _ = load_hf(tmp_path, task="backbone")
    assert_outputs_close(our_outputs(backbone, batch), expected, padding_mask=batch["padding_mask"])
    tagger, _ = load_hf(tmp_path, task="token_classification", num_classes=7)
    assert_outputs_close(our_outputs(tagger.backbone, batch), expected, padding_mask=batch["padding_mask"])
    # A different number of labels: a new head of that size.
    binary, _ = load_hf(tmp_path, num_classes=2)
    assert binary.num_classes == 2
    assert_outputs_close(our_outputs(binary.backbone, batch), expected, padding_mask=batch["padding_mask"])


def test_strict_false_allows_a_missing_head(tmp_path):
    hf_tiny("DistilBertForTokenClassification").save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["classifier.weight"], tensors["classifier.bias"]
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"missing weights \(2\): classifier.weight, classifier.bias"):
        load_hf(tmp_path)
    with pytest.warns(UserWarning, match="classifier.weight"):
        model, _ = load_hf(tmp_path, strict=False)
    assert isinstance(model, models.TokenClassifier)


def test_dtype_policy(tmp_path):
    hf_tiny("BertForSequenceClassification").save_pretrained(tmp_path)
    model, _ = load_hf(tmp_path, dtype="mixed_bfloat16")
    assert model.backbone.get_layer("transformer_layer_0").dtype_policy.name == "mixed_bfloat16"
    assert model.backbone.get_layer("transformer_layer_0").attention.qkv_kernel.dtype == "float32"
    assert our_outputs(model, random_batch())["logits"].dtype == np.float32


# --------------------------------------------------------------------------- 5. errors


def test_error_folder_without_weights(tmp_path):
    transformers.BertConfig(**TINY_BERT).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="No weights found") as error:
        load_hf(tmp_path)
    assert str(tmp_path) in str(error.value) and "model.safetensors" in str(error.value)
    assert "pytorch_model.bin" in str(error.value)


def test_error_folder_without_config(tmp_path):
    with pytest.raises(ValueError, match="No config.json") as error:
        load_hf(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_error_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["RobertaModel"], "model_type": "roberta"}))
    with pytest.raises(ValueError, match="RobertaModel") as error:
        load_hf(tmp_path)
    assert "BertForSequenceClassification" in str(error.value)  # lists the supported ones
    assert "DistilBertModel" in str(error.value)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"hidden_act": "relu"}, "hidden_act='relu'"),
        ({"hidden_act": "gelu_new"}, "gelu_new"),
        ({"position_embedding_type": "relative_key"}, "relative_key"),
        ({"is_decoder": True}, "is_decoder"),
    ],
)
def test_error_unsupported_config(change, match, tmp_path):
    config = dict(TINY_BERT, architectures=["BertModel"], model_type="bert", **change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=match):
        load_hf(tmp_path)


def test_error_lists_missing_unexpected_and_misshaped_weights(tmp_path):
    hf_tiny("BertModel").save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["encoder.layer.0.attention.self.key.weight"]
    del tensors["encoder.layer.1.output.LayerNorm.bias"]
    tensors["encoder.layer.0.attention.self.extra.weight"] = np.zeros((2, 2), "float32")
    tensors["pooler.dense.weight"] = np.zeros((32, 31), "float32")
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError) as error:
        load_hf(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    assert "missing weights (2)" in message
    assert "bert.encoder.layer.0.attention.self.key.weight" in message
    assert "bert.encoder.layer.1.output.LayerNorm.bias" in message
    assert "unexpected weights (1): bert.encoder.layer.0.attention.self.extra.weight" in message
    assert "bert.pooler.dense.weight has shape (32, 31), expected (32, 32)" in message
    # strict=False still refuses mis-shaped weights.
    with pytest.raises(ValueError, match="mis-shaped"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_hf(tmp_path, strict=False)


def test_error_untied_decoder(tmp_path):
    hf_model = hf_tiny("DistilBertForMaskedLM")
    state = {k: v.clone() for k, v in hf_model.state_dict().items()}
    state["vocab_projector.weight"] += 1.0
    torch.save(state, tmp_path / "pytorch_model.bin")
    save_config(hf_model, tmp_path)
    with pytest.raises(ValueError, match="vocab_projector.weight differs"):
        load_hf(tmp_path)


def test_error_paths_and_hub_ids(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        load_hf(tmp_path / "does-not-exist")
    with pytest.raises(FileNotFoundError, match="offline"):
        load_hf("tfdistil-tests/no-such-model-anywhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        load_hf(tmp_path / "file.txt")


def test_error_bad_task_arguments(tmp_path):
    hf_tiny("BertModel").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="Unknown task 'ner'"):
        load_hf(tmp_path, task="ner")
    with pytest.raises(ValueError, match="num_classes"):
        load_hf(tmp_path, task="question_answering", num_classes=3)


def test_error_save_hf_arguments(tmp_path):
    model = models.TokenClassifier(tiny_backbone("bert"), NUM_LABELS)
    with pytest.raises(ValueError, match="2 names for a model of 3 classes"):
        save_hf(model, None, tmp_path, label_names=["a", "b"])
    with pytest.raises(ValueError, match="label_names"):
        save_hf(models.SpanQA(model.backbone), None, tmp_path, label_names=["a", "b"])
    with pytest.raises(ValueError, match="got Sequential"):
        import keras

        save_hf(keras.Sequential([keras.layers.Dense(2)]), None, tmp_path)
