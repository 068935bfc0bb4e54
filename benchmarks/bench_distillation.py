"""Cost of a distillation step against its parts, at real sizes.

Measures, in one process: a Distiller train step (bert_base teacher -> distilbert_base
student, sequence classification), a student-only fine-tuning step, a teacher forward
pass, and a Distiller step fed cached teacher logits; in float32 and mixed_bfloat16.
Prints the ratios the distillation issue targets and writes JSON:

    distillation step / (student step + teacher forward)   target <= 1.10
    cached-logits distillation step / student step          target <= 1.05

Usage: python benchmarks/bench_distillation.py [--batch 8] [--seq 128] [--repeats 5]
"""
import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfdistil.distillation import TEACHER_LOGITS, Distiller  # noqa: E402
from tfdistil.evaluation import median_seconds  # noqa: E402
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier  # noqa: E402


def run(policy, batch, seq, repeats, jit):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    teacher = TextClassifier(BertBackbone.from_preset("bert_base"), 2)
    student = TextClassifier(DistilBertBackbone.from_preset("distilbert_base"), 2)
    rng = np.random.default_rng(0)
    x = {
        "token_ids": tf.constant(rng.integers(1000, 30000, (batch, seq)), tf.int32),
        "segment_ids": tf.zeros((batch, seq), tf.int32),
        "padding_mask": tf.ones((batch, seq), tf.int32),
    }
    y = tf.constant(rng.integers(0, 2, (batch,)), tf.int32)

    distiller = Distiller(teacher, student, alpha=0.5, temperature=2.0)
    distiller.compile(optimizer=keras.optimizers.AdamW(1e-5), jit_compile=jit)
    distiller.make_train_function()
    distill_fn = distiller.train_function

    student_only = TextClassifier(DistilBertBackbone.from_preset("distilbert_base"), 2)
    student_only.set_weights(student.get_weights())
    student_only.compile(
        optimizer=keras.optimizers.AdamW(1e-5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit,
    )
    student_only.make_train_function()
    student_fn = student_only.train_function

    teacher_fwd = tf.function(lambda inputs: teacher(inputs, training=False), jit_compile=jit)
    logits = teacher_fwd(x)
    x_cached = dict(x)
    x_cached[TEACHER_LOGITS] = logits

    def one(fn, data):
        return lambda: [np.asarray(v) for v in fn(iter([data])).values()]

    t_distill = median_seconds(one(distill_fn, (x, y)), repeats, warmup=2)
    t_cached = median_seconds(one(distill_fn, (x_cached, y)), repeats, warmup=2)
    t_student = median_seconds(one(student_fn, (x, y)), repeats, warmup=2)
    t_teacher = median_seconds(lambda: np.asarray(teacher_fwd(x)), repeats, warmup=2)
    keras.config.set_dtype_policy("float32")
    return {
        "policy": policy,
        "jit_compile": jit,
        "distill_step_s": t_distill,
        "cached_distill_step_s": t_cached,
        "student_step_s": t_student,
        "teacher_forward_s": t_teacher,
        "ratio_distill_vs_parts": t_distill / (t_student + t_teacher),
        "ratio_cached_vs_student": t_cached / t_student,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    parser.add_argument("--jit", action="store_true", help="jit_compile the steps (XLA)")
    parser.add_argument("--out", default="benchmarks/results/distillation.json")
    args = parser.parse_args()
    rows = [run(p, args.batch, args.seq, args.repeats, args.jit) for p in args.policies.split(",")]
    print(f"\nbert_base -> distilbert_base, batch {args.batch}, seq {args.seq}, median of {args.repeats}")
    print(f"{'policy':>16} {'distill':>9} {'cached':>9} {'student':>9} {'teacher':>9} "
          f"{'d/(s+t)':>8} {'cached/s':>8}")
    for r in rows:
        print(f"{r['policy']:>16} {r['distill_step_s']:9.3f} {r['cached_distill_step_s']:9.3f} "
              f"{r['student_step_s']:9.3f} {r['teacher_forward_s']:9.3f} "
              f"{r['ratio_distill_vs_parts']:8.3f} {r['ratio_cached_vs_student']:8.3f}")
    print("targets: d/(s+t) <= 1.10, cached/s <= 1.05")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"batch": args.batch, "seq": args.seq, "repeats": args.repeats, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
