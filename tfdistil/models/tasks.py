"""Task models: a backbone plus a head, returning float32 logits."""
import keras
from keras import ops

from tfdistil.layers.feed_forward import gelu_exact
from tfdistil.models.backbone import Backbone, InputSelectingModel, bert_initializer, select_inputs


def _require_backbone(backbone):
    if not isinstance(backbone, Backbone):
        raise ValueError(
            f"`backbone` must be a tfdistil BertBackbone or DistilBertBackbone, got {type(backbone).__name__}."
        )


class Task(keras.Model):
    """Shared machinery: inputs are the backbone's, the head is `_head(layers, outputs)`.

    Subclasses build head layers in `__init__`, then call `_init_graph`.
    """

    # Whether the head reads only the first ([CLS]) position: then the graph runs the
    # backbone's `first_token_model`, which skips the rest of the last block.
    first_token_head = False

    def _init_graph(self, backbone, head_layers, **kwargs):
        if not isinstance(backbone, Backbone):
            raise ValueError(
                f"`backbone` must be a tfdistil BertBackbone or DistilBertBackbone, got {type(backbone).__name__}."
            )
        inputs = backbone.make_inputs()
        encoder = backbone.first_token_model() if self.first_token_head else backbone
        outputs = self._head(head_layers, self._head_inputs(encoder(inputs), inputs), backbone)
        super(Task, self).__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.__dict__["_encoder"] = encoder
        self.backbone = backbone
        # The task runs under its backbone's policy (the Distiller and compile() read it).
        self.dtype_policy = backbone.dtype_policy
        self.__dict__["_head_layers"] = head_layers
        self.__dict__["_intermediate_models"] = {}

    @property
    def layers(self):
        """The graph's layers, the backbone standing in for its `first_token_model` (which only
        shares its weights): Keras saves a functional model by walking `layers`, so every task
        keeps the layout of files saved before the first-token path existed."""
        layers = super().layers
        encoder = self.__dict__.get("_encoder")  # set once the graph is built
        return [self.backbone if layer is encoder else layer for layer in layers]

    @property
    def head_layers(self):
        """The layers this task adds to its backbone, by name."""
        return dict(self._head_layers)

    @staticmethod
    def _head(layers, backbone_outputs, backbone):  # pragma: no cover - subclasses
        raise NotImplementedError

    def __call__(self, inputs, *args, **kwargs):
        inputs = select_inputs(
            inputs, self.backbone.input_names(), self.backbone.max_sequence_length, self.name
        )
        return super().__call__(inputs, *args, **kwargs)

    def intermediate_model(self, output_hidden_states=True, output_attention_scores=True):
        """A keras.Model sharing these weights that returns a dict: `logits` (this model's
        output) plus the backbone's `hidden_states` and `attention_scores`."""
        key = (output_hidden_states, output_attention_scores)
        if key not in self._intermediate_models:
            inputs = self.backbone.make_inputs()
            full = self.backbone.intermediate_model(output_hidden_states, output_attention_scores)(inputs)
            outputs = {"logits": self._head(self._head_layers, self._head_inputs(full, inputs), self.backbone)}
            for name in ("hidden_states", "attention_scores"):
                if name in full:
                    outputs[name] = full[name]
            self._intermediate_models[key] = InputSelectingModel(
                inputs, outputs, self.backbone.max_sequence_length, name=f"{self.name}_intermediate"
            )
        return self._intermediate_models[key]

    def _head_inputs(self, backbone_outputs, inputs):
        """What the head reads of the backbone's outputs (an embedder also needs the padding mask)."""
        return backbone_outputs

    def _base_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def _float32_logits(name):
    # Logits leave the model in float32 whatever the policy: losses and softmax need it.
    return keras.layers.Activation("linear", dtype="float32", name=name)


@keras.saving.register_keras_serializable(package="tfdistil")
class TextClassifier(Task):
    """Sentence (or sentence-pair) classification.

    BERT: dropout + Dense(num_classes) on the pooled [CLS] output (BertForSequenceClassification).
    DistilBERT: Dense(hidden, relu) "pre_classifier" on [CLS], dropout, Dense(num_classes)
    (DistilBertForSequenceClassification).

    Args:
        backbone: a `BertBackbone` or `DistilBertBackbone`.
        num_classes: number of labels.
        dropout: dropout before the classifier.
    Returns: logits (batch, num_classes), float32.

    The head reads [CLS] alone, so the last block computes only that position
    (`Backbone.first_token_model`); `intermediate_model` runs the whole last block, for the
    hidden states distillation compares.
    """

    first_token_head = True

    def __init__(self, backbone, num_classes, dropout=0.1, **kwargs):
        _require_backbone(backbone)
        self._init_graph(backbone, _sequence_head_layers(backbone, num_classes, dropout), **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    @staticmethod
    def _head(layers, outputs, backbone):
        return _sequence_head(layers, outputs)

    def get_config(self):
        return dict(self._base_config(), num_classes=self.num_classes, dropout=self.dropout)


def _sequence_head_layers(backbone, units, dropout):
    """The layers of HF's *ForSequenceClassification head with `units` outputs: BERT's dropout +
    Dense on the pooled output; DistilBERT's Dense(hidden, relu) "pre_classifier" on [CLS] first."""
    dtype = backbone.dtype_policy
    layers = {
        "classifier_dropout": keras.layers.Dropout(dropout, dtype=dtype, name="classifier_dropout"),
        "classifier": keras.layers.Dense(units, kernel_initializer=bert_initializer(), dtype=dtype, name="classifier"),
        "logits": _float32_logits("logits"),
    }
    if "pooled_output" not in backbone.output:
        layers["pre_classifier"] = keras.layers.Dense(
            backbone.hidden_dim, activation="relu", kernel_initializer=bert_initializer(), dtype=dtype, name="pre_classifier"
        )
    return layers


def _sequence_head(layers, outputs):
    if "pre_classifier" in layers:
        x = layers["pre_classifier"](outputs["sequence_output"][:, 0, :])
    else:
        x = outputs["pooled_output"]
    x = layers["classifier_dropout"](x)
    return layers["logits"](layers["classifier"](x))


@keras.saving.register_keras_serializable(package="tfdistil")
class TextRegressor(Task):
    """Sentence (or sentence-pair) regression, e.g. STS-B similarity: one score a text.

    The head of `TextClassifier` with one output (HF's *ForSequenceClassification with
    `num_labels=1`, `problem_type="regression"`): BERT's dropout + Dense(1) on the pooled
    output; DistilBERT's pre_classifier, dropout, Dense(1) on [CLS].

    Args:
        backbone: a `BertBackbone` or `DistilBertBackbone`.
        dropout: dropout before the output layer.
    Returns: scores (batch, 1), float32 (the last axis of size 1, as HF's logits, so that
    Keras' losses and metrics pair them with (batch,) targets example by example).
    """

    first_token_head = True
    num_classes = 1  # outputs of the head, as `TextClassifier.num_classes`

    def __init__(self, backbone, dropout=0.1, **kwargs):
        _require_backbone(backbone)
        self._init_graph(backbone, _sequence_head_layers(backbone, 1, dropout), **kwargs)
        self.dropout = dropout

    @staticmethod
    def _head(layers, outputs, backbone):
        return _sequence_head(layers, outputs)

    def get_config(self):
        return dict(self._base_config(), dropout=self.dropout)


@keras.saving.register_keras_serializable(package="tfdistil")
class TokenClassifier(Task):
    """Per-token classification (NER): dropout + Dense(num_classes) on every token.

    Returns: logits (batch, seq, num_classes), float32.
    """

    def __init__(self, backbone, num_classes, dropout=0.1, **kwargs):
        _require_backbone(backbone)
        dtype = backbone.dtype_policy
        layers = {
            "classifier_dropout": keras.layers.Dropout(dropout, dtype=dtype, name="classifier_dropout"),
            "classifier": keras.layers.Dense(
                num_classes, kernel_initializer=bert_initializer(), dtype=dtype, name="classifier"
            ),
            "logits": _float32_logits("logits"),
        }
        self._init_graph(backbone, layers, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    @staticmethod
    def _head(layers, outputs, backbone):
        x = layers["classifier_dropout"](outputs["sequence_output"])
        return layers["logits"](layers["classifier"](x))

    def get_config(self):
        return dict(self._base_config(), num_classes=self.num_classes, dropout=self.dropout)


@keras.saving.register_keras_serializable(package="tfdistil")
class SpanQA(Task):
    """Extractive question answering: Dense(2) on every token gives start and end logits.

    Returns: dict `start_logits`, `end_logits`, each (batch, seq), float32 (as
    BertForQuestionAnswering; mask padding before choosing a span).
    """

    def __init__(self, backbone, dropout=0.1, **kwargs):
        _require_backbone(backbone)
        dtype = backbone.dtype_policy
        layers = {
            "qa_dropout": keras.layers.Dropout(dropout, dtype=dtype, name="qa_dropout"),
            "qa_outputs": keras.layers.Dense(2, kernel_initializer=bert_initializer(), dtype=dtype, name="qa_outputs"),
            "logits": _float32_logits("logits"),
        }
        self._init_graph(backbone, layers, **kwargs)
        self.dropout = dropout

    @staticmethod
    def _head(layers, outputs, backbone):
        x = layers["qa_dropout"](outputs["sequence_output"])
        # (batch, seq, 2)
        logits = layers["logits"](layers["qa_outputs"](x))
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}

    def get_config(self):
        return dict(self._base_config(), dropout=self.dropout)


@keras.saving.register_keras_serializable(package="tfdistil")
class MaskedLMHead(keras.layers.Layer):
    """Dense(hidden, gelu) -> LayerNorm -> logits through the (tied) word embeddings + bias.

    The output projection is the token embedding matrix transposed (weight tying, as in
    BERT and DistilBERT): it halves the head's parameters and keeps input and output
    vocabularies in one space.
    """

    def __init__(self, vocabulary_size, layer_norm_epsilon=1e-12, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.__dict__["_embedding"] = None

    def tie(self, embedding_layer):
        # Kept outside Keras tracking: the embedding's weights belong to the backbone.
        self.__dict__["_embedding"] = embedding_layer

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        self.dense = keras.layers.Dense(
            hidden_dim, activation=gelu_exact, kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy, name="dense",
        )
        self.dense.build(inputs_shape)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.layer_norm.build(inputs_shape)
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocabulary_size,), initializer="zeros")
        self.built = True

    def call(self, inputs):
        if self._embedding is None:
            raise ValueError("MaskedLMHead has no tied embedding; call `tie(embedding_layer)` first.")
        x = self.layer_norm(self.dense(inputs))
        kernel = ops.cast(self._embedding.embeddings, x.dtype)
        # (batch, seq, hidden) x (vocab, hidden)^T -> (batch, seq, vocab)
        logits = ops.einsum("bsh,vh->bsv", x, kernel)
        return logits + ops.cast(self.output_bias, x.dtype)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape[:-1]) + (self.vocabulary_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="tfdistil")
class MaskedLM(Task):
    """Masked language model: logits over the vocabulary at every position.

    Labels for `fit`: token ids at masked positions, -100 elsewhere (ignored), as in
    Hugging Face; see `tfdistil.distillation.losses.masked_sparse_crossentropy`.
    Returns: logits (batch, seq, vocabulary_size), float32.
    """

    def __init__(self, backbone, **kwargs):
        _require_backbone(backbone)
        head = MaskedLMHead(
            backbone.vocabulary_size, kernel_initializer=bert_initializer(), dtype=backbone.dtype_policy,
            name="mlm_head",
        )
        head.tie(backbone.token_embedding)
        layers = {"mlm_head": head, "logits": _float32_logits("logits")}
        self._init_graph(backbone, layers, **kwargs)

    @staticmethod
    def _head(layers, outputs, backbone):
        return layers["logits"](layers["mlm_head"](outputs["sequence_output"]))

    def get_config(self):
        return self._base_config()


@keras.saving.register_keras_serializable(package="tfdistil")
class TextEmbedder(Task):
    """Sentence embeddings, as sentence-transformers' mean-pooling models: the mean of the last
    hidden states over real tokens (`padding_mask`), L2-normalised, so that a dot product is the
    cosine similarity. No weights besides the backbone's.

    The embedding is always normalised (all-MiniLM-L6-v2 and most sentence-transformers
    checkpoints end in a Normalize module); cosine similarity does not depend on it.

    Args:
        backbone: a `BertBackbone` or `DistilBertBackbone`.
    Returns: embeddings (batch, hidden), float32, unit length.
    """

    def __init__(self, backbone, **kwargs):
        from tfdistil.layers.pooler import Pooler

        _require_backbone(backbone)
        layers = {
            "mean_pooler": Pooler(mode="mean", dtype=backbone.dtype_policy, name="mean_pooler"),
            # float32 whatever the policy, as the other heads' logits.
            "embedding": keras.layers.UnitNormalization(axis=-1, dtype="float32", name="embedding"),
        }
        self._init_graph(backbone, layers, **kwargs)


    def _head_inputs(self, backbone_outputs, inputs):
        # Mean pooling counts real tokens only: the head reads the padding mask too.
        return dict(backbone_outputs, padding_mask=inputs["padding_mask"])

    @staticmethod
    def _head(layers, outputs, backbone):
        pooled = layers["mean_pooler"](outputs["sequence_output"], padding_mask=outputs["padding_mask"])
        return layers["embedding"](pooled)

    def get_config(self):
        return self._base_config()
