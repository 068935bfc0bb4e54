"""Jobs behind the CLI's sub-commands on the user's own files: fine-tune a teacher, distil
it into a student, evaluate a saved model, predict labels. Each job reads and writes a run
folder (`runs/<name>/`, see `tfdistil.jobs.runs`)."""
from tfdistil.jobs.classification import (
    DistillConfig,
    FinetuneConfig,
    distill_from_run,
    evaluate_run,
    finetune,
    predict_run,
)
from tfdistil.jobs.ner import distill_ner, finetune_ner
from tfdistil.jobs.runs import RunError, load_run_label_names, load_run_model, load_run_tokenizer

__all__ = [
    "FinetuneConfig",
    "DistillConfig",
    "finetune",
    "distill_from_run",
    "evaluate_run",
    "predict_run",
    "finetune_ner",
    "distill_ner",
    "RunError",
    "load_run_model",
    "load_run_tokenizer",
    "load_run_label_names",
]
