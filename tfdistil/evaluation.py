"""Measuring models: accuracy, parameters, size on disk, latency."""
import os
import tempfile
import time
import weakref

import numpy as np

_INFERENCE = weakref.WeakKeyDictionary()


def inference_function(model):
    """`model(x, training=False)` as one graph function per model (kept while the model lives;
    shapes generalised, so buckets of different lengths share a trace).

    Scores, predictions and latencies go through it rather than eager calls: under
    mixed_bfloat16 the graph (what `fit` validates and a SavedModel serves) fuses ops that
    eager execution rounds separately, enough to flip a prediction at the margin."""
    import tensorflow as tf

    fn = _INFERENCE.get(model)
    if fn is None:
        # The function holds the model weakly: a strong reference from the cached value would
        # keep every scored model (and its entry) alive for the life of the process.
        ref = weakref.ref(model)
        fn = _INFERENCE[model] = tf.function(lambda inputs: ref()(inputs, training=False), reduce_retracing=True)
    return fn


def predict_labels(model, dataset):
    """(true labels, predicted labels) over a batched dataset of (features, labels)."""
    y_true, y_pred = [], []
    infer = inference_function(model)
    for x, y in dataset:
        logits = infer(x)
        y_pred.append(np.argmax(np.asarray(logits), axis=-1))
        y_true.append(np.asarray(y))
    return np.concatenate(y_true), np.concatenate(y_pred)


def accuracy(model, dataset):
    y_true, y_pred = predict_labels(model, dataset)
    return float(np.mean(y_true == y_pred))


def size_on_disk_mb(model):
    """Size of the model's weights file (`.weights.h5`) in MB (10^6 bytes): the part that
    scales with the model, without optimizer state."""
    import keras

    # `model.save_weights` also writes the optimizer's slots once the model has been
    # compiled and trained (AdamW: twice the weights); a functional view sharing the
    # layers has no optimizer.
    weights_only = keras.Model(inputs=model.input, outputs=model.output)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.weights.h5")
        weights_only.save_weights(path)
        return os.path.getsize(path) / 1e6


def latency_ms(model, batch_size, sequence_length, repeats=20, warmup=3, seed=0):
    """Median wall time of one inference call (compiled with tf.function), in ms."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    vocab = model.backbone.vocabulary_size
    x = {
        "token_ids": tf.constant(rng.integers(1, vocab, (batch_size, sequence_length)), tf.int32),
        "segment_ids": tf.zeros((batch_size, sequence_length), tf.int32),
        "padding_mask": tf.ones((batch_size, sequence_length), tf.int32),
    }
    x = {k: v for k, v in x.items() if k in model.backbone.input_names()}
    fn = inference_function(model)
    return median_seconds(lambda: np.asarray(fn(x)), repeats, warmup) * 1000.0


def median_seconds(fn, repeats=20, warmup=3):
    """Median wall time of `fn()` over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
