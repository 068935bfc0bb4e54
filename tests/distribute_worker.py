"""Subprocess side of `tests/test_distribute.py`: one epoch of distillation under one
`tf.distribute` set-up, results written as .npz files for the test to compare.

    python distribute_worker.py single|mirrored|multi_worker WORKDIR

Each set-up needs its own process: logical CPU devices must be configured, and
`MultiWorkerMirroredStrategy` created from TF_CONFIG, before TensorFlow initialises.

- `single`: no strategy, the reference.
- `mirrored`: `MirroredStrategy` over two logical CPU devices of one process.
- `multi_worker`: `MultiWorkerMirroredStrategy`, one replica per worker process; the
  cluster comes from TF_CONFIG. Only the chief (task 0) writes the weights.

Every run writes `split_<mode>_<case>_w<task>.npz` (the token ids each local replica
received at each step, read from the same distributed dataset `fit` uses) and the
chief writes `result_<mode>_<case>.npz` (student weights after one epoch and the
epoch's reported losses, and the initial weights, for the test to check that every run
started from the same numbers).

The module top level imports numpy only, so the test can share `make_data` without
initialising TensorFlow.
"""
import json
import os
import sys
import time

import numpy as np

CASES = ("sequence", "token")
NUM_EXAMPLES = 24
GLOBAL_BATCH = 8  # 3 steps; 4 examples a replica with 2 replicas
SEQ_LEN = 10
VOCAB = 50
NUM_CLASSES = 3
LEARNING_RATE = 0.1
IGNORE = -100

DISTILLER_KWARGS = dict(
    alpha=0.5,
    temperature=2.0,
    hidden_cosine_weight=1.0,
    attention_weight=1.0,
)

_START = time.monotonic()


def log(message):
    """Progress on stdout: the test shows it when a run fails or times out."""
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


def make_data(case):
    """Fixed inputs (numpy) for `case`: dict of int32 (NUM_EXAMPLES, SEQ_LEN) arrays and labels.

    Within every global batch, the first half (what replica/worker 0 gets) holds short
    sequences and the second half long ones, so the two replicas see different numbers
    of real and of labelled tokens: only a *global* denominator gives the
    single-device loss.
    """
    rng = np.random.default_rng(1234)
    half = GLOBAL_BATCH // 2
    lengths = np.where(
        (np.arange(NUM_EXAMPLES) % GLOBAL_BATCH) < half,
        rng.integers(3, 6, NUM_EXAMPLES),  # short: 3..5 tokens
        rng.integers(7, SEQ_LEN + 1, NUM_EXAMPLES),  # long: 7..10 tokens
    )
    positions = np.arange(SEQ_LEN)[None, :]
    padding_mask = (positions < lengths[:, None]).astype("int32")
    token_ids = rng.integers(2, VOCAB, (NUM_EXAMPLES, SEQ_LEN)).astype("int32")
    token_ids[:, 0] = 1  # a [CLS]-like first token
    token_ids = token_ids * padding_mask  # 0 = [PAD]
    segment_ids = ((positions >= (lengths[:, None] + 1) // 2) * padding_mask).astype("int32")
    x = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
    if case == "sequence":
        y = rng.integers(0, NUM_CLASSES, NUM_EXAMPLES).astype("int32")
    elif case == "token":
        y = rng.integers(0, NUM_CLASSES, (NUM_EXAMPLES, SEQ_LEN)).astype("int32")
        # Unlabelled sub-word pieces (-100) among the real tokens, and -100 on most padding;
        # a few padding positions keep a real class: padding must be ignored by itself.
        y[(rng.random((NUM_EXAMPLES, SEQ_LEN)) < 0.3) & (padding_mask == 1)] = IGNORE
        y[(rng.random((NUM_EXAMPLES, SEQ_LEN)) < 0.8) & (padding_mask == 0)] = IGNORE
    else:
        raise ValueError(f"Unknown case {case!r}; expected one of {CASES}.")
    return x, y


def build_models(case):
    """Tiny teacher (BERT, 4 layers) and student (DistilBERT, 2 layers), no dropout."""
    from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier, TokenClassifier

    common = dict(
        vocabulary_size=VOCAB, num_heads=2, hidden_dim=16, intermediate_dim=32,
        dropout=0.0, max_sequence_length=SEQ_LEN, dtype="float32",
    )
    teacher_backbone = BertBackbone(num_layers=4, name="teacher_backbone", **common)
    student_backbone = DistilBertBackbone(num_layers=2, name="student_backbone", **common)
    head = TextClassifier if case == "sequence" else TokenClassifier
    teacher = head(teacher_backbone, NUM_CLASSES, dropout=0.0, name="teacher")
    student = head(student_backbone, NUM_CLASSES, dropout=0.0, name="student")
    return teacher, student


def set_initial_weights(model, seed):
    """Same numbers in every process: drawn from a seeded numpy generator for this fixed
    architecture, so no run depends on Keras initialisers. BERT's 0.02 init would give
    near-uniform logits and attention, hence tiny losses and gradients; at this scale
    every term moves the weights."""
    rng = np.random.default_rng(seed)
    model.set_weights([
        (rng.normal(0.0, 0.3, w.shape) if w.ndim >= 2 else w + rng.normal(0.0, 0.1, w.shape)).astype(w.dtype)
        for w in model.get_weights()
    ])


def make_dataset(case):
    import tensorflow as tf

    x, y = make_data(case)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    # Shard the *elements* of the pipeline: tf.distribute first splits each global batch
    # into one piece per replica, then worker i keeps piece i (no files to shard here).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def make_strategy(mode):
    import tensorflow as tf

    if mode == "single":
        return tf.distribute.get_strategy(), 0
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
        )
        return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), 0
    if mode == "multi_worker":
        task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
        return tf.distribute.MultiWorkerMirroredStrategy(), task
    raise ValueError(f"Unknown mode {mode!r}; expected single, mirrored or multi_worker.")


def record_split(strategy, dataset, path):
    """What each local replica of this process gets at each step (token ids)."""
    seen = {}
    for step, (x, _) in enumerate(strategy.experimental_distribute_dataset(dataset)):
        for replica, ids in enumerate(strategy.experimental_local_results(x["token_ids"])):
            seen[f"step{step}_replica{replica}"] = ids.numpy()
    np.savez(path, **seen)


def run_case(mode, case, strategy, task, workdir):
    import keras

    from tfdistil.distillation import Distiller

    with strategy.scope():
        teacher, student = build_models(case)
        set_initial_weights(teacher, seed=1)
        set_initial_weights(student, seed=2)
        initial = {"teacher": teacher.get_weights(), "student": student.get_weights()}
        distiller = Distiller(teacher=teacher, student=student, **DISTILLER_KWARGS)
        distiller.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE))
    log(f"{case}: models built")

    dataset = make_dataset(case)
    record_split(strategy, dataset, os.path.join(workdir, f"split_{mode}_{case}_w{task}.npz"))
    log(f"{case}: split recorded")
    history = distiller.fit(dataset, epochs=1, verbose=0, shuffle=False)
    log(f"{case}: trained, history {history.history}")

    if task == 0:
        out = {f"weight_{i}": w for i, w in enumerate(student.get_weights())}
        out["weight_paths"] = np.array([v.path for v in student.weights])
        for role, weights in initial.items():
            out.update({f"initial_{role}_{i}": w for i, w in enumerate(weights)})
        for name, values in history.history.items():
            out[f"history_{name}"] = np.array(values, dtype="float64")
        out["num_replicas"] = np.array(strategy.num_replicas_in_sync)
        np.savez(os.path.join(workdir, f"result_{mode}_{case}.npz"), **out)


def main(mode, workdir):
    # The strategy (and logical devices) before anything else touches TensorFlow.
    strategy, task = make_strategy(mode)
    log(f"{mode}: strategy ready, {strategy.num_replicas_in_sync} replicas, task {task}")
    import keras

    keras.config.disable_traceback_filtering()  # full tracebacks in the test's failure message
    for case in CASES:
        run_case(mode, case, strategy, task, workdir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    sys.stderr.flush()
    # Precaution: skip interpreter teardown (MultiWorkerMirroredStrategy's gRPC server and
    # collective executors); everything is written.
    os._exit(0)
