"""BERT and DistilBERT backbones as functional keras.Model subclasses."""
import keras

from tfdistil.layers import Pooler, PositionalEmbedding, TransformerEncoderBlock
from tfdistil.models.presets import preset_config


def bert_initializer(stddev=0.02):
    """BERT's init: truncated normal, stddev 0.02."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def select_inputs(inputs, names, max_sequence_length, model_name):
    """Keep the keys a model takes (a DistilBERT ignores `segment_ids`, so one dataset
    feeds teacher and student) and reject over-long inputs with a clear message."""
    if not isinstance(inputs, dict):
        raise ValueError(
            f"{model_name} takes a dict with keys {list(names)}; got {type(inputs).__name__}."
        )
    missing = [n for n in names if n not in inputs]
    if missing:
        raise ValueError(f"{model_name} inputs lack {missing}; got keys {sorted(inputs)}.")
    inputs = {n: inputs[n] for n in names}
    seq_len = inputs["token_ids"].shape[-1]
    if isinstance(seq_len, int) and seq_len > max_sequence_length:
        raise ValueError(
            f"Input sequence length {seq_len} exceeds max_sequence_length={max_sequence_length} "
            f"of {model_name}. Truncate the inputs (the tokenizer's `sequence_length`)."
        )
    return inputs


class InputSelectingModel(keras.Model):
    """A functional model that, like the backbones, keeps only the inputs it takes.

    Keras maps a dict with extra keys onto a functional model's inputs by position,
    which would silently feed `segment_ids` as `padding_mask` to a DistilBERT.
    """

    def __init__(self, inputs, outputs, max_sequence_length, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.__dict__["_input_names"] = tuple(inputs)
        self.__dict__["_max_sequence_length"] = max_sequence_length

    def __call__(self, inputs, *args, **kwargs):
        inputs = select_inputs(inputs, self._input_names, self._max_sequence_length, self.name)
        return super().__call__(inputs, *args, **kwargs)


class Backbone(keras.Model):
    """Shared machinery of `BertBackbone` and `DistilBertBackbone`.

    Subclasses create their layers, call `_encode` on `keras.Input`s to make the graph,
    and pass it to `keras.Model.__init__`. The graph also holds every hidden state and
    attention map; `intermediate_model` exposes them from the same weights, which is
    what layer-to-layer distillation needs.
    """

    architecture = None
    uses_segment_ids = False

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A randomly initialised backbone of a named size; `kwargs` override the preset."""
        config = preset_config(preset, cls.architecture)
        config.update(kwargs)
        return cls(**config)

    @classmethod
    def input_names(cls):
        return ("token_ids", "segment_ids", "padding_mask") if cls.uses_segment_ids else ("token_ids", "padding_mask")

    @classmethod
    def make_inputs(cls):
        return {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in cls.input_names()}

    @property
    def token_embedding(self):
        return self.get_layer("token_embedding")

    @property
    def transformer_layers(self):
        return [self.get_layer(f"transformer_layer_{i}") for i in range(self.num_layers)]

    def _encode(self, inputs, layers, first_token=False):
        """Run every layer once; returns outputs, all hidden states and attention probabilities.

        Each block is called with `return_attention_scores=True`: a Keras functional layer
        keeps one output structure for its calls, and the probabilities are computed anyway.
        `intermediate_model` exposes them. With `first_token`, the last block computes the
        first ([CLS]) position only (`first_token_model`) and gives no attention scores.
        """
        padding_mask = inputs["padding_mask"]
        x = self._embed(inputs, layers)
        hidden_states, attention_scores = [x], []
        for i in range(self.num_layers):
            block = layers[f"transformer_layer_{i}"]
            if first_token and i == self.num_layers - 1:
                x = block(x, padding_mask=padding_mask, first_token_only=True)
            else:
                x, scores = block(x, padding_mask=padding_mask, return_attention_scores=True)
                attention_scores.append(scores)
            hidden_states.append(x)
        outputs = {"sequence_output": x}
        if "pooler" in layers:
            outputs["pooled_output"] = layers["pooler"](x)
        return outputs, {"hidden_states": hidden_states, "attention_scores": attention_scores}

    def _finish_init(self, inputs, outputs, extras, dtype):
        # A functional keras.Model ignores `dtype`; set the policy so that get_config
        # records it and task heads built on this backbone take it.
        if dtype is not None:
            self.dtype_policy = keras.dtype_policies.get(dtype)
        # Plain __dict__ entries: Keras must not track these as sub-models, or the
        # weights would be saved twice.
        self.__dict__["_graph_tensors"] = (inputs, outputs, extras)
        self.__dict__["_intermediate_models"] = {}

    def intermediate_model(self, output_hidden_states=True, output_attention_scores=True):
        """A keras.Model sharing these weights whose output dict also carries
        `hidden_states` (embedding output + one per layer: num_layers + 1 tensors of
        (batch, seq, hidden_dim)) and `attention_scores` (one (batch, heads, seq, seq)
        float32 tensor per layer). Distillation's layer-to-layer losses read these."""
        key = (output_hidden_states, output_attention_scores)
        if key not in self._intermediate_models:
            inputs, outputs, extras = self._graph_tensors
            outputs = dict(outputs)
            if output_hidden_states:
                outputs["hidden_states"] = extras["hidden_states"]
            if output_attention_scores:
                outputs["attention_scores"] = extras["attention_scores"]
            self._intermediate_models[key] = InputSelectingModel(
                inputs, outputs, self.max_sequence_length, name=f"{self.name}_intermediate"
            )
        return self._intermediate_models[key]

    def first_token_model(self):
        """A keras.Model sharing these weights that computes what a [CLS] classifier reads: its
        `sequence_output` is the first position only, (batch, 1, hidden_dim), plus
        `pooled_output` for BERT. Every block but the last runs as usual; the last computes
        its query, output projection, feed-forward and LayerNorms for that position alone
        (keys and values for all), about 5/6 of a block less. `TextClassifier` is built on it."""
        if "first_token" not in self._intermediate_models:
            # The backbone's own inputs: no new InputLayers for saving to meet.
            inputs = self._graph_tensors[0]
            outputs, _ = self._encode(inputs, {layer.name: layer for layer in self.layers}, first_token=True)
            self._intermediate_models["first_token"] = InputSelectingModel(
                inputs, outputs, self.max_sequence_length, name=f"{self.name}_first_token"
            )
        return self._intermediate_models["first_token"]

    def __call__(self, inputs, *args, **kwargs):
        inputs = select_inputs(inputs, self.input_names(), self.max_sequence_length, self.name)
        return super().__call__(inputs, *args, **kwargs)


    def _build(self, config, extra_layers, dtype, kwargs):
        """Make the layers shared by BERT and DistilBERT (plus `extra_layers`), wire the
        graph, and record the config. `config` holds the constructor arguments."""
        layers = {
            "token_embedding": keras.layers.Embedding(
                config["vocabulary_size"], config["hidden_dim"], embeddings_initializer=bert_initializer(),
                dtype=dtype, name="token_embedding",
            ),
            "position_embedding": PositionalEmbedding(
                config["max_sequence_length"], initializer=bert_initializer(), dtype=dtype,
                name="position_embedding",
            ),
            "embeddings_layer_norm": keras.layers.LayerNormalization(
                epsilon=1e-12, dtype=dtype, name="embeddings_layer_norm"
            ),
            "embeddings_dropout": keras.layers.Dropout(config["dropout"], dtype=dtype, name="embeddings_dropout"),
            **extra_layers,
        }
        for i in range(config["num_layers"]):
            layers[f"transformer_layer_{i}"] = TransformerEncoderBlock(
                config["num_heads"], config["intermediate_dim"], dropout=config["dropout"], activation="gelu",
                layer_norm_epsilon=1e-12, kernel_initializer=bert_initializer(),
                skip_padding=config["skip_padding"], xla_layer_norm=config["xla_layer_norm"], dtype=dtype,
                name=f"transformer_layer_{i}",
            )
        self.num_layers = config["num_layers"]
        inputs = self.make_inputs()
        outputs, extras = self._encode(inputs, layers)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        self._finish_init(inputs, outputs, extras, dtype)
        self.__dict__["_config"] = dict(config)
        for name, value in config.items():
            setattr(self, name, value)

    def _embed(self, inputs, layers):
        tokens = layers["token_embedding"](inputs["token_ids"])
        x = tokens + layers["position_embedding"](tokens)
        if "segment_embedding" in layers:
            x = x + layers["segment_embedding"](inputs["segment_ids"])
        x = layers["embeddings_layer_norm"](x)
        return layers["embeddings_dropout"](x)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            **self._config,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfdistil")
class BertBackbone(Backbone):
    """BERT (Devlin et al., 2019): token + position + segment embeddings, post-LN encoder,
    tanh pooler on [CLS].

    Args:
        vocabulary_size: rows of the token embedding.
        num_layers: encoder blocks.
        num_heads: attention heads per block.
        hidden_dim: model width.
        intermediate_dim: feed-forward inner width.
        dropout: dropout of embeddings, attention and feed-forward.
        max_sequence_length: positions of the learned position embedding.
        num_segments: rows of the segment embedding (2).
        skip_padding: which calls of the encoder blocks compute the real tokens only:
            "inference" (default), "always" (training too) or "never" (`TransformerEncoderBlock`).
        xla_layer_norm: the blocks' LayerNorms take their XLA path in reduced-precision
            inference (default False; exports trace without it).
        dtype: a Keras dtype policy ("float32", "mixed_bfloat16", "mixed_float16") for every layer.

    Inputs (dict, int32, shape (batch, seq)): `token_ids`, `segment_ids`, `padding_mask`.
    Outputs (dict): `sequence_output` (batch, seq, hidden_dim), `pooled_output` (batch, hidden_dim).
    """

    architecture = "bert"
    uses_segment_ids = True

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        skip_padding="inference",
        xla_layer_norm=False,
        dtype=None,
        **kwargs,
    ):
        config = dict(
            vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=num_heads, hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim, dropout=dropout, max_sequence_length=max_sequence_length,
            num_segments=num_segments, skip_padding=skip_padding, xla_layer_norm=bool(xla_layer_norm),
        )
        extra_layers = {
            "segment_embedding": keras.layers.Embedding(
                num_segments, hidden_dim, embeddings_initializer=bert_initializer(), dtype=dtype,
                name="segment_embedding",
            ),
            "pooler": Pooler("cls", kernel_initializer=bert_initializer(), dtype=dtype, name="pooler"),
        }
        self._build(config, extra_layers, dtype, kwargs)


@keras.saving.register_keras_serializable(package="tfdistil")
class DistilBertBackbone(Backbone):
    """DistilBERT (Sanh et al., 2019): BERT's encoder without segment embeddings and
    without the pooler.

    Args: as `BertBackbone`, without `num_segments`.
    Inputs (dict, int32, (batch, seq)): `token_ids`, `padding_mask`.
    Outputs (dict): `sequence_output` (batch, seq, hidden_dim).
    """

    architecture = "distilbert"
    uses_segment_ids = False

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        skip_padding="inference",
        xla_layer_norm=False,
        dtype=None,
        **kwargs,
    ):
        config = dict(
            vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=num_heads, hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim, dropout=dropout, max_sequence_length=max_sequence_length,
            skip_padding=skip_padding, xla_layer_norm=bool(xla_layer_norm),
        )
        self._build(config, {}, dtype, kwargs)
