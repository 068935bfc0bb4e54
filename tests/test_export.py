"""SavedModel export for TF Serving: layout, signatures, ops, a fresh-process load, CLI, errors."""
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry
from tensorflow_serving.apis import prediction_log_pb2

import tfdistil.export.saved_model as saved_model_module
from conftest import serve_in_fresh_process
from harness import graph_def_uses_xla
from tfdistil.layers import xla_layer_norm
from tfdistil.export import REST_EXAMPLES, export_saved_model
from tfdistil.models import BertBackbone, DistilBertBackbone, SpanQA, TextClassifier, TokenClassifier
from tfdistil.text import WordPieceTokenizer

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film", "the", "is",
    "##s", "cafe", "naive", "東", "京", ".", ",", "eu", "rejects", "german", "call", "to",
    "boycott", "british", "lamb", "who", "went", "home", "tom", "?", "##ing", "dull",
]
SEQ = 8  # short, so that truncation is easy to reach
LABELS = ["negative", "neutral", "positive"]
TAGS = ["O", "B-ORG", "B-MISC", "B-PER"]
LONG_TEXT = "the film is good , the film is bad , a dull film to boycott ."


def tiny_bert():
    return BertBackbone(len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                        max_sequence_length=16)


def tiny_distilbert():
    return DistilBertBackbone(len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                              max_sequence_length=16)


def randomize(model, seed):
    # Spread the logits apart so that argmax and probabilities are meaningful.
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if not any(part in variable.path for part in ("gamma", "beta", "bias")):
            variable.assign(rng.normal(0, 1.0, variable.shape).astype(variable.dtype))
    return model


def export_random(*args, **kwargs):
    """The tests' models are random, not trained: say so to the exporter."""
    return export_saved_model(*args, allow_untrained=True, **kwargs)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    # From a file that is deleted before the export is loaded elsewhere.
    vocab_file = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return WordPieceTokenizer(str(vocab_file), sequence_length=SEQ), vocab_file


@pytest.fixture(scope="module")
def exports(tokenizer, tmp_path_factory):
    tok, _ = tokenizer
    root = tmp_path_factory.mktemp("saved_models")
    keras.utils.set_random_seed(0)
    models = {
        "classifier": randomize(TextClassifier(tiny_bert(), num_classes=3), 2),
        "pair": randomize(TextClassifier(tiny_distilbert(), num_classes=3), 2),
        "tagger": randomize(TokenClassifier(tiny_distilbert(), num_classes=4), 3),
        "qa": randomize(SpanQA(tiny_bert()), 4),
    }
    kwargs = {
        "classifier": dict(label_names=LABELS, model_card={"metrics": {"accuracy": 0.875}, "dataset": "toy"}),
        "pair": dict(label_names=LABELS, pair=True),
        "tagger": dict(label_names=TAGS),
        "qa": dict(),
    }
    folders = {name: export_random(models[name], tok, root / name, **kwargs[name]) for name in models}
    return models, folders


def load_saved_model_proto(folder):
    return saved_model_pb2.SavedModel.FromString((Path(folder) / "saved_model.pb").read_bytes())


def tf_text_op_names():
    """Op names that tensorflow-text's kernels libraries register."""
    names = set()
    ops_dir = os.path.join(os.path.dirname(tensorflow_text.__file__), "python", "ops")
    for library in sorted(glob.glob(os.path.join(ops_dir, "*.so"))):
        module = tf.load_op_library(library)  # already loaded: returns its op wrappers
        names |= {n for n in dir(module) if n[:1].isupper() and op_def_registry.get(n) is not None}
    return names


# --------------------------------------------------------------------------- layout


def test_layout_versions_and_files(exports, tokenizer, tmp_path):
    models, folders = exports
    folder = folders["classifier"]
    assert folder.name == "1"
    assert sorted(p.name for p in folder.parent.iterdir()) == ["1"]  # no temporary left
    assert sorted(p.name for p in folder.parent.parent.iterdir()) == ["classifier", "pair", "qa", "tagger"]
    for name in ("saved_model.pb", "variables", "README.md", "assets.extra/tf_serving_warmup_requests"):
        assert (folder / name).exists(), name

    tok, _ = tokenizer
    root = tmp_path / "sentiment"
    model = models["classifier"]
    assert export_random(model, tok, root).name == "1"
    assert export_random(model, tok, root).name == "2"
    assert export_random(model, tok, root, version=7).name == "7"
    assert export_random(model, tok, root).name == "8"
    before = (root / "2" / "saved_model.pb").read_bytes()
    with pytest.raises(ValueError, match="Version 2 already exists"):
        export_random(model, tok, root, version=2)
    assert (root / "2" / "saved_model.pb").read_bytes() == before
    assert sorted(os.listdir(root)) == ["1", "2", "7", "8"]
    assert sorted(os.listdir(tmp_path)) == ["sentiment"]


def test_self_contained(exports, tokenizer):
    _, folders = exports
    _, vocab_file = tokenizer
    for folder in folders.values():
        meta_graph = load_saved_model_proto(folder).meta_graphs[0]
        assert list(meta_graph.asset_file_def) == []  # the vocabulary is a graph constant
        assert str(vocab_file).encode() not in (folder / "saved_model.pb").read_bytes()
        for path in folder.rglob("*"):
            assert not path.is_symlink()


def test_model_card(exports):
    _, folders = exports
    card = (folders["classifier"] / "README.md").read_text(encoding="utf-8")
    for fact in ["text_classification", "negative", "positive", "accuracy: 0.875", "dataset: toy",
                 f"sequence_length: {SEQ}", "lowercase: True", "Parameters:", '{"instances"']:
        assert fact in card, fact
    assert "B-ORG" in (folders["tagger"] / "README.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- ops


def test_graph_uses_only_tf_and_tf_text_ops(exports):
    _, folders = exports
    text_ops = tf_text_op_names()
    assert {"FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets", "NormalizeUTF8"} <= text_ops
    core_ops = {n for n in dir(tf.raw_ops) if not n.startswith("_")}
    forbidden = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
    for name, folder in folders.items():
        graph_def = load_saved_model_proto(folder).meta_graphs[0].graph_def
        functions = {f.signature.name for f in graph_def.library.function}
        ops = {node.op for node in graph_def.node}
        for function in graph_def.library.function:
            ops |= {node.op for node in function.node_def}
        assert not ops & forbidden, (name, ops & forbidden)
        unknown = ops - core_ops - text_ops - functions
        assert not unknown, f"{name}: ops outside TF core + tensorflow-text: {sorted(unknown)}"
        assert ops & text_ops  # the tokenizer really is in the graph


# --------------------------------------------------------------------------- signatures


def test_signatures_match_the_documented_rest_shapes(exports):
    _, folders = exports
    cases = {
        "classifier": "text_classification",
        "pair": "text_pair_classification",
        "tagger": "token_classification",
        "qa": "question_answering",
    }
    assert '{"instances"' in saved_model_module.__doc__ and '{"predictions"' in saved_model_module.__doc__
    for name, example_name in cases.items():
        signature_def = load_saved_model_proto(folders[name]).meta_graphs[0].signature_def
        assert set(signature_def) >= {"serving_default", "logits", "tokenize"}
        serving = signature_def["serving_default"]
        example = REST_EXAMPLES[example_name]
        for instance in example["request"]["instances"]:
            assert set(instance) == set(serving.inputs), name
        for tensor in serving.inputs.values():
            assert tensor.dtype == tf.string.as_datatype_enum
            assert [d.size for d in tensor.tensor_shape.dim] == [-1]
        for prediction in example["response"]["predictions"]:
            assert set(prediction) == set(serving.outputs), name
        # Row format needs every output batched on its first dimension.
        for tensor in serving.outputs.values():
            assert tensor.tensor_shape.dim[0].size == -1
        logits = signature_def["logits"]
        assert set(logits.inputs) == {"token_ids", "segment_ids", "padding_mask"}
        assert all(t.dtype == tf.int32.as_datatype_enum for t in logits.inputs.values())
    classifier = load_saved_model_proto(folders["classifier"]).meta_graphs[0].signature_def
    outputs = classifier["serving_default"].outputs
    assert outputs["probabilities"].dtype == tf.float32.as_datatype_enum
    assert outputs["class_ids"].dtype == tf.int64.as_datatype_enum
    assert outputs["class_names"].dtype == tf.string.as_datatype_enum


def expected_probabilities(model, tok, texts, pairs=None):
    inputs = tok(tf.constant(texts)) if pairs is None else tok(tf.constant(texts), tf.constant(pairs))
    return tf.nn.softmax(model(inputs, training=False), axis=-1).numpy()


def expected_tags(model, tok, texts):
    """Word tags computed in Python from `tokenize_words`: first piece of each word."""
    words = [t.split() for t in texts]
    pieces = tok.tokenize_words(tf.ragged.constant(words, dtype=tf.string, ragged_rank=1)).to_list()
    results, packed_rows = [], []
    for row in pieces:
        ids, starts = [], []
        for word_pieces in row:
            starts.append(len(ids) if word_pieces else None)
            ids.extend(word_pieces)
        ids = ids[: SEQ - 2]
        packed = [tok.cls_token_id] + ids + [tok.sep_token_id]
        packed += [tok.pad_token_id] * (SEQ - len(packed))
        mask = [1] * (len(ids) + 2) + [0] * (SEQ - len(ids) - 2)
        logits = model({"token_ids": tf.constant([packed]), "segment_ids": tf.zeros([1, SEQ], tf.int32),
                        "padding_mask": tf.constant([mask])}, training=False)
        predicted = np.argmax(logits[0].numpy(), axis=-1)
        packed_rows.append(packed)
        results.append([
            TAGS[predicted[s + 1]] if s is not None and s < len(ids) else "" for s in starts
        ])
    return words, results, packed_rows


def test_fresh_process_matches_keras(exports, tokenizer, tmp_path):
    models, folders = exports
    tok, vocab_file = tokenizer
    # The export must not need the vocabulary file it was made from.
    moved = vocab_file.with_suffix(".moved")
    vocab_file.rename(moved)
    batch = ["", "café naïve 東京", LONG_TEXT, "a good film"]
    pair_batch = ["a good film", LONG_TEXT, "", "東京"]
    tag_batch = ["EU rejects German call to boycott British lamb", "", "  Tom  went\thome ", "café naïve 東京"]
    calls = [
        dict(signature="serving_default", name="classifier", inputs={"text": batch}),
        dict(signature="serving_default", name="classifier", inputs={"text": ["a dull film"]}),
        dict(signature="serving_default", name="pair", inputs={"text": batch, "text_pair": pair_batch}),
        dict(signature="serving_default", name="tagger", inputs={"text": tag_batch}),
        dict(signature="serving_default", name="qa", inputs={"question": ["who went home ?", ""],
                                                             "context": ["tom went home .", LONG_TEXT]}),
    ]
    ids = tok(tf.constant(batch))
    calls.append(dict(signature="logits", name="qa", inputs={k: v.numpy().tolist() for k, v in ids.items()}))
    calls.append(dict(signature="tokenize", name="tagger", inputs={"text": tag_batch}))
    for call in calls:
        call["dir"] = str(folders[call["name"]])
        call["dtypes"] = {k: ("string" if k in ("text", "text_pair", "question", "context") else "int32")
                          for k in call["inputs"]}
    try:
        results = serve_in_fresh_process(calls, tmp_path, timeout=120)
    finally:
        moved.rename(vocab_file)

    # Text classification: a batch (empty, non-ASCII, over-long) and a batch of one.
    for result, texts in ((results[0], batch), (results[1], ["a dull film"])):
        expected = expected_probabilities(models["classifier"], tok, texts)
        np.testing.assert_allclose(result["probabilities"], expected, atol=1e-5, rtol=0)
        assert result["class_ids"] == np.argmax(expected, axis=-1).tolist()
        assert result["class_names"] == [LABELS[i] for i in result["class_ids"]]
    # The labels really vary (seed chosen so), so the name mapping is exercised.
    assert len(set(results[0]["class_names"] + results[1]["class_names"])) > 1

    expected = expected_probabilities(models["pair"], tok, batch, pair_batch)
    np.testing.assert_allclose(results[2]["probabilities"], expected, atol=1e-5, rtol=0)
    assert results[2]["class_names"] == [LABELS[i] for i in np.argmax(expected, axis=-1)]

    # Token classification: per-word tags, padded, with the number of words.
    tagged = results[3]
    words, tags, packed = expected_tags(models["tagger"], tok, tag_batch)
    assert results[6]["token_ids"] == packed  # the `tokenize` signature shows the same packing
    assert tagged["num_words"] == [len(w) for w in words]
    width = max(len(w) for w in words)
    assert tagged["words"] == [w + [""] * (width - len(w)) for w in words]
    assert tagged["tags"] == [t + [""] * (width - len(t)) for t in tags]
    assert tagged["tag_ids"] == [[TAGS.index(x) if x else -1 for x in row] for row in tagged["tags"]]
    assert tagged["tags"][0][6:] == ["", ""]  # truncated words (sequence_length 8) get no tag
    assert all(tagged["tags"][0][:6])

    # Span QA: the answer is the context's characters [start_char, end_char), the span the Python
    # post-processing picks over the windows (tfdistil.tasks.qa); and the raw logits signature.
    from tfdistil.data.squad import SquadData, SquadExample
    from tfdistil.tasks.qa import predict_answers

    answers = results[4]
    contexts = ["tom went home .", LONG_TEXT]
    examples = [SquadExample(str(i), "t", q, c, [], True) for i, (q, c) in enumerate(zip(["who went home ?", ""], contexts))]
    expected = predict_answers(models["qa"], SquadData(examples, "<test>", max_question_length=SEQ - 4), tok, 8)
    for row, context in enumerate(contexts):
        answer, score, start, end = expected[str(row)]
        assert answers["answer"][row] == context[answers["start_char"][row]:answers["end_char"][row]] == answer
        assert (answers["start_char"][row], answers["end_char"][row]) == (start, end)
        assert answers["score"][row] == pytest.approx(score, abs=1e-4)
    keras_logits = models["qa"](ids, training=False)
    for key in ("start_logits", "end_logits"):
        np.testing.assert_allclose(results[5][key], keras_logits[key].numpy(), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- TF Serving tools


def saved_model_cli():
    path = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    assert os.path.exists(path), "saved_model_cli not found next to the Python executable"
    return path


def test_saved_model_cli_show_and_run(exports, tokenizer):
    models, folders = exports
    tok, _ = tokenizer
    folder = str(folders["classifier"])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    show = subprocess.run([saved_model_cli(), "show", "--all", "--dir", folder],
                          capture_output=True, text=True, timeout=120, env=env)
    assert show.returncode == 0, show.stderr[-3000:]
    for key in ("serving_default", "logits", "tokenize", "probabilities", "class_ids", "class_names",
                "DT_STRING"):
        assert key in show.stdout, key
    # `run` executes the graph, which needs the tensorflow-text kernels: TF Serving links them,
    # the stock saved_model_cli does not load them, so run its `main` after importing tensorflow_text.
    script = (
        "import sys, tensorflow_text; from tensorflow.python.tools.saved_model_cli import main; "
        "sys.argv[0] = 'saved_model_cli'; sys.exit(main())"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "run", "--dir", folder, "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs", 'text=["a good film"]'],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for key in ("probabilities", "class_ids", "class_names"):
        assert key in run.stdout, key
    # The TF1-style loader (as TF Serving's) restored the trained weights, not fresh ones.
    printed = run.stdout.split("Result for output key probabilities:")[1]
    values = [float(x) for x in re.findall(r"[0-9]+\.[0-9]+(?:e[-+][0-9]+)?", printed)][:3]
    expected = expected_probabilities(models["classifier"], tok, ["a good film"])[0]
    np.testing.assert_allclose(values, expected, atol=2e-5, rtol=0)


def _read_fields(data):
    """{field number: [payload]} of a protobuf message (length-delimited fields only)."""
    fields, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        assert key & 7 == 2, "only length-delimited fields expected"
        size, i = _read_varint(data, i)
        fields.setdefault(key >> 3, []).append(data[i : i + size])
        i += size
    return fields


def _read_varint(data, i):
    value, shift = 0, 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def test_warmup_requests_are_valid_prediction_logs(exports):
    _, folders = exports
    for name in ("classifier", "pair", "qa"):
        folder = folders[name]
        records = list(tf.data.TFRecordDataset(str(folder / "assets.extra" / "tf_serving_warmup_requests")))
        assert len(records) == 1
        data = records[0].numpy()
        log = prediction_log_pb2.PredictionLog.FromString(data)
        assert log.predict_log.request.model_spec.signature_name == "serving_default"
        # Read again by hand from protobuf's wire format, independently of the classes that wrote it.
        request = _read_fields(_read_fields(_read_fields(data)[6][0])[1][0])
        assert _read_fields(request[1][0])[3] == [b"serving_default"]
        inputs = {}
        for entry in request[2]:
            entry = _read_fields(entry)
            proto = tf.make_tensor_proto([""])
            proto.ParseFromString(entry[2][0])
            inputs[entry[1][0].decode()] = tf.constant(tf.make_ndarray(proto))
        parsed = {key: tf.make_ndarray(value).tolist() for key, value in log.predict_log.request.inputs.items()}
        assert parsed == {key: value.numpy().tolist() for key, value in inputs.items()}
        serving = load_saved_model_proto(folder).meta_graphs[0].signature_def["serving_default"]
        assert set(inputs) == set(serving.inputs)
        # The requests run through the exported signature.
        outputs = tf.saved_model.load(str(folder)).signatures["serving_default"](**inputs)
        assert set(outputs) == set(serving.outputs)


# --------------------------------------------------------------------------- errors


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def test_bad_inputs_raise_and_write_nothing(exports, tokenizer, tmp_path):
    models, _ = exports
    tok, _ = tokenizer
    model = models["classifier"]
    root = tmp_path / "models" / "sentiment"
    with pytest.raises(ValueError, match="TextClassifier, TextRegressor, TokenClassifier, SpanQA or TextEmbedder.*BertBackbone"):
        export_random(model.backbone, tok, root)
    plain = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="Sequential"):
        export_random(plain, tok, root)
    with pytest.raises(ValueError, match="WordPieceTokenizer"):
        export_random(model, "vocab.txt", root)
    with pytest.raises(ValueError, match="has 2 names"):
        export_random(model, tok, root, label_names=["neg", "pos"])
    with pytest.raises(ValueError, match="`version`"):
        export_random(model, tok, root, version=0)
    with pytest.raises(ValueError, match="pair=True"):
        export_random(models["tagger"], tok, root, pair=True)
    with pytest.raises(ValueError, match="no classes"):
        export_random(models["qa"], tok, root, label_names=["x"])
    bigger = WordPieceTokenizer(VOCAB + ["extra"], sequence_length=SEQ)
    with pytest.raises(ValueError, match="embeds only"):
        export_random(model, bigger, root)
    assert listing(tmp_path) == []

    not_serving = tmp_path / "mixed"
    (not_serving / "1").mkdir(parents=True)
    (not_serving / "checkpoints").mkdir()
    (not_serving / "notes.txt").write_text("x")
    before = listing(tmp_path)
    with pytest.raises(ValueError, match=r"not a TF Serving model folder.*checkpoints.*notes\.txt"):
        export_random(model, tok, not_serving)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        export_random(model, tok, a_file)
    assert listing(tmp_path) == sorted(before + ["a_file"])


def test_failure_midway_leaves_nothing(exports, tokenizer, tmp_path, monkeypatch):
    models, _ = exports
    tok, _ = tokenizer

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    # After the SavedModel itself is written: the staging folder holds real files then.
    monkeypatch.setattr(saved_model_module, "write_model_card", fail)
    new_root = tmp_path / "new" / "nested" / "sentiment"
    with pytest.raises(RuntimeError, match="disk full"):
        export_random(models["classifier"], tok, new_root)
    assert listing(tmp_path) == []

    existing = tmp_path / "sentiment"
    (existing / "3").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="disk full"):
        export_random(models["classifier"], tok, existing)
    assert listing(tmp_path) == ["sentiment", "sentiment/3"]


def test_mixed_precision_model_serves_float32(tokenizer, tmp_path):
    tok, _ = tokenizer
    backbone = BertBackbone(len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                            max_sequence_length=16, dtype="mixed_bfloat16")
    model = randomize(TextClassifier(backbone, num_classes=3), 5)
    with xla_layer_norm(model):  # the opt-in XLA LayerNorm path never goes into an export
        folder = export_random(model, tok, tmp_path / "bf16")
    graphs = [graph.graph_def for graph in load_saved_model_proto(folder).meta_graphs]
    assert graphs and graphs[0].library.function and not any(graph_def_uses_xla(g) for g in graphs)
    texts = ["a good film", LONG_TEXT, "dull"]
    outputs = tf.saved_model.load(str(folder)).signatures["serving_default"](text=tf.constant(texts))
    assert outputs["probabilities"].dtype == tf.float32
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected_probabilities(model, tok, texts),
                               atol=1e-2, rtol=0)  # eager Keras rounds bfloat16 ops apart: not bit for bit
    # The same as an export of the float32 weights, bit for bit: the projections' stored
    # bfloat16 copies hold what each call would cast the float32 weights to.
    float32_folder = export_random(model, tok, tmp_path / "bf16_float32_weights", cast_weights=False)
    plain = tf.saved_model.load(str(float32_folder)).signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_array_equal(outputs["probabilities"].numpy(), plain["probabilities"].numpy())
    assert np.ptp(outputs["probabilities"].numpy(), axis=0).max() > 0.01  # the texts matter
    # Stored: the projections (QKV, attention output, two feed-forward kernels, their biases) in
    # bfloat16, each once; everything else (embeddings, LayerNorms, pooler, classifier) float32.
    def stored(folder):
        reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
        return {name: dtype.name for name, dtype in reader.get_variable_to_dtype_map().items()
                if name.startswith("model_variables/")}

    cast, kept = stored(folder), stored(float32_folder)
    assert len(cast) == len(kept) == len(model.variables)
    changed = {kept[name] + " -> " + cast[name] for name in kept if cast[name] != kept[name]}
    assert changed == {"float32 -> bfloat16"} and sorted(cast.values()).count("bfloat16") == 8
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "Dtype policy: mixed_bfloat16; the 8 projection kernels and biases are stored in bfloat16" in card
    assert "Dtype policy: mixed_bfloat16\n" in (float32_folder / "README.md").read_text(encoding="utf-8")


def test_untrained_model_is_refused_unless_allowed(tokenizer, tmp_path):
    from tfdistil.export.saved_model import looks_untrained

    tok, _ = tokenizer
    fresh = TextClassifier(tiny_bert(), num_classes=3)
    assert looks_untrained(fresh)
    root = tmp_path / "fresh"
    with pytest.raises(ValueError, match="looks untrained"):
        export_saved_model(fresh, tok, root, label_names=LABELS)
    assert not root.exists() and list(tmp_path.iterdir()) == []
    assert export_saved_model(fresh, tok, root, label_names=LABELS, allow_untrained=True).name == "1"
    # One optimizer step moves the biases: no longer "untrained".
    fresh.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batch = {k: np.asarray(v) for k, v in tok(tf.constant(["a good film", "dull"])).items()}
    fresh.train_on_batch(batch, np.array([0, 1]))
    assert not looks_untrained(fresh)
