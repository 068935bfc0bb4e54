"""tfdistil.models: backbones, presets and task models.

Tiny configurations everywhere (vocabulary 60, width 16, 2 layers) except the
parameter-count tests, which build the real sizes.
"""
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

import tfdistil.models.backbone as backbone_module
from tfdistil.layers import skip_padding
from harness import (
    assert_identical,
    graph_def_uses_xla,
    run_backbone_test,
    run_model_saving_test,
    run_task_test,
    shared_initial_values,
)
from tfdistil.models import (
    BertBackbone,
    DistilBertBackbone,
    MaskedLM,
    SpanQA,
    TextClassifier,
    TokenClassifier,
)

VOCAB, LAYERS, HEADS, HIDDEN, INTERMEDIATE, MAX_LEN = 60, 2, 2, 16, 32, 24
TINY = dict(
    vocabulary_size=VOCAB, num_layers=LAYERS, num_heads=HEADS, hidden_dim=HIDDEN,
    intermediate_dim=INTERMEDIATE, max_sequence_length=MAX_LEN, dropout=0.1,
)
BERT_TINY = dict(TINY, num_segments=2)
DISTIL_TINY = dict(TINY)
BACKBONES = {"bert": (BertBackbone, BERT_TINY), "distilbert": (DistilBertBackbone, DISTIL_TINY)}


def make_inputs(batch=2, seq=7, segment_ids=True, num_padding=(0, 2), seed=0):
    """token_ids in [1, VOCAB), the last `num_padding[i]` positions of example i padded."""
    r = np.random.default_rng(seed)
    token_ids = r.integers(1, VOCAB, size=(batch, seq)).astype("int32")
    padding_mask = np.ones((batch, seq), dtype="int32")
    for i, n in enumerate(num_padding[:batch]):
        if n:
            padding_mask[i, seq - n :] = 0
            token_ids[i, seq - n :] = 0
    data = {"token_ids": token_ids}
    if segment_ids:
        segments = np.zeros((batch, seq), dtype="int32")
        segments[:, seq // 2 :] = 1
        data["segment_ids"] = segments * padding_mask
    data["padding_mask"] = padding_mask
    return data


def inputs_for(backbone_cls, **kwargs):
    return make_inputs(segment_ids=backbone_cls is BertBackbone, **kwargs)


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def backbone(request):
    cls, kwargs = BACKBONES[request.param]
    keras.utils.set_random_seed(7)
    return cls(**kwargs)


# ---------------------------------------------------------------- parameter counts


def bert_param_count(vocab, hidden, layers, intermediate, positions=512, segments=2, pooler=True):
    """Hugging Face BertModel's parameter count, by hand."""
    embeddings = vocab * hidden + positions * hidden + segments * hidden + 2 * hidden  # + LayerNorm
    per_layer = (
        4 * hidden * hidden + 4 * hidden  # Q, K, V, output projections with biases
        + 2 * hidden * intermediate + intermediate + hidden  # feed-forward
        + 4 * hidden  # two LayerNorms
    )
    total = embeddings + layers * per_layer
    if pooler:
        total += hidden * hidden + hidden
    return total


def test_bert_base_parameter_count_matches_hugging_face():
    assert BertBackbone.from_preset("bert_base").count_params() == 109_482_240


def test_distilbert_base_parameter_count_matches_hugging_face():
    assert DistilBertBackbone.from_preset("distilbert_base").count_params() == 66_362_880


def test_hand_formula_reproduces_the_hugging_face_numbers():
    assert bert_param_count(30522, 768, 12, 3072) == 109_482_240
    assert bert_param_count(30522, 768, 6, 3072, segments=0, pooler=False) == 66_362_880
    assert bert_param_count(30522, 1024, 24, 4096) == 335_141_888  # HF bert-large-uncased


@pytest.fixture
def zeros_initializer(monkeypatch):
    """Counting parameters needs shapes, not random values: drawing 335M truncated
    normals for bert_large takes ~15 s on 2 cores, zeros ~2 s."""
    monkeypatch.setattr(backbone_module, "bert_initializer", lambda stddev=0.02: keras.initializers.Zeros())


# Turc et al. (2019), "Well-Read Students Learn Better": L layers, H width, H/64 heads, 4H;
# Devlin et al. (2019) for base and large.
TURC_SIZES = {
    "bert_tiny": (2, 128),
    "bert_mini": (4, 256),
    "bert_small": (4, 512),
    "bert_medium": (8, 512),
    "bert_base": (12, 768),
    "bert_large": (24, 1024),
}


# bert_base is covered by the golden-value test above.
@pytest.mark.parametrize("preset", [name for name in TURC_SIZES if name != "bert_base"])
def test_bert_preset_parameter_counts(preset, zeros_initializer):
    layers, hidden = TURC_SIZES[preset]
    model = BertBackbone.from_preset(preset)
    assert (model.num_layers, model.hidden_dim, model.num_heads, model.intermediate_dim) == (
        layers, hidden, hidden // 64, 4 * hidden
    )
    assert model.count_params() == bert_param_count(30522, hidden, layers, 4 * hidden)


# ---------------------------------------------------------------- presets


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ValueError, match="bert_gigantic") as info:
        BertBackbone.from_preset("bert_gigantic")
    for name in TURC_SIZES:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="distilbert_base"):
        DistilBertBackbone.from_preset("bert_tiny")  # a BERT preset is not a DistilBERT one
    with pytest.raises(ValueError, match="bert_base"):
        BertBackbone.from_preset("distilbert_base")


def test_checkpoint_names_are_aliases_of_the_presets(zeros_initializer):
    # The design card writes BertBackbone.from_preset("bert_base_uncased").
    aliased = BertBackbone.from_preset("bert_base_uncased", vocabulary_size=50, num_layers=1).get_config()
    plain = BertBackbone.from_preset("bert_base", vocabulary_size=50, num_layers=1).get_config()
    assert {k: v for k, v in aliased.items() if k != "name"} == {k: v for k, v in plain.items() if k != "name"}
    assert DistilBertBackbone.from_preset("distilbert_base_uncased", num_layers=1).hidden_dim == 768
    with pytest.raises(ValueError, match="distilbert_base_uncased"):
        BertBackbone.from_preset("distilbert_base_uncased")


def test_preset_kwargs_override(zeros_initializer):
    model = BertBackbone.from_preset("bert_tiny", vocabulary_size=50, max_sequence_length=16, num_layers=1)
    config = model.get_config()
    assert (config["vocabulary_size"], config["max_sequence_length"], config["num_layers"]) == (50, 16, 1)
    assert (config["hidden_dim"], config["num_heads"], config["intermediate_dim"]) == (128, 2, 512)
    assert model.count_params() == bert_param_count(50, 128, 1, 512, positions=16)
    distil = DistilBertBackbone.from_preset("distilbert_base", num_layers=1, vocabulary_size=50, hidden_dim=64,
                                            num_heads=2, intermediate_dim=128, max_sequence_length=8)
    assert distil.count_params() == bert_param_count(50, 64, 1, 128, positions=8, segments=0, pooler=False)


# ---------------------------------------------------------------- backbones


def test_bert_backbone_harness():
    run_backbone_test(
        BertBackbone, BERT_TINY, make_inputs(seq=7),
        {"sequence_output": (2, 7, HIDDEN), "pooled_output": (2, HIDDEN)},
    )


def test_distilbert_backbone_harness():
    run_backbone_test(
        DistilBertBackbone, DISTIL_TINY, make_inputs(seq=7, segment_ids=False),
        {"sequence_output": (2, 7, HIDDEN)},
    )


def _traced_op_types(model, data):
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(data).graph
    nodes = list(graph.as_graph_def().node) + [n for f in graph.as_graph_def().library.function for n in f.node_def]
    return {n.op for n in nodes}


@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_backbone_layer_choices_are_config_and_survive_saving(name, tmp_path):
    """`skip_padding` and `xla_layer_norm` reach every block, `get_config` records them, and a
    `.keras` file keeps them: the reloaded model traces the same path."""
    backbone_cls, kwargs = BACKBONES[name]
    default = backbone_cls(**kwargs)
    assert (default.get_config()["skip_padding"], default.get_config()["xla_layer_norm"]) == ("inference", False)
    data = inputs_for(backbone_cls, batch=3, seq=8, num_padding=(0, 6, 7))  # 11 of 24 real: skipped
    assert "ScatterNd" in _traced_op_types(default, data)
    model = TextClassifier(
        backbone_cls(**dict(kwargs, skip_padding="never", xla_layer_norm=True, dtype="mixed_bfloat16")), num_classes=2
    )
    config = model.backbone.get_config()
    assert (config["skip_padding"], config["xla_layer_norm"]) == ("never", True)
    model.save(tmp_path / "model.keras")
    revived = keras.models.load_model(tmp_path / "model.keras")
    for m in (model, revived):
        blocks = m.backbone.transformer_layers
        assert [b.skip_padding for b in blocks] == ["never"] * LAYERS
        assert all(b.attention_layer_norm.xla and b.output_layer_norm.xla for b in blocks)
        assert "ScatterNd" not in _traced_op_types(m.backbone, data)
        graph = tf.function(lambda x, m=m: m(x, training=False)).get_concrete_function(data).graph
        assert graph_def_uses_xla(graph.as_graph_def())
    # The context reaches the blocks a task's first-token model shares, and restores them.
    with skip_padding(revived, "inference"):
        assert "ScatterNd" in _traced_op_types(revived.backbone, data)
    assert [b.skip_padding for b in revived.backbone.transformer_layers] == ["never"] * LAYERS


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")  # seq == 1
@pytest.mark.parametrize("seq", [1, 5, 17, MAX_LEN])
def test_backbone_any_sequence_length_up_to_max(backbone, seq):
    data = inputs_for(type(backbone), seq=seq, num_padding=(0, min(2, seq - 1)))
    outputs = backbone(data)
    assert tuple(outputs["sequence_output"].shape) == (2, seq, HIDDEN)
    if isinstance(backbone, BertBackbone):
        assert tuple(outputs["pooled_output"].shape) == (2, HIDDEN)
    else:
        assert set(outputs) == {"sequence_output"}
    full = backbone.intermediate_model()(data)
    assert len(full["hidden_states"]) == LAYERS + 1
    assert len(full["attention_scores"]) == LAYERS
    assert all(tuple(h.shape) == (2, seq, HIDDEN) for h in full["hidden_states"])
    assert all(tuple(a.shape) == (2, HEADS, seq, seq) for a in full["attention_scores"])
    assert_identical(full["sequence_output"], outputs["sequence_output"], atol=1e-6)
    for probs in full["attention_scores"]:
        np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, atol=1e-5)


def test_intermediate_model_is_cached_and_optional(backbone):
    assert backbone.intermediate_model() is backbone.intermediate_model()
    data = inputs_for(type(backbone))
    only_hidden = backbone.intermediate_model(output_attention_scores=False)(data)
    assert "attention_scores" not in only_hidden and len(only_hidden["hidden_states"]) == LAYERS + 1
    only_scores = backbone.intermediate_model(output_hidden_states=False)(data)
    assert "hidden_states" not in only_scores and len(only_scores["attention_scores"]) == LAYERS


def test_backbone_rejects_too_long_inputs(backbone):
    data = inputs_for(type(backbone), seq=MAX_LEN + 1)
    for model in (backbone, backbone.intermediate_model()):
        with pytest.raises(ValueError, match="max_sequence_length"):
            model(data)
    with pytest.raises(ValueError, match="max_sequence_length"):
        backbone.predict(data, verbose=0)


@pytest.mark.parametrize("kind", ["array", "list", "tuple"])
def test_backbone_rejects_non_dict_inputs(backbone, kind):
    data = inputs_for(type(backbone))
    values = list(data.values())
    bad = {"array": data["token_ids"], "list": values, "tuple": tuple(values)}[kind]
    with pytest.raises(ValueError, match="dict"):
        backbone(bad)
    with pytest.raises(ValueError, match="dict"):
        backbone.intermediate_model()(bad)


def test_bert_backbone_requires_segment_ids():
    model = BertBackbone(**BERT_TINY)
    with pytest.raises(ValueError, match="segment_ids"):
        model(make_inputs(segment_ids=False))


def test_distilbert_ignores_segment_ids():
    """One dataset feeds a BERT teacher and a DistilBERT student. The segment ids here
    (all zeros) would mask every token if they were mistaken for the padding mask."""
    model = DistilBertBackbone(**DISTIL_TINY)
    data = make_inputs(segment_ids=False)
    extra = {
        "token_ids": data["token_ids"],
        "segment_ids": np.zeros_like(data["token_ids"]),
        "padding_mask": data["padding_mask"],
    }
    reference = model(data)
    assert_identical(model(extra), reference)
    assert_identical(model.intermediate_model()(extra), model.intermediate_model()(data))
    assert_identical(model.predict(extra, verbose=0), model.predict(data, verbose=0), atol=1e-6)


@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_backbone_padding_invariance(name):
    cls, kwargs = BACKBONES[name]
    model = cls(**kwargs)
    short = inputs_for(cls, seq=6, num_padding=(0, 2))
    padded = inputs_for(cls, seq=11, num_padding=(5, 7))
    padded["token_ids"][:, :6] = short["token_ids"]
    padded["token_ids"][:, 6:] = np.random.default_rng(1).integers(1, VOCAB, size=(2, 5))  # junk at pads
    padded["padding_mask"][:, :6] = short["padding_mask"]
    if "segment_ids" in short:
        padded["segment_ids"][:, :6] = short["segment_ids"]
    real = short["padding_mask"].astype(bool)

    full_short = model.intermediate_model()(short)
    full_padded = model.intermediate_model()(padded)
    for a, b in zip(full_short["hidden_states"], full_padded["hidden_states"]):
        np.testing.assert_allclose(np.asarray(b)[:, :6][real], np.asarray(a)[real], atol=1e-5, rtol=0)
    if "pooled_output" in full_short:
        np.testing.assert_allclose(full_padded["pooled_output"], full_short["pooled_output"], atol=1e-5, rtol=0)

    classifier = TextClassifier(model, num_classes=3)
    np.testing.assert_allclose(classifier(padded), classifier(short), atol=1e-5, rtol=0)
    tagger = TokenClassifier(model, num_classes=3)
    np.testing.assert_allclose(np.asarray(tagger(padded))[:, :6][real], np.asarray(tagger(short))[real], atol=1e-5)


@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_backbone_layers_are_initialised_independently(name):
    """Keras 3 initializers without a seed return the same values on every call, so a
    single `bert_initializer()` object shared by every layer makes all transformer
    layers start identical, and the position (and segment) embedding tables and the
    pooler kernel equal to the first rows of the token embedding."""
    cls, kwargs = BACKBONES[name]
    model = cls(**kwargs)
    first, second = model.transformer_layers
    assert not np.array_equal(first.attention.qkv_kernel.numpy(), second.attention.qkv_kernel.numpy()), (
        "transformer_layer_0 and transformer_layer_1 start with the same weights"
    )
    tokens = model.token_embedding.embeddings.numpy()
    positions = model.get_layer("position_embedding").embeddings.numpy()
    assert not np.array_equal(positions, tokens[:MAX_LEN]), "position_embedding == token_embedding[:max_len]"
    shared = shared_initial_values(model)
    assert not shared, f"{len(shared)} pairs of weights start with coinciding values: {shared}"


@pytest.mark.parametrize("backbone_name", ["bert", "distilbert"])
@pytest.mark.parametrize("task_name", ["text_classifier", "token_classifier", "span_qa", "masked_lm"])
def test_task_head_weights_are_initialised_independently(task_name, backbone_name):
    """E.g. DistilBERT's classifier kernel must not be a prefix of its pre_classifier's."""
    task_cls, task_kwargs, _ = TASKS[task_name]
    backbone_cls, backbone_kwargs = BACKBONES[backbone_name]
    model = task_cls(backbone_cls(**backbone_kwargs), **task_kwargs)
    backbone_paths = {w.path for w in model.backbone.weights}
    shared = [pair for pair in shared_initial_values(model)
              if not all(p in backbone_paths for p in pair.split(" ~ "))]
    assert not shared, f"head weights start with coinciding values: {shared}"


def test_backbone_initialisation_follows_bert():
    """Truncated normal, stddev 0.02 (Devlin et al.); LayerNorm gamma 1, beta 0."""
    model = BertBackbone(**dict(BERT_TINY, vocabulary_size=2000))
    tokens = model.token_embedding.embeddings.numpy()
    assert abs(tokens.std() - 0.02 * 0.88) < 0.002  # truncation at 2 sigma shrinks the std to 0.88
    assert np.abs(tokens).max() <= 0.04 + 1e-6
    norm = model.get_layer("embeddings_layer_norm")
    np.testing.assert_array_equal(norm.gamma.numpy(), 1.0)
    np.testing.assert_array_equal(norm.beta.numpy(), 0.0)


def test_backbone_dropout_only_in_training():
    model = BertBackbone(**dict(BERT_TINY, dropout=0.3))
    data = make_inputs()
    inference = model(data)["sequence_output"]
    assert_identical(model(data, training=False)["sequence_output"], inference)
    trained = model(data, training=True)["sequence_output"]
    assert np.abs(np.asarray(trained) - np.asarray(inference)).max() > 1e-2


@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_backbone_mixed_bfloat16_policy_propagates(name):
    cls, kwargs = BACKBONES[name]
    model = cls(**kwargs, dtype="mixed_bfloat16")
    for layer in model.layers:
        if layer.weights:
            assert layer.dtype_policy.name == "mixed_bfloat16", layer.name
    for block in model.transformer_layers:
        assert block.attention.dtype_policy.name == "mixed_bfloat16"
        assert block.feed_forward.dtype_policy.name == "mixed_bfloat16"
    assert all(v.dtype == "float32" for v in model.weights)


@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_backbone_mixed_policy_survives_config_round_trip(name):
    """`keras.Model.__init__` (functional) drops its `dtype` argument, so the model's
    own `dtype_policy` stays float32 and `get_config()` records float32."""
    cls, kwargs = BACKBONES[name]
    model = cls(**kwargs, dtype="mixed_bfloat16")
    recorded = keras.saving.deserialize_keras_object(model.get_config()["dtype"]).name
    revived = cls.from_config(model.get_config())
    revived_policies = sorted({layer.dtype_policy.name for layer in revived.layers if layer.weights})
    assert (model.dtype_policy.name, recorded, revived_policies) == (
        "mixed_bfloat16", "mixed_bfloat16", ["mixed_bfloat16"]
    ), (
        f"{cls.__name__}(dtype='mixed_bfloat16'): dtype_policy={model.dtype_policy.name!r}, "
        f"get_config()['dtype']={recorded!r}, layers after from_config: {revived_policies}"
    )


@pytest.mark.parametrize("task_name", ["text_classifier", "token_classifier", "span_qa", "masked_lm"])
def test_task_heads_follow_the_backbone_policy(task_name):
    """Heads take `backbone.dtype_policy`; with a mixed backbone they should compute in
    the same reduced precision (the float32 `logits` layer aside)."""
    task_cls, task_kwargs, _ = TASKS[task_name]
    model = task_cls(BertBackbone(**BERT_TINY, dtype="mixed_bfloat16"), **task_kwargs)
    backbone_layers = {id(layer) for layer in model.backbone.layers}
    heads = {
        layer.name: layer.dtype_policy.name
        for layer in model.layers
        if id(layer) not in backbone_layers and layer is not model.backbone
        and layer.name != "logits" and not isinstance(layer, keras.layers.InputLayer)
    }
    assert heads and set(heads.values()) == {"mixed_bfloat16"}, f"head layer policies: {heads}"


# ---------------------------------------------------------------- task models

TASKS = {
    "text_classifier": (TextClassifier, {"num_classes": 3, "dropout": 0.2}, lambda b, s: (b, 3)),
    "token_classifier": (TokenClassifier, {"num_classes": 4, "dropout": 0.2}, lambda b, s: (b, s, 4)),
    "span_qa": (SpanQA, {"dropout": 0.2}, lambda b, s: {"start_logits": (b, s), "end_logits": (b, s)}),
    "masked_lm": (MaskedLM, {}, lambda b, s: (b, s, VOCAB)),
}


@pytest.mark.parametrize("backbone_name", ["bert", "distilbert"])
@pytest.mark.parametrize("task_name", list(TASKS))
def test_task_harness(task_name, backbone_name):
    task_cls, task_kwargs, shape = TASKS[task_name]
    backbone_cls, backbone_kwargs = BACKBONES[backbone_name]
    keras.utils.set_random_seed(3)
    run_task_test(
        task_cls,
        dict(task_kwargs, backbone=backbone_cls(**backbone_kwargs)),
        inputs_for(backbone_cls, seq=7),
        shape(2, 7),
        # SavedModel exports are the slow part: export one task per backbone and every
        # task once.
        run_export=(task_name, backbone_name) in {
            ("text_classifier", "bert"), ("token_classifier", "distilbert"),
            ("span_qa", "bert"), ("masked_lm", "distilbert"),
        },
    )


@pytest.mark.parametrize("task_name", list(TASKS))
def test_distilbert_task_models_ignore_segment_ids(task_name):
    task_cls, task_kwargs, _ = TASKS[task_name]
    model = task_cls(DistilBertBackbone(**DISTIL_TINY), **task_kwargs)
    data = make_inputs(segment_ids=False)
    extra = {"token_ids": data["token_ids"], "segment_ids": np.zeros_like(data["token_ids"]),
             "padding_mask": data["padding_mask"]}
    assert_identical(model(extra), model(data))
    full = model.intermediate_model()
    assert_identical(full(extra)["logits"], full(data)["logits"])


@pytest.mark.parametrize("task_name", list(TASKS))
def test_task_models_reject_bad_inputs(task_name):
    task_cls, task_kwargs, _ = TASKS[task_name]
    model = task_cls(BertBackbone(**BERT_TINY), **task_kwargs)
    with pytest.raises(ValueError, match="dict"):
        model(make_inputs()["token_ids"])
    with pytest.raises(ValueError, match="max_sequence_length"):
        model(make_inputs(seq=MAX_LEN + 1))
    with pytest.raises(ValueError, match="max_sequence_length"):
        model.intermediate_model()(make_inputs(seq=MAX_LEN + 1))


@pytest.mark.parametrize("task_name", ["text_classifier", "token_classifier", "span_qa", "masked_lm"])
def test_task_rejects_a_non_tfdistil_backbone(task_name):
    """A clear ValueError naming `backbone`, not an error from deep inside __init__."""
    task_cls, task_kwargs, _ = TASKS[task_name]
    inputs = keras.Input((None,), dtype="int32")
    other = keras.Model(inputs, keras.layers.Embedding(10, 4)(inputs))
    with pytest.raises(ValueError, match="backbone"):
        task_cls(other, **task_kwargs)


def test_distilbert_classifier_has_pre_classifier_bert_does_not():
    bert = TextClassifier(BertBackbone(**BERT_TINY), num_classes=3)
    distil = TextClassifier(DistilBertBackbone(**DISTIL_TINY), num_classes=3)
    assert bert.count_params() == bert.backbone.count_params() + HIDDEN * 3 + 3
    assert distil.count_params() == distil.backbone.count_params() + HIDDEN * HIDDEN + HIDDEN + HIDDEN * 3 + 3


def _np_layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("backbone_name", ["bert", "distilbert"])
def test_masked_lm_ties_output_projection_to_token_embedding(backbone_name):
    backbone_cls, backbone_kwargs = BACKBONES[backbone_name]
    model = MaskedLM(backbone_cls(**backbone_kwargs))
    backbone = model.backbone
    # No (vocabulary, hidden) matrix of its own: dense H*H + H, LayerNorm 2H, bias V.
    assert model.count_params() == backbone.count_params() + HIDDEN * HIDDEN + HIDDEN + 2 * HIDDEN + VOCAB
    assert sum(tuple(w.shape) == (VOCAB, HIDDEN) for w in model.weights) == 1

    data = inputs_for(backbone_cls, seq=6)
    data["token_ids"] = np.minimum(data["token_ids"], 29)  # rows >= 30 never looked up

    def numpy_logits():
        head = model.get_layer("mlm_head")
        x = np.asarray(backbone(data)["sequence_output"], dtype="float64")
        h = x @ head.dense.kernel.numpy() + head.dense.bias.numpy()
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))  # exact GELU
        h = _np_layer_norm(h, head.layer_norm.gamma.numpy(), head.layer_norm.beta.numpy())
        return h @ backbone.token_embedding.embeddings.numpy().T.astype("float64") + head.output_bias.numpy()

    head = model.get_layer("mlm_head")
    head.output_bias.assign(np.random.default_rng(0).normal(size=VOCAB).astype("float32"))
    before = np.asarray(model(data))
    np.testing.assert_allclose(before, numpy_logits(), atol=1e-5, rtol=0)

    # Change only embedding rows the inputs never use: the encoder is untouched, so any
    # change in those logits comes through the output projection.
    embeddings = backbone.token_embedding.embeddings
    table = embeddings.numpy()
    table[30:] += np.random.default_rng(1).normal(scale=0.5, size=table[30:].shape).astype("float32")
    embeddings.assign(table)
    after = np.asarray(model(data))
    np.testing.assert_array_equal(after[..., :30], before[..., :30])
    assert np.abs(after[..., 30:] - before[..., 30:]).min() > 0
    np.testing.assert_allclose(after, numpy_logits(), atol=1e-5, rtol=0)


def test_masked_lm_tie_survives_keras_reload():
    model = MaskedLM(DistilBertBackbone(**DISTIL_TINY))
    data = make_inputs(segment_ids=False)
    loaded = run_model_saving_test(model, data, run_export=False)
    before = np.asarray(loaded(data))
    embeddings = loaded.backbone.token_embedding.embeddings
    embeddings.assign(embeddings.numpy() * 2.0)
    assert np.abs(np.asarray(loaded(data)) - before).max() > 1e-3
    np.testing.assert_array_equal(np.asarray(model(data)), before)  # the original is not tied to the copy


def test_masked_lm_gradient_reaches_embedding_rows_only_used_as_outputs():
    model = MaskedLM(BertBackbone(**BERT_TINY))
    data = make_inputs(seq=6)
    data["token_ids"] = np.minimum(data["token_ids"], 29)
    labels = np.full((2, 6), 45)
    with tf.GradientTape() as tape:
        logits = model(data, training=False)
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    grad = tape.gradient(loss, model.backbone.token_embedding.embeddings)
    grad = tf.convert_to_tensor(grad).numpy()
    assert np.abs(grad[45]).max() > 0, "the label's embedding row gets no gradient: weights not tied"


# ---------------------------------------------------------------- training


def _token_seven_dataset(n=256, seq=12, seed=0):
    """Label 1 iff token 7 appears among the real tokens; [CLS]=2 first; padding 0."""
    r = np.random.default_rng(seed)
    token_ids = r.integers(10, 50, size=(n, seq)).astype("int32")
    token_ids[:, 0] = 2
    lengths = r.integers(6, seq + 1, size=n)
    labels = (np.arange(n) % 2).astype("int32")
    r.shuffle(labels)
    padding_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype("int32")
    for i in np.flatnonzero(labels):
        token_ids[i, r.integers(1, lengths[i])] = 7
    token_ids = token_ids * padding_mask
    data = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask}
    return data, labels


def test_text_classifier_learns_a_trivial_rule():
    keras.utils.set_random_seed(0)
    backbone = BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=32,
                            intermediate_dim=64, max_sequence_length=16, dropout=0.0)
    model = TextClassifier(backbone, num_classes=2, dropout=0.0)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    data, labels = _token_seven_dataset()
    # Reaches 1.0 by epoch 4-5 with seeds 0-2; a broken mask, pooler or gradient path does not.
    history = model.fit(data, labels, batch_size=32, epochs=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    predictions = np.argmax(model.predict(data, verbose=0), axis=-1)
    accuracy = float(np.mean(predictions == labels))
    assert accuracy >= 0.95, f"train accuracy {accuracy:.3f} after 6 epochs; losses {history.history['loss']}"


@pytest.mark.parametrize("backbone_name", ["bert", "distilbert"])
def test_text_classifier_computes_cls_only_in_the_last_block_with_the_full_results(backbone_name):
    """Its graph runs the backbone's `first_token_model`; logits and every gradient equal those
    of the same head on the whole backbone (`intermediate_model` runs every position)."""
    backbone_cls, backbone_kwargs = BACKBONES[backbone_name]
    keras.utils.set_random_seed(5)
    model = TextClassifier(backbone_cls(**dict(backbone_kwargs, dropout=0.0)), num_classes=3, dropout=0.0)
    assert model.backbone.first_token_model().output["sequence_output"].shape == (None, 1, HIDDEN)
    # Saving walks `layers`: the backbone stands there, as in files saved before.
    assert model.backbone in model.layers and model.backbone.first_token_model() not in model.layers
    # The same weights, each once.
    assert len(model.weights) == len({id(v) for v in model.weights}) == len(model.backbone.weights) + (
        2 if backbone_name == "bert" else 4)
    full = model.intermediate_model(False, False)
    data = inputs_for(backbone_cls, batch=3, seq=9, num_padding=(0, 4, 7))

    def matmul_shapes(fn):
        with skip_padding(model, "never"):  # one path, no branch functions to look into
            graph = tf.function(lambda x: fn(x)).get_concrete_function(data).graph
        return {tuple(op.outputs[0].shape) for op in graph.get_operations() if "MatMul" in op.type}

    # The last block's feed-forward runs on 3 rows (one per sequence), not 27 tokens.
    assert (3, INTERMEDIATE) in matmul_shapes(model) and (3, INTERMEDIATE) not in matmul_shapes(full)
    labels = np.array([0, 2, 1])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_and_gradients(fn):
        with tf.GradientTape() as tape:
            logits = fn(data, training=True)
            logits = logits["logits"] if isinstance(logits, dict) else logits
            loss = loss_fn(labels, logits)
        return logits.numpy(), [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_weights)]

    logits, grads = loss_and_gradients(model)
    full_logits, full_grads = loss_and_gradients(full)
    np.testing.assert_allclose(logits, full_logits, atol=1e-6, rtol=1e-5)
    assert np.abs(logits).max() > 1e-3
    for g, f, w in zip(grads, full_grads, model.trainable_weights):
        np.testing.assert_allclose(g, f, atol=1e-6, rtol=1e-4, err_msg=w.path)
    # The last block's weights get gradients (its query, keys, values, FFN all reach [CLS]).
    last = model.backbone.get_layer(f"transformer_layer_{LAYERS - 1}")
    assert all(np.abs(g).sum() > 0 for g, w in zip(grads, model.trainable_weights)
               if any(w is lw for lw in last.trainable_weights))


def test_jit_compiled_fit_gives_finite_loss():
    # XLA compilation dominates (~6 s CPU per model): one backbone, the three-input one.
    keras.utils.set_random_seed(0)
    model = TextClassifier(BertBackbone(**dict(BERT_TINY, vocabulary_size=50)), num_classes=2)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    data, labels = _token_seven_dataset(n=64)
    history = model.fit(data, labels, batch_size=16, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"])), history.history["loss"]


# --------------------------------------------------------------------------- compatibility


@pytest.mark.parametrize("name", ["bert_classifier", "distilbert_tagger"])
def test_models_saved_by_an_earlier_version_load(name):
    import warnings

    folder = Path(__file__).parent / "fixtures" / "saved_fb4025b"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns, and keeps fresh weights, for state it cannot match
        model = keras.models.load_model(folder / f"{name}.keras")
    saved = np.load(folder / f"{name}_weights.npz")
    assert sorted(saved.files) == sorted(v.path for v in model.weights)
    for v in model.weights:
        np.testing.assert_array_equal(v.numpy(), saved[v.path], err_msg=v.path)
