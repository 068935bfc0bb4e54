"""AdamW with BERT's schedule: linear warm-up, then linear decay to zero."""
import keras
import tensorflow as tf
from keras import ops

# Substrings of variable names that get no weight decay: LayerNorm scales/offsets and
# every bias (decaying them only fights the normalisation, as BERT's recipe notes).
NO_DECAY = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="tfdistil")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak * step / warmup for step < warmup, then linear decay to
    `end_learning_rate` at `total_steps`."""

    def __init__(self, peak_learning_rate, total_steps, warmup_steps=0, end_learning_rate=0.0):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}.")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}.")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak, end = self.peak_learning_rate, self.end_learning_rate
        warm = float(max(self.warmup_steps, 1))
        warmup_lr = peak * step / warm
        decay_span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.clip((step - self.warmup_steps) / decay_span, 0.0, 1.0)
        decay_lr = peak + (end - peak) * progress
        if self.warmup_steps == 0:
            return decay_lr
        return ops.where(step < self.warmup_steps, warmup_lr, decay_lr)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "end_learning_rate": self.end_learning_rate,
        }


@keras.saving.register_keras_serializable(package="tfdistil")
class AdamW(keras.optimizers.AdamW):
    """Keras' AdamW whose weight-decay exclusions are part of its config, with the Adam
    update of each variable done by one fused TensorFlow kernel.

    Keras keeps `exclude_from_weight_decay(...)` out of `get_config`, so a compiled model
    saved as `.keras` and reloaded would decay biases and LayerNorm again.

    The update is Keras' Adam, term for term (m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
    var -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)), computed by
    `ResourceApplyAdam` in one pass over each variable where Keras runs about ten element-wise
    ops, each a pass over memory. Weight decay stays Keras' own; `amsgrad` takes Keras' path.
    Sparse (embedding) gradients are made dense before the update, which Keras' own Adam does not
    do (see `update_step`): with repeated token ids its second moment differs from Adam's.

    Args:
        exclude_from_weight_decay_names: substrings (regexes) of variable names that get
            no weight decay.
        **kwargs: `keras.optimizers.AdamW` arguments.
    """

    def __init__(self, exclude_from_weight_decay_names=NO_DECAY, **kwargs):
        super().__init__(**kwargs)
        self.exclude_from_weight_decay_names = tuple(exclude_from_weight_decay_names)
        if self.exclude_from_weight_decay_names:
            self.exclude_from_weight_decay(var_names=list(self.exclude_from_weight_decay_names))

    def update_step(self, gradient, variable, learning_rate):
        # A sparse (embedding) gradient made dense first: Keras' own update squares each slice
        # of an IndexedSlices, so a token seen twice in a batch got g1^2 + g2^2 in place of
        # (g1 + g2)^2 in the second moment. Dense, it is Adam's formula, and what Keras' update
        # gets anyway under global-norm clipping (`make_optimizer`'s default hands the optimizer
        # dense gradients), so the result no longer depends on clipping.
        gradient = tf.convert_to_tensor(gradient)
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        # Under a tf.distribute strategy `variable` (and these slots, in this update call)
        # are the replica's own; `handle` is their resource.
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=ops.power(ops.cast(self.beta_1, dtype), step),
            beta2_power=ops.power(ops.cast(self.beta_2, dtype), step),
            lr=ops.cast(learning_rate, dtype),
            beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype),
            epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype),
        )

    def get_config(self):
        return dict(super().get_config(), exclude_from_weight_decay_names=list(self.exclude_from_weight_decay_names))


def make_optimizer(learning_rate, total_steps, warmup_ratio=0.1, weight_decay=0.01, clipnorm=1.0):
    """AdamW (eps 1e-6 as BERT) over `LinearWarmupDecay`, no decay on LayerNorm and
    biases, gradients clipped to global norm `clipnorm` (None: off)."""
    schedule = LinearWarmupDecay(learning_rate, total_steps, int(round(warmup_ratio * total_steps)))
    return AdamW(
        learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-6, global_clipnorm=clipnorm,
        exclude_from_weight_decay_names=NO_DECAY,
    )
