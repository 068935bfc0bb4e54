"""The model card (`README.md`) written into each exported SavedModel version."""
import datetime
import json

import keras
import tensorflow as tf

_SIZES = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_sequence_length")


def write_model_card(folder, model, tokenizer, task, label_names, version, model_card, pair, weight_casts,
                     rest_example):
    """Write `folder/README.md`: what the model is, its labels, tokenizer and how to call it.

    Args:
        folder: the version folder being written.
        model, tokenizer: what is exported.
        task: the task kind (e.g. "text_classification").
        label_names: the class names, or None (span QA).
        version: the version number.
        model_card: the caller's extra facts (dict or None); "metrics" gets its own section.
        pair: a text classifier of sentence pairs.
        weight_casts: the export's `WeightCasts` (which projections are stored in another dtype).
        rest_example: {"request", "response"} of `serving_default` in TF Serving's REST format.
    """
    backbone = model.backbone
    config = backbone.get_config()
    sizes = {key: config[key] for key in _SIZES if key in config}
    lines = [
        f"# {model.name} (version {version})",
        "",
        f"- Task: {task}" + (" (sentence pairs)" if pair else ""),
        f"- Model: {type(model).__name__} on a {type(backbone).__name__}",
        f"- Parameters: {model.count_params():,}",
        f"- Exported: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
        f" with TensorFlow {tf.__version__}, Keras {keras.__version__}",
        f"- Dtype policy: {model.dtype_policy.name}"
        + (f"; the {len(weight_casts)} projection kernels and biases are stored in "
           f"{weight_casts.variables[0].dtype.name}, the dtype every call computes them in" if len(weight_casts) else ""),
        "",
        "## Sizes",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in sizes.items()]
    if label_names is not None:
        lines += ["", "## Labels", ""]
        lines += [f"- {i}: {name}" for i, name in enumerate(label_names)]
    lines += [
        "",
        "## Tokenizer (in the graph)",
        "",
        "- WordPiece, vocabulary of "
        f"{tokenizer.vocabulary_size()} tokens (inside saved_model.pb)",
        f"- lowercase: {tokenizer.lowercase}, strip_accents: {tokenizer.strip_accents}",
        f"- sequence_length: {tokenizer.sequence_length} (longer inputs are truncated)",
        f"- special tokens: {tokenizer.cls_token} {tokenizer.sep_token} {tokenizer.pad_token} "
        f"{tokenizer.unk_token} {tokenizer.mask_token}",
    ]
    if model_card:
        extra = dict(model_card)
        metrics = extra.pop("metrics", None)
        if metrics:
            lines += ["", "## Metrics", ""]
            lines += [f"- {key}: {value}" for key, value in metrics.items()]
        if extra:
            lines += ["", "## Notes", ""]
            lines += [f"- {key}: {value}" for key, value in extra.items()]
    lines += [
        "",
        "## Serving",
        "",
        "Signatures: `serving_default` (raw text), `logits` (token ids), `tokenize`.",
        "A Python client must `import tensorflow_text` before `tf.saved_model.load`.",
        "",
        "REST request (`POST /v1/models/<name>:predict`):",
        "",
        "```json",
        json.dumps(rest_example["request"], ensure_ascii=False),
        "```",
        "",
        "Response (shape):",
        "",
        "```json",
        json.dumps(rest_example["response"], ensure_ascii=False),
        "```",
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")
