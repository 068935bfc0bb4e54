"""Our weight names <-> Hugging Face tensor names: one table per architecture.

The only place that knows Hugging Face's names, so a new checkpoint family is a new table.
A row is `(our weight, HF tensor name(s), transpose)`:

* our weight: an attribute path from a layer of our model (`transformer_layer_{i}.attention.
  qkv_kernel`, `{i}` the encoder layer); backbone rows start at a backbone layer, head rows at
  a layer of the task model.
* HF name(s): backbone rows relative to the base model (no `bert.` prefix), head rows top-level
  names of the HF task model; several names are concatenated on our last axis (fused Q, K, V).
* transpose: PyTorch `nn.Linear.weight` is (out, in), a Keras `Dense` kernel (in, out).
"""
import dataclasses
import re

TASKS = ("backbone", "text_classification", "text_regression", "token_classification", "question_answering",
         "masked_lm", "text_embedding")
# Tasks with no weights of their own (mean pooling): any checkpoint's backbone serves them, and
# `save_hf` has no HF class for them.
WEIGHTLESS_TASKS = ("text_embedding",)


def _dense(ours, hf):
    """A Keras Dense <-> a PyTorch Linear."""
    return [(f"{ours}.kernel", f"{hf}.weight", True), (f"{ours}.bias", f"{hf}.bias", False)]


def _layer_norm(ours, hf):
    return [(f"{ours}.gamma", f"{hf}.weight", False), (f"{ours}.beta", f"{hf}.bias", False)]


def _embedding(ours, hf):
    return [(f"{ours}.embeddings", f"{hf}.weight", False)]


def _fused_attention(ours, hf, q, k, v, out):
    """Our fused QKV projection <-> three Linears, and the output projection."""
    names = tuple(f"{hf}.{name}" for name in (q, k, v))
    return [
        (f"{ours}.qkv_kernel", tuple(f"{n}.weight" for n in names), True),
        (f"{ours}.qkv_bias", tuple(f"{n}.bias" for n in names), False),
        (f"{ours}.output_kernel", f"{hf}.{out}.weight", True),
        (f"{ours}.output_bias", f"{hf}.{out}.bias", False),
    ]


BERT_TABLE = {
    "embeddings": [
        *_embedding("token_embedding", "embeddings.word_embeddings"),
        *_embedding("position_embedding", "embeddings.position_embeddings"),
        *_embedding("segment_embedding", "embeddings.token_type_embeddings"),
        *_layer_norm("embeddings_layer_norm", "embeddings.LayerNorm"),
    ],
    "layer": [
        *_fused_attention(
            "transformer_layer_{i}.attention", "encoder.layer.{i}.attention",
            "self.query", "self.key", "self.value", "output.dense",
        ),
        *_layer_norm("transformer_layer_{i}.attention_layer_norm", "encoder.layer.{i}.attention.output.LayerNorm"),
        *_dense("transformer_layer_{i}.feed_forward.intermediate_dense", "encoder.layer.{i}.intermediate.dense"),
        *_dense("transformer_layer_{i}.feed_forward.output_dense", "encoder.layer.{i}.output.dense"),
        *_layer_norm("transformer_layer_{i}.output_layer_norm", "encoder.layer.{i}.output.LayerNorm"),
    ],
    "pooler": _dense("pooler.dense", "pooler.dense"),
    "text_classification": _dense("classifier", "classifier"),
    "text_regression": _dense("classifier", "classifier"),  # the same head with num_labels=1
    "token_classification": _dense("classifier", "classifier"),
    "question_answering": _dense("qa_outputs", "qa_outputs"),
    "masked_lm": [
        *_dense("mlm_head.dense", "cls.predictions.transform.dense"),
        *_layer_norm("mlm_head.layer_norm", "cls.predictions.transform.LayerNorm"),
        ("mlm_head.output_bias", "cls.predictions.bias", False),
    ],
}

DISTILBERT_TABLE = {
    "embeddings": [
        *_embedding("token_embedding", "embeddings.word_embeddings"),
        *_embedding("position_embedding", "embeddings.position_embeddings"),
        *_layer_norm("embeddings_layer_norm", "embeddings.LayerNorm"),
    ],
    "layer": [
        *_fused_attention(
            "transformer_layer_{i}.attention", "transformer.layer.{i}.attention",
            "q_lin", "k_lin", "v_lin", "out_lin",
        ),
        *_layer_norm("transformer_layer_{i}.attention_layer_norm", "transformer.layer.{i}.sa_layer_norm"),
        *_dense("transformer_layer_{i}.feed_forward.intermediate_dense", "transformer.layer.{i}.ffn.lin1"),
        *_dense("transformer_layer_{i}.feed_forward.output_dense", "transformer.layer.{i}.ffn.lin2"),
        *_layer_norm("transformer_layer_{i}.output_layer_norm", "transformer.layer.{i}.output_layer_norm"),
    ],
    "text_classification": [*_dense("pre_classifier", "pre_classifier"), *_dense("classifier", "classifier")],
    "text_regression": [*_dense("pre_classifier", "pre_classifier"), *_dense("classifier", "classifier")],
    "token_classification": _dense("classifier", "classifier"),
    "question_answering": _dense("qa_outputs", "qa_outputs"),
    "masked_lm": [
        *_dense("mlm_head.dense", "vocab_transform"),
        *_layer_norm("mlm_head.layer_norm", "vocab_layer_norm"),
        ("mlm_head.output_bias", "vocab_projector.bias", False),
    ],
}


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What differs between BERT and DistilBERT checkpoints, besides the table."""

    model_type: str  # config.json `model_type`
    prefix: str  # HF `base_model_prefix`: task models keep the backbone under it
    table: dict
    hf_classes: dict  # task -> HF class name (config.json `architectures`)
    # Top-level modules of the HF base model: a key starting with one of them is a
    # backbone key saved without the prefix (a bare `BertModel` checkpoint).
    base_modules: tuple
    # HF tasks whose base model has BERT's pooler (`add_pooling_layer=True`).
    pooled_tasks: tuple = ()
    # Tied weights: alias -> tensor it repeats. transformers v5 no longer writes the
    # alias; older checkpoints hold both copies.
    tied: dict = dataclasses.field(default_factory=dict)
    # Checkpoint tensors that are not weights of any model we build (buffers, BERT's
    # next-sentence head that pre-training checkpoints carry): skipped quietly.
    ignored: str = ""

    def rules(self, part, num_layers=0):
        """Table rows of `part` ("embeddings", "layer", "pooler" or a task), `{i}` expanded.

        Returns a list of (our weight, tuple of HF names, transpose).
        """
        rows = self.table.get(part, [])
        if part == "layer":
            return [_expand(row, i) for i in range(num_layers) for row in rows]
        return [_expand(row) for row in rows]

    def has_pooler(self, task):
        return task in self.pooled_tasks

    def is_ignored(self, name):
        return bool(self.ignored) and re.search(self.ignored, name) is not None


def _expand(row, i=None):
    ours, hf, transpose = row
    hf = (hf,) if isinstance(hf, str) else tuple(hf)
    if i is not None:
        ours = ours.format(i=i)
        hf = tuple(name.format(i=i) for name in hf)
    return ours, hf, transpose


BERT = Architecture(
    model_type="bert",
    prefix="bert",
    table=BERT_TABLE,
    hf_classes={
        "backbone": "BertModel",
        "text_classification": "BertForSequenceClassification",
        # num_labels=1, problem_type="regression" (`tfdistil.convert.hf.checkpoint_task`)
        "text_regression": "BertForSequenceClassification",
        "token_classification": "BertForTokenClassification",
        "question_answering": "BertForQuestionAnswering",
        "masked_lm": "BertForMaskedLM",
    },
    base_modules=("embeddings.", "encoder.", "pooler."),
    pooled_tasks=("backbone", "text_classification", "text_regression"),
    tied={
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    },
    ignored=r"(^|\.)embeddings\.(position_ids|token_type_ids)$|^cls\.seq_relationship\.",
)

DISTILBERT = Architecture(
    model_type="distilbert",
    prefix="distilbert",
    table=DISTILBERT_TABLE,
    hf_classes={
        "backbone": "DistilBertModel",
        "text_classification": "DistilBertForSequenceClassification",
        "text_regression": "DistilBertForSequenceClassification",
        "token_classification": "DistilBertForTokenClassification",
        "question_answering": "DistilBertForQuestionAnswering",
        "masked_lm": "DistilBertForMaskedLM",
    },
    base_modules=("embeddings.", "transformer."),
    tied={"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"},
    ignored=r"(^|\.)embeddings\.position_ids$",
)

ARCHITECTURES = {arch.model_type: arch for arch in (BERT, DISTILBERT)}

# HF class name -> (architecture, task). A class listed for two tasks (*ForSequenceClassification:
# classification and regression) names the first; its config tells regression apart.
def _hf_classes():
    classes = {}
    for arch in ARCHITECTURES.values():
        for task, hf_class in arch.hf_classes.items():
            classes.setdefault(hf_class, (arch, task))
    return classes


HF_CLASSES = _hf_classes()
# Classes we read but never write. BERT's pre-training checkpoints (the original
# Google conversions) are a masked LM plus the next-sentence head, which is skipped.
LOAD_ONLY_HF_CLASSES = {"BertForPreTraining": (BERT, "masked_lm")}
