"""The Distiller's loss terms as objects: a new term is a class, not a branch in `train_step`.

A term has a `weight` in the total loss, a `name` (its logged metric) and `compute_loss(inputs)`,
the unweighted value from a `LossInputs`. The functions it computes with are in `losses.py`.
"""
import dataclasses

import keras

from tfdistil.distillation import losses


@dataclasses.dataclass
class LossInputs:
    """What the terms of one step compare.

    teacher_outputs, student_outputs: the models' output dicts (`logits`, and `hidden_states`,
        `attention_scores` when a term reads them).
    logits: the `comparisons.LogitPair`s of the task's comparison.
    hidden_states: (teacher, student) pairs of mapped hidden states (embeddings, then each student
        layer with its teacher layer), the student's projected to the teacher's width when they
        differ; empty unless a term reads hidden states.
    attention_scores: (teacher, student) pairs of mapped layers' attention probabilities.
    token_weights, token_denominator: how hidden-state and attention terms weigh tokens.
    """

    teacher_outputs: dict
    student_outputs: dict
    logits: list
    hidden_states: list
    attention_scores: list
    token_weights: object
    token_denominator: object


class DistillationTerm:
    """Base class of a weighted loss term.

    Class attributes a subclass sets:
        name: the metric it is logged as (unique within a Distiller).
        reads: intermediate outputs it needs: "hidden_states", "attention_scores".
        learns_projection: a hidden-state term that works across widths through the Distiller's
            learned projections (TinyBERT); terms without it need equal widths.
    """

    name = None
    reads = ()
    learns_projection = False

    def __init__(self, weight=1.0):
        self.weight = float(weight)

    def compute_loss(self, inputs):
        """The unweighted scalar term, from a `LossInputs`."""
        raise NotImplementedError

    def get_config(self):
        return {"weight": self.weight}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _mean_over(values):
    """The mean of per-pair values (one per logit pair, hidden-state pair or attention layer)."""
    total = 0.0
    for value in values:
        total += value
    return total / float(len(values))


@keras.saving.register_keras_serializable(package="tfdistil")
class HardLabels(DistillationTerm):
    """Cross-entropy of the student's logits against the labels (`alpha` in the Distiller),
    averaged over the comparison's logit pairs (one, or start and end for spans)."""

    name = "hard_loss"

    def compute_loss(self, inputs):
        return _mean_over([
            losses.hard_loss(pair.labels, pair.student, pair.hard_weights, pair.denominator)
            for pair in inputs.logits
        ])


@keras.saving.register_keras_serializable(package="tfdistil")
class SoftTargets(DistillationTerm):
    """Hinton et al.'s soft targets: T^2 * KL(softmax(teacher / T) || softmax(student / T)).

    Args:
        temperature: T > 0.
        weight: its weight in the total (`1 - alpha` in the Distiller).
    """

    name = "soft_loss"

    def __init__(self, temperature=2.0, weight=1.0):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        super().__init__(weight)
        self.temperature = float(temperature)

    def compute_loss(self, inputs):
        return _mean_over([
            losses.soft_loss(pair.teacher, pair.student, self.temperature, pair.weights, pair.denominator)
            for pair in inputs.logits
        ])

    def get_config(self):
        return dict(super().get_config(), temperature=self.temperature)


@keras.saving.register_keras_serializable(package="tfdistil")
class ScoreMSE(DistillationTerm):
    """Mean squared error of a regressor's scores (one output an example) against the gold scores
    (`target="labels"`: `alpha` in the Distiller, logged as "hard_loss") or the teacher's scores
    (`target="teacher"`: `1 - alpha`, logged as "soft_loss"). The logged names are the ones of the
    classifiers' hard and soft terms, so runs of either task plot alike."""

    NAMES = {"labels": "hard_loss", "teacher": "soft_loss"}

    def __init__(self, target="teacher", weight=1.0):
        if target not in self.NAMES:
            raise ValueError(f"target must be one of {sorted(self.NAMES)}, got {target!r}.")
        super().__init__(weight)
        self.target = target
        self.name = self.NAMES[target]

    def compute_loss(self, inputs):
        if self.target == "labels":
            return _mean_over([
                losses.score_mse(pair.labels, pair.student, pair.hard_weights, pair.denominator)
                for pair in inputs.logits
            ])
        return _mean_over([
            losses.score_mse(pair.teacher, pair.student, pair.weights, pair.denominator) for pair in inputs.logits
        ])

    def get_config(self):
        return dict(super().get_config(), target=self.target)


@keras.saving.register_keras_serializable(package="tfdistil")
class HiddenCosine(DistillationTerm):
    """DistilBERT's cosine loss between mapped hidden states, averaged over the pairs."""

    name = "hidden_cosine_loss"
    reads = ("hidden_states",)

    def compute_loss(self, inputs):
        return _mean_over([
            losses.hidden_cosine_loss(t, s, inputs.token_weights, inputs.token_denominator)
            for t, s in inputs.hidden_states
        ])


@keras.saving.register_keras_serializable(package="tfdistil")
class HiddenMSE(DistillationTerm):
    """TinyBERT's MSE between mapped hidden states, averaged over the pairs; a learned Dense
    projection maps the student's width to the teacher's when they differ."""

    name = "hidden_mse_loss"
    reads = ("hidden_states",)
    learns_projection = True

    def compute_loss(self, inputs):
        return _mean_over([
            losses.hidden_mse_loss(t, s, inputs.token_weights, inputs.token_denominator)
            for t, s in inputs.hidden_states
        ])


@keras.saving.register_keras_serializable(package="tfdistil")
class AttentionKL(DistillationTerm):
    """KL between mapped layers' attention distributions, averaged over the layers."""

    name = "attention_loss"
    reads = ("attention_scores",)

    def compute_loss(self, inputs):
        return _mean_over([
            losses.attention_kl_loss(t, s, inputs.token_weights, inputs.token_denominator)
            for t, s in inputs.attention_scores
        ])
