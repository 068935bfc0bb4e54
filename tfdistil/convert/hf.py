"""Hugging Face checkpoints in (`load_hf`) and out (`save_hf`).

A folder is `config.json`, weights (`model.safetensors` or `pytorch_model.bin`, possibly
sharded) and `vocab.txt`. The model is built from `config.json` and the tensors move through
`mapping.py`'s tables, every weight accounted for, so a checkpoint never loads half-right.
"""
import json
import logging
import re
import warnings
from pathlib import Path

import keras
import numpy as np

from tfdistil.convert.checkpoint import find_weights, normalize_names, read_weights, write_safetensors
from tfdistil.convert.mapping import ARCHITECTURES, HF_CLASSES, LOAD_ONLY_HF_CLASSES, TASKS, WEIGHTLESS_TASKS

logger = logging.getLogger(__name__)

# Tasks whose head size is the number of labels (`num_labels` / `id2label` in config.json).
LABELLED_TASKS = ("text_classification", "token_classification")
# Tasks on HF's *ForSequenceClassification head (regression: `num_labels=1`, `problem_type="regression"`).
SEQUENCE_TASKS = ("text_classification", "text_regression")
# HF's activation names for the exact erf GELU our encoder blocks use.
EXACT_GELU = ("gelu", "gelu_python")
# Our blocks use LayerNorm epsilon 1e-12; a much larger one would change the outputs.
MAX_LAYER_NORM_EPS = 1e-6
SPECIAL_TOKENS = ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token")


# --------------------------------------------------------------------------- loading


def load_hf(path, strict=True, dtype=None, tokenizer_kwargs=None, task=None, num_classes=None):
    """Load a Hugging Face BERT or DistilBERT folder as a tfdistil model and tokenizer.

    The model is built from `config.json` (`architectures` and `model_type`):

    | HF class (`Bert*` / `DistilBert*`) | tfdistil model      | `task`                 |
    |------------------------------------|---------------------|------------------------|
    | `BertModel`                        | `BertBackbone`      | "backbone"             |
    | `BertForSequenceClassification`    | `TextClassifier`    | "text_classification"  |
    | the same, `num_labels=1` (regression) | `TextRegressor`  | "text_regression"      |
    | `BertForTokenClassification`       | `TokenClassifier`   | "token_classification" |
    | `BertForQuestionAnswering`         | `SpanQA`            | "question_answering"   |
    | `BertForMaskedLM`                  | `MaskedLM`          | "masked_lm"            |
    | any of them, sentence-transformers | `TextEmbedder`      | "text_embedding"       |

    Fine-tuning a pretrained checkpoint: pass `task` (and `num_classes` for the
    classifiers) to get another model than the checkpoint's. Its backbone is loaded
    and its head newly initialised; the checkpoint's own head, if any, is dropped.
    A `num_classes` different from the checkpoint's `num_labels` also gives a new head.

        model, tokenizer = load_hf("bert-base-uncased/", task="text_classification", num_classes=2)

    Backbones of `Bert*` classes without a pooler (token classification, QA, masked
    LM) keep BERT's pooler at its random initialisation unless the checkpoint has one.

    Args:
        path: a local folder (HF's `save_pretrained` layout). A hub id such as
            "bert-base-uncased" works only if it is already in the local Hugging Face
            cache: nothing is downloaded.
        strict: if True, any missing or unexpected weight is an error listing them
            all; if False, missing weights keep their initial values and unexpected
            ones are skipped, with a warning. Mis-shaped weights are always an error.
        dtype: Keras dtype policy of the model ("float32", "mixed_bfloat16", ...);
            None for the Keras default.
        tokenizer_kwargs: overrides of the `WordPieceTokenizer` arguments read from
            the folder (e.g. `{"sequence_length": 64}`).
        task: one of "backbone", "text_classification", "text_regression",
            "token_classification", "question_answering", "masked_lm", "text_embedding"; None for
            the checkpoint's own. "text_embedding" (sentence-transformers mean pooling) reads the
            folder's `modules.json` and `1_Pooling/config.json` when it has them
            (`sentence_transformers_settings`) and gives a tokenizer that pads each batch to its
            longest text only (mean pooling ignores padding).
        num_classes: labels of a new classification head; by default the checkpoint's. A
            regressor has one output: `num_classes` is None or 1 for "text_regression".

    Returns:
        (model, tokenizer). `tokenizer` is a `tfdistil.text.WordPieceTokenizer` built
        from `vocab.txt` (or a WordPiece `tokenizer.json`) and `tokenizer_config.json`
        (`do_lower_case`, `strip_accents`, special tokens; `sequence_length` is
        min(512, max_position_embeddings, model_max_length)), or None when the folder
        has no vocabulary.

    Raises:
        FileNotFoundError: `path` is neither a folder nor a cached hub id.
        ValueError: no config or weights in the folder, a truncated or corrupt weight file
            (`CorruptCheckpointError`, naming it), an unsupported architecture or
            configuration, or weights that do not match the model (all listed by name).
    """
    folder = resolve_folder(path)
    config = read_config(folder)
    arch, checkpoint_task, checkpoint_class = architecture_of(config, folder)
    if checkpoint_task == "text_classification" and is_regression(config):
        checkpoint_task = "text_regression"
    if task is None:
        task = checkpoint_task
    elif task not in TASKS:
        raise ValueError(f"Unknown task {task!r}. Valid tasks: {', '.join(TASKS)}.")
    check_config(config, arch, task, folder)
    if task == "text_embedding":
        tokenizer_kwargs = {**embedding_tokenizer_settings(folder, config), **(tokenizer_kwargs or {})}

    checkpoint_classes = num_labels(config) if checkpoint_task in LABELLED_TASKS else None
    new_head = task != checkpoint_task or (
        num_classes is not None and checkpoint_classes is not None and num_classes != checkpoint_classes
    )
    if task in LABELLED_TASKS:
        if num_classes is None:
            if new_head:
                raise ValueError(
                    f"The checkpoint in {str(folder)!r} is a {checkpoint_class}; a new "
                    f"{task} head needs `num_classes`, e.g. load_hf(path, task={task!r}, num_classes=2)."
                )
            num_classes = checkpoint_classes
    elif task == "text_regression" and num_classes in (None, 1):
        num_classes = None  # one output
    elif num_classes is not None:
        raise ValueError(f"`num_classes` applies to {' and '.join(LABELLED_TASKS)}, not to task={task!r}.")
    if task == checkpoint_task == "question_answering" and num_labels(config) != 2:
        raise ValueError(
            f"{checkpoint_class} in {str(folder)!r} has num_labels={num_labels(config)}; span QA "
            "has 2 outputs (start and end logits)."
        )

    tensors = normalize_names(read_weights(find_weights(folder)), arch)
    model = build_model(arch, config, task, num_classes, dtype)
    source = f"{str(folder)!r} ({checkpoint_class})"
    load_weights(model, arch, tensors, task, checkpoint_task, new_head, strict, source)
    if new_head and task not in ("backbone", *WEIGHTLESS_TASKS):
        logger.info("New %s head initialised on the backbone of %s.", task, folder)
    tokenizer = load_tokenizer(folder, config, tokenizer_kwargs)
    return model, tokenizer


def hf_label_names(path):
    """The label names (`id2label`, in id order) of a HF classifier folder, or None."""
    config = read_config(resolve_folder(path))
    id2label = config.get("id2label")
    if not id2label:
        return None
    return [id2label[key] for key in sorted(id2label, key=int)]


def resolve_folder(path):
    """The local folder of `path`; a hub id only if it is already in the local HF cache."""
    folder = Path(path).expanduser()
    if folder.is_dir():
        return folder
    if folder.exists():
        raise ValueError(
            f"{str(path)!r} is a file; load_hf takes the folder holding config.json and the weights."
        )
    text = str(path)
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", text):
        cached = _cached_snapshot(text)
        if cached is not None:
            return cached
    raise FileNotFoundError(
        f"{text!r} is not a local folder. load_hf works offline and loads only local folders "
        "(a Hugging Face hub id only if it is already in the local Hugging Face cache). Download "
        "the model where you have internet (e.g. `huggingface-cli download <id> --local-dir <folder>` "
        "or `save_pretrained(<folder>)`) and pass that folder."
    )


def _cached_snapshot(repo_id):
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (or not a valid id): the caller raises the offline error
        return None


def read_config(folder):
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ValueError(
            f"No config.json in the folder {str(folder)!r}: load_hf needs a Hugging Face model folder "
            "(config.json + model.safetensors or pytorch_model.bin)."
        )
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def architecture_of(config, folder):
    """(Architecture, task, HF class name) of the checkpoint from `architectures` and `model_type`."""
    known = {**HF_CLASSES, **LOAD_ONLY_HF_CLASSES}
    supported = ", ".join(known)
    model_type = config.get("model_type")
    names = config.get("architectures") or []
    for name in names:
        if name in known:
            arch, task = known[name]
            if model_type not in (None, arch.model_type):
                raise ValueError(
                    f"config.json in {str(folder)!r} says architecture {name} but model_type "
                    f"{model_type!r} (expected {arch.model_type!r})."
                )
            return arch, task, name
    if names:
        raise ValueError(
            f"Unsupported architecture {', '.join(names)} (model_type {model_type!r}) in "
            f"{str(folder)!r}. Supported architectures: {supported}."
        )
    # No `architectures` (some hand-written configs): the base model of `model_type`.
    if model_type in ARCHITECTURES:
        arch = ARCHITECTURES[model_type]
        return arch, "backbone", arch.hf_classes["backbone"]
    raise ValueError(
        f"Unsupported model_type {model_type!r} in {str(folder)!r} (no `architectures` given). "
        f"Supported architectures: {supported}."
    )


def check_config(config, arch, task, folder):
    """ValueError for configurations our models cannot reproduce."""
    problems = []
    if arch.model_type == "bert":
        activation = config.get("hidden_act", "gelu")
        if activation not in EXACT_GELU:
            problems.append(
                f"hidden_act={activation!r}: only the exact GELU ('gelu') is supported"
            )
        position = config.get("position_embedding_type", "absolute")
        if position != "absolute":
            problems.append(
                f"position_embedding_type={position!r}: only 'absolute' position embeddings are supported"
            )
        for flag in ("is_decoder", "add_cross_attention"):
            if config.get(flag):
                problems.append(f"{flag}=True: only bidirectional encoders are supported")
        eps = config.get("layer_norm_eps", 1e-12)
        if eps > MAX_LAYER_NORM_EPS:
            problems.append(f"layer_norm_eps={eps}: our encoder uses 1e-12")
        embedding_size = config.get("embedding_size")
        if embedding_size is not None and embedding_size != config.get("hidden_size", 768):
            problems.append(f"embedding_size={embedding_size} differs from hidden_size (factorised embeddings)")
    else:
        activation = config.get("activation", "gelu")
        if activation not in EXACT_GELU:
            problems.append(f"activation={activation!r}: only the exact GELU ('gelu') is supported")
    if task == "masked_lm" and config.get("tie_word_embeddings") is False:
        problems.append("tie_word_embeddings=False: our masked-LM head always ties the output projection")
    if problems:
        raise ValueError(
            f"Unsupported configuration in {str(Path(folder) / 'config.json')!r}: " + "; ".join(problems) + "."
        )


def is_regression(config):
    """A *ForSequenceClassification config of a regressor: `problem_type="regression"`, or one
    label and no problem type (transformers then trains it with MSE too)."""
    problem_type = config.get("problem_type")
    return problem_type == "regression" or (problem_type is None and num_labels(config) == 1)


def num_labels(config):
    """Labels of a classifier config: `id2label` wins, then `num_labels`, then HF's default 2."""
    if config.get("id2label"):
        return len(config["id2label"])
    return int(config.get("num_labels", 2))


def backbone_kwargs(arch, config):
    """Our backbone's constructor arguments from a HF config (HF's defaults for absent keys)."""
    if arch.model_type == "bert":
        return dict(
            vocabulary_size=config.get("vocab_size", 30522),
            num_layers=config.get("num_hidden_layers", 12),
            num_heads=config.get("num_attention_heads", 12),
            hidden_dim=config.get("hidden_size", 768),
            intermediate_dim=config.get("intermediate_size", 3072),
            dropout=config.get("hidden_dropout_prob", 0.1),
            max_sequence_length=config.get("max_position_embeddings", 512),
            num_segments=config.get("type_vocab_size", 2),
        )
    return dict(
        vocabulary_size=config.get("vocab_size", 30522),
        num_layers=config.get("n_layers", 6),
        num_heads=config.get("n_heads", 12),
        hidden_dim=config.get("dim", 768),
        intermediate_dim=config.get("hidden_dim", 3072),
        dropout=config.get("dropout", 0.1),
        max_sequence_length=config.get("max_position_embeddings", 512),
    )


def head_dropout(arch, config, task):
    """The dropout HF applies before the head of `task`."""
    if arch.model_type == "bert":
        if task == "question_answering":
            return 0.0  # BertForQuestionAnswering has no dropout before qa_outputs
        dropout = config.get("classifier_dropout")
        return config.get("hidden_dropout_prob", 0.1) if dropout is None else dropout
    if task in SEQUENCE_TASKS:
        return config.get("seq_classif_dropout", 0.2)
    if task == "question_answering":
        return config.get("qa_dropout", 0.1)
    return config.get("dropout", 0.1)


def build_model(arch, config, task, num_classes, dtype):
    from tfdistil import models

    backbone_class = models.BertBackbone if arch.model_type == "bert" else models.DistilBertBackbone
    backbone = backbone_class(**backbone_kwargs(arch, config), dtype=dtype)
    if task == "backbone":
        return backbone
    dropout = head_dropout(arch, config, task)
    if task == "text_classification":
        return models.TextClassifier(backbone, num_classes, dropout=dropout)
    if task == "text_regression":
        return models.TextRegressor(backbone, dropout=dropout)
    if task == "token_classification":
        return models.TokenClassifier(backbone, num_classes, dropout=dropout)
    if task == "question_answering":
        return models.SpanQA(backbone, dropout=dropout)
    if task == "text_embedding":
        return models.TextEmbedder(backbone)
    return models.MaskedLM(backbone)


def weight_rows(model, arch, task, prefixed):
    """(our variable, HF names, transpose, part) for every weight of `model` in the table.

    `prefixed`: backbone names under `bert.`/`distilbert.`, as in HF task models (a
    HF `BertModel` saves them bare). `part` is "backbone", "pooler" or "head".
    """
    backbone = model if task == "backbone" else model.backbone
    prefix = f"{arch.prefix}." if prefixed else ""
    rows = []
    parts = [("backbone", arch.rules("embeddings") + arch.rules("layer", backbone.num_layers))]
    if "pooler" in arch.table:
        parts.append(("pooler", arch.rules("pooler")))
    for part, rules in parts:
        for ours, hf, transpose in rules:
            rows.append((resolve_variable(backbone, ours), tuple(prefix + n for n in hf), transpose, part))
    if task != "backbone":
        for ours, hf, transpose in arch.rules(task):
            rows.append((resolve_variable(model, ours), hf, transpose, "head"))
    return rows


def resolve_variable(model, path):
    """`"transformer_layer_0.attention.qkv_kernel"` -> that Keras variable of `model`."""
    first, *rest = path.split(".")
    obj = model.get_layer(first)
    for attribute in rest:
        obj = getattr(obj, attribute)
    return obj


def hf_shapes(variable, count, transpose):
    """Shapes of the `count` HF tensors that make `variable` (split on its last axis)."""
    shape = tuple(variable.shape)
    part = shape[:-1] + (shape[-1] // count,)
    return [part[::-1] if transpose else part] * count


def load_weights(model, arch, tensors, task, checkpoint_task, new_head, strict, source):
    """Assign the checkpoint's tensors (full HF names, normalised) to `model`.

    Collects every missing, unexpected and mis-shaped tensor before raising once;
    `source` names the checkpoint in the message.
    """
    tensors = dict(tensors)
    rows = weight_rows(model, arch, task, prefixed=True)  # `normalize_names` prefixed them all

    if new_head and checkpoint_task != "backbone":
        # The checkpoint's own head is replaced by a new one: drop its tensors.
        for name in _head_names(arch, checkpoint_task):
            tensors.pop(name, None)
    problems = _resolve_tied(arch, tensors) if task == "masked_lm" else []

    missing, misshaped, assignments = [], [], []
    for variable, names, transpose, part in rows:
        absent = [n for n in names if n not in tensors]
        if absent:
            optional = (
                (part == "pooler" and (not arch.has_pooler(checkpoint_task) or task in WEIGHTLESS_TASKS))
                or (part == "head" and new_head)
            )
            if not optional:
                missing.extend(absent)
            for n in names:
                tensors.pop(n, None)
            continue
        expected = hf_shapes(variable, len(names), transpose)
        arrays = [tensors.pop(n) for n in names]
        bad = [(n, a.shape, e) for n, a, e in zip(names, arrays, expected) if tuple(a.shape) != tuple(e)]
        if bad:
            misshaped.extend(bad)
            continue
        if transpose:
            arrays = [a.T for a in arrays]
        value = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=-1)
        assignments.append((variable, value))
    unexpected = sorted(n for n in tensors if not arch.is_ignored(n))

    if problems or misshaped or (strict and (missing or unexpected)):
        raise ValueError(_mismatch_message(source, missing, unexpected, misshaped, problems))
    if missing or unexpected:
        warnings.warn(
            _mismatch_message(source, missing, unexpected, [], [], strict=False),
            stacklevel=3,
        )
    for variable, value in assignments:
        variable.assign(keras.ops.cast(value, variable.dtype))


def _head_names(arch, task):
    names = {n for _, hf, _ in arch.rules(task) for n in hf}
    if task == "masked_lm":
        names |= set(arch.tied)
    return names


def _resolve_tied(arch, tensors):
    """Fold tied copies into the tensor they repeat; a copy that differs cannot be loaded
    into our (always tied) masked-LM head."""
    problems = []
    for alias, target in arch.tied.items():
        if alias not in tensors:
            continue
        copy = tensors.pop(alias)
        if target not in tensors:
            tensors[target] = copy
        elif tensors[target].shape != copy.shape or not np.array_equal(tensors[target], copy):
            problems.append(
                f"{alias} differs from {target}: the checkpoint's output projection is not tied to the "
                "word embeddings, and tfdistil's MaskedLM always ties them"
            )
    return problems


def _mismatch_message(source, missing, unexpected, misshaped, problems, strict=True):
    lines = [f"The weights in {source} do not match the model:"]
    if missing:
        lines.append(f"  missing weights ({len(missing)}): " + ", ".join(missing))
    if unexpected:
        lines.append(f"  unexpected weights ({len(unexpected)}): " + ", ".join(unexpected))
    if misshaped:
        lines.append(
            f"  mis-shaped weights ({len(misshaped)}): "
            + ", ".join(f"{n} has shape {tuple(s)}, expected {tuple(e)}" for n, s, e in misshaped)
        )
    for problem in problems:
        lines.append(f"  {problem}")
    if strict:
        if missing or unexpected:
            lines.append(
                "Pass strict=False to keep missing weights at their initial values and skip unexpected "
                "ones; pass task=... (and num_classes=...) to put a new head on the checkpoint's backbone."
            )
    else:
        lines.append("strict=False: missing weights keep their initial values, unexpected ones are skipped.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- sentence-transformers

# The sentence-transformers modules a mean-pooling embedder is made of.
ST_TRANSFORMER = "sentence_transformers.models.Transformer"
ST_POOLING = "sentence_transformers.models.Pooling"
ST_NORMALIZE = "sentence_transformers.models.Normalize"
ST_POOLING_MODES = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
                    "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                    "pooling_mode_lasttoken")


def sentence_transformers_settings(folder):
    """{"normalize", "max_seq_length"} of a sentence-transformers folder (`modules.json`), or None
    for a plain Hugging Face folder (then mean pooling is assumed). ValueError for what a
    `TextEmbedder` (mean pooling, then L2 normalisation) cannot reproduce: another pooling mode,
    or modules besides Transformer, Pooling and Normalize (a Dense projection, ...)."""
    folder = Path(folder)
    modules = _read_json(folder / "modules.json")
    if not modules:
        return None
    kinds = [module.get("type") for module in modules]
    others = [kind for kind in kinds if kind not in (ST_TRANSFORMER, ST_POOLING, ST_NORMALIZE)]
    if others:
        raise ValueError(
            f"{str(folder / 'modules.json')!r} lists modules a tfdistil TextEmbedder does not have: "
            f"{', '.join(map(str, others))}; it supports Transformer, Pooling (mean) and Normalize."
        )
    transformer = next((m for m in modules if m.get("type") == ST_TRANSFORMER), None)
    if transformer is not None and transformer.get("path", "") not in ("", "."):
        raise ValueError(
            f"The transformer of the sentence-transformers model in {str(folder)!r} is in the subfolder "
            f"{transformer['path']!r}: pass that folder to load_hf."
        )
    pooling = next((m for m in modules if m.get("type") == ST_POOLING), None)
    if pooling is None:
        raise ValueError(f"{str(folder / 'modules.json')!r} lists no Pooling module; a TextEmbedder mean-pools.")
    pooling_config = _read_json(folder / pooling.get("path", "") / "config.json")
    mode = pooling_config.get("pooling_mode")  # newer sentence-transformers write the mode by name too
    modes = [key for key in ST_POOLING_MODES if pooling_config.get(key)]
    if modes != ["pooling_mode_mean_tokens"] or mode not in (None, "mean"):
        named = mode or ", ".join(m[len("pooling_mode_"):] for m in modes) or "none"
        raise ValueError(
            f"The sentence-transformers model in {str(folder)!r} pools with {named} "
            f"({str(folder / pooling.get('path', '') / 'config.json')!r}); a tfdistil TextEmbedder supports "
            "mean pooling (pooling_mode_mean_tokens) only."
        )
    settings = _read_json(folder / "sentence_bert_config.json")
    return {"normalize": ST_NORMALIZE in kinds, "max_seq_length": settings.get("max_seq_length")}


def embedding_tokenizer_settings(folder, config):
    """`WordPieceTokenizer` overrides of a "text_embedding" load: sentence-transformers'
    `max_seq_length` (when the folder has one) and padding to each batch's longest text."""
    settings = sentence_transformers_settings(folder)
    if settings is not None and not settings["normalize"]:
        logger.info("%s has no Normalize module; the TextEmbedder's embeddings are L2-normalised anyway "
                    "(cosine similarities are the same).", folder)
    overrides = {"pad_to_sequence_length": False}
    if settings is not None and settings["max_seq_length"]:
        overrides["sequence_length"] = min(int(settings["max_seq_length"]), config.get("max_position_embeddings", 512))
    return overrides


# --------------------------------------------------------------------------- tokenizer


def load_tokenizer(folder, config, overrides=None):
    """A `WordPieceTokenizer` from the folder's vocabulary, or None if it has none."""
    folder = Path(folder)
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    special_map = _read_json(folder / "special_tokens_map.json")
    normalizer = {}
    if (folder / "vocab.txt").is_file():
        vocabulary = str(folder / "vocab.txt")
    else:
        vocabulary, normalizer = _vocabulary_from_tokenizer_json(folder / "tokenizer.json")
        if vocabulary is None:
            return None

    lowercase = tokenizer_config.get("do_lower_case", normalizer.get("lowercase"))
    if lowercase is None:
        lowercase = True  # BertTokenizer's default
    strip_accents = tokenizer_config.get("strip_accents", normalizer.get("strip_accents"))
    limits = [512, config.get("max_position_embeddings", 512)]
    model_max_length = tokenizer_config.get("model_max_length")
    if isinstance(model_max_length, (int, float)) and model_max_length >= 3:
        limits.append(int(min(model_max_length, 1 << 30)))
    kwargs = dict(
        vocabulary=vocabulary,
        lowercase=bool(lowercase),
        strip_accents=strip_accents,
        sequence_length=min(limits),
        pad_to_sequence_length=True,
    )
    for key in SPECIAL_TOKENS:
        token = tokenizer_config.get(key, special_map.get(key))
        if isinstance(token, dict):  # serialized AddedToken
            token = token.get("content")
        if isinstance(token, str):
            kwargs[key] = token
    kwargs.update(overrides or {})

    from tfdistil.text import WordPieceTokenizer

    return WordPieceTokenizer(**kwargs)


def _read_json(path):
    if not Path(path).is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _vocabulary_from_tokenizer_json(path):
    """(vocabulary list, BertNormalizer options) of a WordPiece `tokenizer.json`, or (None, {})."""
    spec = _read_json(path)
    model = spec.get("model") or {}
    if model.get("type") != "WordPiece" or model.get("continuing_subword_prefix", "##") != "##":
        return None, {}
    vocab = model["vocab"]
    normalizer = spec.get("normalizer") or {}
    if normalizer.get("type") != "BertNormalizer":
        normalizer = {}
    return sorted(vocab, key=vocab.get), normalizer


# --------------------------------------------------------------------------- saving


def save_hf(model, tokenizer, path, label_names=None):
    """Save a tfdistil model (and tokenizer) as a Hugging Face folder for `transformers`.

    Writes `config.json` (the HF class in `architectures`, `model_type`, sizes,
    `id2label`/`label2id` for classifiers), `model.safetensors` (PyTorch layout:
    Linear weights transposed back, Q/K/V split, HF names; tied output projections
    left out, as transformers v5 saves them) and, with a tokenizer, `vocab.txt`,
    `tokenizer_config.json` and `special_tokens_map.json`. The folder loads with
    `transformers.AutoModel*.from_pretrained(path)` / `AutoTokenizer.from_pretrained(path)`
    and with `load_hf(path)`.

    Args:
        model: a `BertBackbone`, `DistilBertBackbone`, or a `TextClassifier`, `TextRegressor`
            (saved as *ForSequenceClassification with `num_labels=1`, `problem_type="regression"`),
            `TokenClassifier`, `SpanQA` or `MaskedLM` on one of them.
        tokenizer: a `tfdistil.text.WordPieceTokenizer`, or None to write no tokenizer files.
        path: output folder (created if needed; existing files are overwritten).
        label_names: for classifiers, the name of each class (`id2label`); default
            "LABEL_0", "LABEL_1", ...

    Returns:
        The folder, as a `Path`.
    """
    arch, task = describe_model(model)
    backbone = model if task == "backbone" else model.backbone
    if label_names is not None:
        if task not in LABELLED_TASKS:
            raise ValueError(f"`label_names` is for classifiers; got a {type(model).__name__}.")
        label_names = [str(name) for name in label_names]
        if len(label_names) != model.num_classes:
            raise ValueError(
                f"`label_names` has {len(label_names)} names for a model of {model.num_classes} classes."
            )
    vocabulary = None
    if tokenizer is not None:
        vocabulary = tokenizer.get_vocabulary()
        if len(vocabulary) > backbone.vocabulary_size:
            raise ValueError(
                f"The tokenizer has {len(vocabulary)} tokens but the model embeds only "
                f"{backbone.vocabulary_size}."
            )

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    config = hf_config(model, arch, task, backbone, label_names, tokenizer)
    with open(folder / "config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(hf_tensors(model, arch, task), folder / "model.safetensors")
    if tokenizer is not None:
        save_tokenizer(tokenizer, arch, backbone, folder)
    return folder


def describe_model(model):
    """(Architecture, task) of one of our models."""
    from tfdistil import models

    kinds = [
        (models.TextClassifier, "text_classification"),
        (models.TextRegressor, "text_regression"),
        (models.TokenClassifier, "token_classification"),
        (models.SpanQA, "question_answering"),
        (models.MaskedLM, "masked_lm"),
        (models.Backbone, "backbone"),
    ]
    for cls, task in kinds:
        if isinstance(model, cls):
            backbone = model if task == "backbone" else model.backbone
            if backbone.architecture not in ARCHITECTURES:
                break
            return ARCHITECTURES[backbone.architecture], task
    raise ValueError(
        "save_hf saves a BertBackbone or DistilBertBackbone, or a TextClassifier, TextRegressor, "
        f"TokenClassifier, SpanQA or MaskedLM on one of them; got {type(model).__name__}."
    )


def hf_tensors(model, arch, task):
    """{HF name: float32 numpy array} in the HF class's layout."""
    tensors = {}
    for variable, names, transpose, part in weight_rows(model, arch, task, prefixed=task != "backbone"):
        if part == "pooler" and not arch.has_pooler(task):
            continue  # e.g. BertForTokenClassification has no pooler
        value = keras.ops.convert_to_numpy(variable).astype("float32")
        for name, array in zip(names, np.split(value, len(names), axis=-1)):
            tensors[name] = array.T if transpose else array
    return tensors


def hf_config(model, arch, task, backbone, label_names, tokenizer):
    block = backbone.transformer_layers[0]
    pad_token_id = tokenizer.pad_token_id if tokenizer is not None else 0
    if arch.model_type == "bert":
        config = {
            "vocab_size": backbone.vocabulary_size,
            "hidden_size": backbone.hidden_dim,
            "num_hidden_layers": backbone.num_layers,
            "num_attention_heads": backbone.num_heads,
            "intermediate_size": backbone.intermediate_dim,
            "hidden_act": "gelu",
            "hidden_dropout_prob": backbone.dropout,
            "attention_probs_dropout_prob": backbone.dropout,
            "max_position_embeddings": backbone.max_sequence_length,
            "type_vocab_size": backbone.num_segments,
            "layer_norm_eps": block.layer_norm_epsilon,
        }
        if task in LABELLED_TASKS or task == "text_regression":
            config["classifier_dropout"] = model.dropout
    else:
        config = {
            "vocab_size": backbone.vocabulary_size,
            "dim": backbone.hidden_dim,
            "n_layers": backbone.num_layers,
            "n_heads": backbone.num_heads,
            "hidden_dim": backbone.intermediate_dim,
            "activation": "gelu",
            "dropout": backbone.dropout,
            "attention_dropout": backbone.dropout,
            "max_position_embeddings": backbone.max_sequence_length,
            "sinusoidal_pos_embds": False,
        }
        if task in SEQUENCE_TASKS:
            config["seq_classif_dropout"] = model.dropout
        elif task == "question_answering":
            config["qa_dropout"] = model.dropout
    config.update(
        architectures=[arch.hf_classes[task]],
        model_type=arch.model_type,
        initializer_range=0.02,
        pad_token_id=pad_token_id,
        tie_word_embeddings=True,
        dtype="float32",
    )
    if task in LABELLED_TASKS:
        names = label_names or [f"LABEL_{i}" for i in range(model.num_classes)]
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
    elif task == "text_regression":
        # One output; transformers trains it with MSE and `load_hf` reads it back as a regressor.
        config.update(id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0}, problem_type="regression")
    return config


def save_tokenizer(tokenizer, arch, backbone, folder):
    folder = Path(folder)
    with open(folder / "vocab.txt", "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(f"{token}\n" for token in tokenizer.get_vocabulary()))
    special = {key: getattr(tokenizer, key) for key in SPECIAL_TOKENS}
    tokenizer_config = dict(
        special,
        tokenizer_class="BertTokenizer" if arch.model_type == "bert" else "DistilBertTokenizer",
        do_lower_case=tokenizer.lowercase,
        strip_accents=tokenizer.strip_accents,
        tokenize_chinese_chars=True,
        do_basic_tokenize=True,
        model_max_length=backbone.max_sequence_length,
    )
    for name, content in (("tokenizer_config.json", tokenizer_config), ("special_tokens_map.json", special)):
        with open(folder / name, "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2, sort_keys=True)
            f.write("\n")
