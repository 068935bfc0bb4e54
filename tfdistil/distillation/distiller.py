"""The Distiller: a keras.Model whose train_step teaches a student from a frozen teacher."""
import keras
import tensorflow as tf
from keras import ops

# Private Keras API: Keras 3 has no public way to attach a mask to a tensor for compiled metrics.
from keras.src.backend.common.masking import set_keras_mask

from tfdistil.distillation import losses
from tfdistil.distillation.comparisons import OutputComparison, default_comparison
from tfdistil.distillation.layer_map import check_layer_map, default_layer_map
from tfdistil.distillation.terms import (
    AttentionKL,
    DistillationTerm,
    HardLabels,
    HiddenCosine,
    HiddenMSE,
    LossInputs,
    SoftTargets,
)
from tfdistil.models.tasks import Task

TEACHER_LOGITS = "teacher_logits"  # key of cached teacher outputs in the input dict


def _num_layers(model):
    return model.backbone.num_layers


def _multi_worker(strategy):
    # The same test Keras makes before its multi-worker reduction of step logs. Private TF API:
    # tf.distribute has no public "spans several workers" test.
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )


# The Distiller's weight arguments and their defaults.
DEFAULT_WEIGHTS = dict(alpha=0.5, temperature=2.0, hidden_cosine_weight=0.0, hidden_mse_weight=0.0, attention_weight=0.0)


def weighted_terms(alpha=0.5, temperature=2.0, hidden_cosine_weight=0.0, hidden_mse_weight=0.0, attention_weight=0.0,
                   output_comparison=None):
    """The terms the Distiller's weight arguments stand for: the output comparison's hard (alpha)
    and soft (1 - alpha) terms (default: cross-entropy and soft targets; squared errors for
    `PerExampleScore`), and each intermediate term whose weight is > 0."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    if output_comparison is None:
        terms = [HardLabels(weight=alpha), SoftTargets(temperature, weight=1.0 - float(alpha))]
    else:
        terms = output_comparison.output_terms(alpha, temperature)
    for cls, weight in ((HiddenCosine, hidden_cosine_weight), (HiddenMSE, hidden_mse_weight),
                        (AttentionKL, attention_weight)):
        if weight > 0:
            terms.append(cls(weight=weight))
    return terms


@keras.saving.register_keras_serializable(package="tfdistil")
class Distiller(keras.Model):
    """Trains `student` on the teacher's temperature-softened outputs and the hard labels.

    loss = alpha * CE(labels, student)
         + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))
         + hidden_cosine_weight * L_cos + hidden_mse_weight * L_mse + attention_weight * L_att

    Each term is a `DistillationTerm` (`HardLabels`, `SoftTargets`, `HiddenCosine`, `HiddenMSE`,
    `AttentionKL`, or your own subclass): the weight arguments build the list above, or pass
    `terms=` directly. How outputs and labels line up is the `output_comparison`: per example
    (sequence classification), per labelled token (token classification, masked LM; labels
    equal to -100 and padding are ignored) or per example score (a `TextRegressor`: the two
    output terms are then `ScoreMSE`, student vs gold scores (alpha) and student vs teacher
    scores (1 - alpha)), chosen from the student by default.
    `sample_weight` multiplies every term. An example (sequence classification) labelled -100
    has no hard label: it learns from the teacher's terms alone and metrics skip it.

    Args:
        teacher: a tfdistil task model (TextClassifier, TextRegressor, TokenClassifier, SpanQA, MaskedLM). Frozen.
        student: a task model of the same kind and output size, same vocabulary.
        alpha: weight of the hard-label loss, in [0, 1]; the soft loss gets 1 - alpha.
        temperature: softmax temperature T > 0 of the soft targets.
        hidden_cosine_weight: DistilBERT's cosine loss between mapped hidden states.
        hidden_mse_weight: TinyBERT's MSE between mapped hidden states; a learned
            Dense projection maps the student's width to the teacher's when they differ.
        attention_weight: KL between mapped layers' attention distributions.
        layer_map: teacher layer index for each student layer (default:
            `default_layer_map`). Hidden-state terms also pair the embedding outputs.
        terms: a list of `DistillationTerm`s, in place of alpha, temperature and the three
            weights (leave those at their defaults). Logged under each term's `name`.
        output_comparison: an `OutputComparison` (`PerExample`, `PerLabelledToken`,
            `PerExampleScore`); default: chosen from the student (`default_comparison`).

    Inputs: the tokenizer's dict (`token_ids`, `segment_ids`, `padding_mask`); each model
    takes what it needs. A `teacher_logits` key (see `cache_teacher_outputs`) replaces
    the teacher's forward pass.
    """

    def __init__(
        self,
        teacher,
        student,
        alpha=0.5,
        temperature=2.0,
        hidden_cosine_weight=0.0,
        hidden_mse_weight=0.0,
        attention_weight=0.0,
        layer_map=None,
        terms=None,
        output_comparison=None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", student.dtype_policy)
        super().__init__(**kwargs)
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, Task):
                raise ValueError(
                    f"The {role} must be a tfdistil task model (TextClassifier, TokenClassifier, "
                    f"MaskedLM); got {type(model).__name__}."
                )
        weights = dict(alpha=alpha, temperature=temperature, hidden_cosine_weight=hidden_cosine_weight,
                       hidden_mse_weight=hidden_mse_weight, attention_weight=attention_weight)
        # get_config records what was given: the weights, or the terms.
        self.__dict__["_explicit_terms"] = terms is not None
        if terms is None:
            weighted_terms(**weights)  # checks the weights now; built below with the comparison's output terms
        else:
            given = {k: v for k, v in weights.items() if v != DEFAULT_WEIGHTS[k]}
            if given:
                raise ValueError(f"Give the loss as `terms` or as its weights, not both; got terms and {given}.")
            terms = [keras.saving.deserialize_keras_object(t) if isinstance(t, dict) else t for t in terms]
            bad = [t for t in terms if not isinstance(t, DistillationTerm)]
            if not terms or bad:
                raise ValueError(f"`terms` must be a non-empty list of DistillationTerm objects; got {terms!r}.")
            names = [t.name for t in terms]
            if len(set(names)) != len(names):
                raise ValueError(f"Two terms log under one name: {names}.")
        t_vocab, s_vocab = teacher.backbone.vocabulary_size, student.backbone.vocabulary_size
        if t_vocab != s_vocab:
            raise ValueError(
                f"Teacher and student vocabularies differ: teacher vocabulary_size={t_vocab}, "
                f"student vocabulary_size={s_vocab}. They must share one tokenizer."
            )
        if isinstance(output_comparison, dict):
            output_comparison = keras.saving.deserialize_keras_object(output_comparison)
        if output_comparison is None:
            output_comparison = default_comparison(teacher, student)
        elif not isinstance(output_comparison, OutputComparison):
            raise ValueError(
                f"`output_comparison` must be an OutputComparison, got {type(output_comparison).__name__}."
            )
        else:
            output_comparison.validate(teacher, student)
        if not self._explicit_terms:
            terms = weighted_terms(**weights, output_comparison=output_comparison)
        self.teacher = teacher
        self.student = student
        # Frozen: no gradient, and never in training mode (dropout off).
        self.teacher.trainable = False
        # Plain __dict__ entries: objects without variables, out of Keras' tracking.
        self.__dict__["_terms"] = tuple(terms)
        self.__dict__["_output_comparison"] = output_comparison
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.hidden_cosine_weight = float(hidden_cosine_weight)
        self.hidden_mse_weight = float(hidden_mse_weight)
        self.attention_weight = float(attention_weight)
        t_layers, s_layers = _num_layers(teacher), _num_layers(student)
        self.layer_map = check_layer_map(
            layer_map if layer_map is not None else default_layer_map(t_layers, s_layers), t_layers, s_layers
        )
        hidden_terms = [t for t in self._terms if "hidden_states" in t.reads]
        need_hidden = bool(hidden_terms)
        need_attention = any("attention_scores" in t.reads for t in self._terms)
        self.uses_intermediates = need_hidden or need_attention
        # Plain __dict__ entries: these share the teacher's/student's weights and must
        # not be tracked twice (twice in trainable_variables means two updates a step).
        if self.uses_intermediates:
            self.__dict__["_teacher_fn"] = teacher.intermediate_model(need_hidden, need_attention)
            self.__dict__["_student_fn"] = student.intermediate_model(need_hidden, need_attention)
        else:
            self.__dict__["_teacher_fn"], self.__dict__["_student_fn"] = teacher, student
        t_dim, s_dim = teacher.backbone.hidden_dim, student.backbone.hidden_dim
        self.projections = []
        if need_hidden and t_dim != s_dim:
            if not any(t.learns_projection for t in hidden_terms):
                raise ValueError(
                    f"The cosine loss compares hidden states of equal width; teacher hidden_dim={t_dim}, "
                    f"student hidden_dim={s_dim}. Use hidden_mse_weight (learned projection) instead."
                )
            # TinyBERT: a learned map from the student's width to the teacher's, one per pair,
            # shared by every hidden-state term.
            self.projections = [
                keras.layers.Dense(t_dim, dtype=self.dtype_policy, name=f"hidden_projection_{i}")
                for i in range(s_layers + 1)
            ]
            for p in self.projections:
                p.build((None, None, s_dim))
        # Teacher and student are built functional models: nothing is left to build
        # (BackupAndRestore and fit() check this before the first batch).
        self.built = True
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ["loss"] + [t.name for t in self._terms]
        }

    @property
    def terms(self):
        """The loss terms, in the order they are summed."""
        return self._terms

    @property
    def output_comparison(self):
        return self._output_comparison

    # ----- forward passes -------------------------------------------------------------
    def call(self, inputs, training=False):
        """The student's prediction (what compiled metrics and `predict` see)."""
        return self.student(inputs, training=training)

    def _teacher_outputs(self, x):
        if TEACHER_LOGITS in x:
            if self.uses_intermediates:
                raise ValueError(
                    "Cached teacher logits cannot feed hidden-state or attention losses; "
                    "run the teacher (no cache) or set those weights to 0."
                )
            return {"logits": x[TEACHER_LOGITS]}
        out = self._teacher_fn(x, training=False)
        # The intermediate models return {"logits", ...}; a task model its logits (a dict for SpanQA).
        out = out if self.uses_intermediates else {"logits": out}
        return tf.nest.map_structure(tf.stop_gradient, out)

    def _student_outputs(self, x, training):
        out = self._student_fn(x, training=training)
        return out if self.uses_intermediates else {"logits": out}

    # ----- the loss ----------------------------------------------------------------------
    def loss_inputs(self, x, y, sample_weight, teacher_out, student_out):
        """The `LossInputs` of one batch: the comparison's logit pairs and token weights, and the
        mapped hidden-state and attention pairs the terms read."""
        logits = self.output_comparison.logit_pairs(x, y, sample_weight, teacher_out["logits"], student_out["logits"])
        # Hidden and attention terms weigh tokens by the sample weight (per example, or
        # per token for token tasks), for every task type.
        token_weights, token_denominator = self.output_comparison.token_weights(x, y, sample_weight)
        hidden_states = []
        if "hidden_states" in student_out:
            # The embedding outputs, then each student layer with its teacher layer; the student's
            # projected once to the teacher's width, for every hidden-state term.
            for s_i, t_i in [(0, 0)] + [(s + 1, t + 1) for s, t in enumerate(self.layer_map)]:
                s_h = student_out["hidden_states"][s_i]
                if self.projections:
                    s_h = self.projections[s_i](s_h)
                hidden_states.append((teacher_out["hidden_states"][t_i], s_h))
        attention_scores = []
        if "attention_scores" in student_out:
            attention_scores = [
                (teacher_out["attention_scores"][t_i], student_out["attention_scores"][s_i])
                for s_i, t_i in enumerate(self.layer_map)
            ]
        return LossInputs(teacher_out, student_out, logits, hidden_states, attention_scores,
                          token_weights, token_denominator)

    def compute_loss_terms(self, x, y, sample_weight, teacher_out, student_out):
        """Every term's unweighted value under its name, and the weighted total under "loss"."""
        inputs = self.loss_inputs(x, y, sample_weight, teacher_out, student_out)
        values, total = {}, None
        for term in self.terms:
            values[term.name] = term.compute_loss(inputs)
            weighted = term.weight * values[term.name]
            total = weighted if total is None else total + weighted
        values["loss"] = total
        return values

    # ----- Keras hooks ---------------------------------------------------------------------
    def _update_metrics(self, x, y, sample_weight, terms, student_logits):
        # Trackers see each replica's share scaled back up, so the reported value is the
        # global-batch loss whatever the number of replicas.
        scale = float(losses.num_replicas())
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name] * scale)
        if isinstance(student_logits, dict):
            # Span QA's metrics (EM/F1) are over whole questions at the epoch's end, not per batch.
            return self._logs(self.trackers.values())
        # Metrics skip -100 labels (and padding): unlabelled examples and positions.
        y, sample_weight, valid = self.output_comparison.metric_targets(x, y, sample_weight)
        # Keras gives compiled `metrics` (unlike `weighted_metrics`) no sample weight;
        # a Keras mask on the predictions is how they too skip them.
        student_logits = tf.identity(student_logits)
        set_keras_mask(student_logits, valid > 0)
        super().compute_metrics(x, y, student_logits, sample_weight)
        return self._logs(self.metrics)

    def _logs(self, metrics):
        logs = {m.name: m.result() for m in metrics}
        if _multi_worker(self.distribute_strategy):
            # tensorflow/tensorflow#72388: Keras reduces step logs with
            # strategy.reduce("MEAN", v, axis=0), which rejects scalars; shape (1,)
            # reduces to the same value (the mean over replicas).
            logs = tf.nest.map_structure(lambda v: ops.reshape(v, (1,)), logs)
        return logs

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher_out = self._teacher_outputs(x)
        with tf.GradientTape() as tape:
            student_out = self._student_outputs(x, training=True)
            terms = self.compute_loss_terms(x, y, sample_weight, teacher_out, student_out)
            # Under mixed_float16 the optimizer is a LossScaleOptimizer: scale inside the
            # tape so small gradients survive float16; apply() unscales and skips
            # non-finite steps.
            scaled = self.optimizer.scale_loss(terms["loss"])
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        return self._update_metrics(x, y, sample_weight, terms, student_out["logits"])

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher_out = self._teacher_outputs(x)
        student_out = self._student_outputs(x, training=False)
        terms = self.compute_loss_terms(x, y, sample_weight, teacher_out, student_out)
        return self._update_metrics(x, y, sample_weight, terms, student_out["logits"])

    # Overrides a private Keras hook: Keras 3 has no public way to choose the batch fit() builds from.
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # keras-team/keras#20329: for a distributed iterator Keras builds from
        # strategy.reduce("MEAN", first_batch), which MultiWorkerMirroredStrategy cannot
        # do for a dict batch. Building needs shapes and dtypes only: take this worker's
        # first local replica's values. `_distribute_strategy` is private: the public
        # `distribute_strategy` falls back to the default strategy, so cannot tell "none set".
        if iterator is not None and data_batch is None and self._distribute_strategy is not None:
            strategy = self.distribute_strategy

            def local(value):
                if isinstance(value, tf.distribute.DistributedValues):
                    return strategy.experimental_local_results(value)[0]
                return value

            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local, next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.student(x, training=False)

    @property
    def metrics(self):
        metrics = list(self.trackers.values())
        # Private: Keras 3 has no public handle on the compiled-metrics container (its own
        # `metrics` property reads this attribute too).
        if self._compile_metrics is not None:
            metrics.append(self._compile_metrics)
        return metrics

    def get_config(self):
        return {
            "name": self.name,
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "alpha": self.alpha,
            "temperature": self.temperature,
            "hidden_cosine_weight": self.hidden_cosine_weight,
            "hidden_mse_weight": self.hidden_mse_weight,
            "attention_weight": self.attention_weight,
            "layer_map": list(self.layer_map),
            "terms": [keras.saving.serialize_keras_object(t) for t in self.terms] if self._explicit_terms else None,
            "output_comparison": keras.saving.serialize_keras_object(self.output_comparison),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)


def cache_teacher_outputs(teacher, dataset, cache_path=""):
    """Adds the teacher's logits to every batch of `dataset` under `teacher_logits`,
    computed once and cached (in memory, or in files at `cache_path`).

    Use when the teacher is the expensive part and the batches do not change between
    epochs: build `dataset` without per-epoch shuffling (shuffle the cached batches
    afterwards if needed). The Distiller then skips the teacher's forward pass.
    """

    def add_logits(*batch):
        x, y, sw = keras.utils.unpack_x_y_sample_weight(batch)
        x = dict(x)
        x[TEACHER_LOGITS] = teacher(x, training=False)
        return (x, y) if sw is None else (x, y, sw)

    # tf.data runs its functions on one thread per op unless told otherwise: the teacher's
    # forward pass took 2.3x as long as outside tf.data (6 x 384 teacher, 2 cores).
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 0  # 0: the session's intra-op threads
    return dataset.with_options(options).map(add_logits).cache(cache_path)
