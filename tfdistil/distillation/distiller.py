"""The Distiller: a keras.Model whose train_step teaches a student from a frozen teacher."""
import keras
import tensorflow as tf
from keras import ops
from keras.src.backend.common.masking import set_keras_mask  # no public API for it yet

from tfdistil.distillation import losses
from tfdistil.distillation.layer_map import check_layer_map, default_layer_map
from tfdistil.models.tasks import Task

TEACHER_LOGITS = "teacher_logits"  # key of cached teacher outputs in the input dict


def _num_layers(model):
    return model.backbone.num_layers


def _multi_worker(strategy):
    # The same test Keras makes before its multi-worker reduction of step logs.
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )


@keras.saving.register_keras_serializable(package="tfdistil")
class Distiller(keras.Model):
    """Trains `student` on the teacher's temperature-softened outputs and the hard labels.

    loss = alpha * CE(labels, student)
         + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))
         + hidden_cosine_weight * L_cos + hidden_mse_weight * L_mse + attention_weight * L_att

    Works per example (sequence classification, logits (batch, classes)) and per
    position (token classification and masked LM, logits (batch, seq, classes); labels
    equal to -100 and padding are ignored). `sample_weight` multiplies every term.
    An example (sequence classification) labelled -100 has no hard label: it learns from
    the teacher's terms alone and metrics skip it — how augmented text is distilled
    (`tfdistil.data.augment`).

    Args:
        teacher: a tfdistil task model (TextClassifier, TokenClassifier, MaskedLM). Frozen.
        student: a task model of the same kind and output size, same vocabulary.
        alpha: weight of the hard-label loss, in [0, 1]; the soft loss gets 1 - alpha.
        temperature: softmax temperature T > 0 of the soft targets.
        hidden_cosine_weight: DistilBERT's cosine loss between mapped hidden states.
        hidden_mse_weight: TinyBERT's MSE between mapped hidden states; a learned
            Dense projection maps the student's width to the teacher's when they differ.
        attention_weight: KL between mapped layers' attention distributions.
        layer_map: teacher layer index for each student layer (default:
            `default_layer_map`). Hidden-state terms also pair the embedding outputs.

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
            if isinstance(model.output, dict):
                raise ValueError(f"Distillation of {type(model).__name__} (dict outputs) is not supported.")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        t_vocab, s_vocab = teacher.backbone.vocabulary_size, student.backbone.vocabulary_size
        if t_vocab != s_vocab:
            raise ValueError(
                f"Teacher and student vocabularies differ: teacher vocabulary_size={t_vocab}, "
                f"student vocabulary_size={s_vocab}. They must share one tokenizer."
            )
        t_shape, s_shape = tuple(teacher.output.shape[1:]), tuple(student.output.shape[1:])
        if len(t_shape) != len(s_shape) or t_shape[-1] != s_shape[-1]:
            raise ValueError(
                f"Teacher and student outputs differ: teacher {type(teacher).__name__} gives "
                f"(batch, {', '.join(map(str, t_shape))}), student {type(student).__name__} gives "
                f"(batch, {', '.join(map(str, s_shape))})."
            )
        self.teacher = teacher
        self.student = student
        # Frozen: no gradient, and never in training mode (dropout off).
        self.teacher.trainable = False
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.hidden_cosine_weight = float(hidden_cosine_weight)
        self.hidden_mse_weight = float(hidden_mse_weight)
        self.attention_weight = float(attention_weight)
        t_layers, s_layers = _num_layers(teacher), _num_layers(student)
        self.layer_map = check_layer_map(
            layer_map if layer_map is not None else default_layer_map(t_layers, s_layers), t_layers, s_layers
        )
        self.per_position = len(s_shape) == 2
        need_hidden = self.hidden_cosine_weight > 0 or self.hidden_mse_weight > 0
        need_attention = self.attention_weight > 0
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
            if self.hidden_cosine_weight > 0 and self.hidden_mse_weight == 0:
                raise ValueError(
                    f"The cosine loss compares hidden states of equal width; teacher hidden_dim={t_dim}, "
                    f"student hidden_dim={s_dim}. Use hidden_mse_weight (learned projection) instead."
                )
            # TinyBERT: a learned map from the student's width to the teacher's, one per pair.
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
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "hard_loss", "soft_loss", "hidden_cosine_loss", "hidden_mse_loss", "attention_loss")
            if name in ("loss", "hard_loss", "soft_loss") or self._term_weight(name) > 0
        }

    def _term_weight(self, name):
        return {
            "hidden_cosine_loss": self.hidden_cosine_weight,
            "hidden_mse_loss": self.hidden_mse_weight,
            "attention_loss": self.attention_weight,
        }[name]

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
        out = out if isinstance(out, dict) else {"logits": out}
        return tf.nest.map_structure(tf.stop_gradient, out)

    def _student_outputs(self, x, training):
        out = self._student_fn(x, training=training)
        return out if isinstance(out, dict) else {"logits": out}

    # ----- the loss ----------------------------------------------------------------------
    def _sample_weight(self, sample_weight, y):
        """float32 weights shaped (batch,) per example, or (batch, 1 | seq) per position.
        Reshaped by value: inside fit() their rank may be unknown."""
        sw = ops.cast(sample_weight, "float32")
        if self.per_position:
            return ops.reshape(sw, (ops.shape(y)[0], -1))
        return ops.reshape(sw, (-1,))

    def _masks(self, x, y, sample_weight):
        """(weights, hard-label weights, denominator, padding mask, token denominator)."""
        padding_mask = ops.cast(x["padding_mask"], "float32")
        if self.per_position:
            mask = losses.label_mask(y, padding_mask)
            labelled = mask
        else:
            mask = ops.ones((ops.shape(y)[0],), "float32")
            # An example labelled -100 (augmented text) learns from the teacher alone.
            labelled = losses.label_mask(ops.reshape(y, (-1,)))
        weights = mask
        if sample_weight is not None:
            weights = weights * self._sample_weight(sample_weight, y)
        denominator = losses.global_count(ops.sum(mask))
        token_denominator = losses.global_count(ops.sum(padding_mask))
        return weights, weights * labelled, denominator, padding_mask, token_denominator

    def compute_loss_terms(self, x, y, sample_weight, teacher_out, student_out):
        """All loss terms (unweighted) and the weighted total, as a dict of scalars."""
        weights, hard_weights, denominator, padding_mask, token_denominator = self._masks(x, y, sample_weight)
        s_logits, t_logits = student_out["logits"], teacher_out["logits"]
        terms = {
            "hard_loss": losses.hard_loss(y, s_logits, hard_weights, denominator),
            "soft_loss": losses.soft_loss(t_logits, s_logits, self.temperature, weights, denominator),
        }
        total = self.alpha * terms["hard_loss"] + (1.0 - self.alpha) * terms["soft_loss"]
        pairs = [(0, 0)] + [(s + 1, t + 1) for s, t in enumerate(self.layer_map)]
        # Hidden and attention terms weigh tokens by the sample weight (per example, or
        # per token for token tasks), for every task type.
        token_weights = padding_mask
        if sample_weight is not None:
            sw = self._sample_weight(sample_weight, y)
            token_weights = token_weights * (sw if self.per_position else sw[:, None])
        n_pairs = float(len(pairs))
        if self.hidden_cosine_weight > 0 or self.hidden_mse_weight > 0:
            cos_sum, mse_sum = 0.0, 0.0
            for s_i, t_i in pairs:
                s_h = student_out["hidden_states"][s_i]
                t_h = teacher_out["hidden_states"][t_i]
                if self.projections:
                    s_h = self.projections[s_i](s_h)
                if self.hidden_cosine_weight > 0:
                    cos_sum += losses.hidden_cosine_loss(t_h, s_h, token_weights, token_denominator)
                if self.hidden_mse_weight > 0:
                    mse_sum += losses.hidden_mse_loss(t_h, s_h, token_weights, token_denominator)
            if self.hidden_cosine_weight > 0:
                terms["hidden_cosine_loss"] = cos_sum / n_pairs
                total += self.hidden_cosine_weight * terms["hidden_cosine_loss"]
            if self.hidden_mse_weight > 0:
                terms["hidden_mse_loss"] = mse_sum / n_pairs
                total += self.hidden_mse_weight * terms["hidden_mse_loss"]
        if self.attention_weight > 0:
            att_sum = 0.0
            for s_i, t_i in enumerate(self.layer_map):
                att_sum += losses.attention_kl_loss(
                    teacher_out["attention_scores"][t_i], student_out["attention_scores"][s_i],
                    token_weights, token_denominator,
                )
            terms["attention_loss"] = att_sum / float(len(self.layer_map))
            total += self.attention_weight * terms["attention_loss"]
        terms["loss"] = total
        return terms

    # ----- Keras hooks ---------------------------------------------------------------------
    def _update_metrics(self, x, y, sample_weight, terms, student_logits):
        # Trackers see each replica's share scaled back up, so the reported value is the
        # global-batch loss whatever the number of replicas.
        scale = float(losses.num_replicas())
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name] * scale)
        # Metrics skip -100 labels (and padding): unlabelled examples and positions.
        if not self.per_position:
            y = ops.reshape(y, (-1,))
        valid = losses.label_mask(y, x["padding_mask"] if self.per_position else None)
        weights = valid
        if sample_weight is not None:
            weights = valid * self._sample_weight(sample_weight, y)
        y = ops.where(valid > 0, y, ops.zeros_like(y))
        sample_weight = weights
        # Keras gives compiled `metrics` (unlike `weighted_metrics`) no sample weight;
        # a Keras mask on the predictions is how they too skip them.
        student_logits = tf.identity(student_logits)
        set_keras_mask(student_logits, valid > 0)
        super().compute_metrics(x, y, student_logits, sample_weight)
        logs = {m.name: m.result() for m in self.metrics}
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

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # keras-team/keras#20329: for a distributed iterator Keras builds from
        # strategy.reduce("MEAN", first_batch), which MultiWorkerMirroredStrategy cannot
        # do for a dict batch. Building needs shapes and dtypes only: take this worker's
        # first local replica's values.
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

    return dataset.map(add_logits).cache(cache_path)
