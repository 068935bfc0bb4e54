"""The jobs behind the CLI, written once over the task declarations (`tfdistil.tasks`): fine-tune a
teacher, distil it into a student, evaluate a saved model, predict, export. Each job reads and writes
a run folder (`runs/<name>/`, see `tfdistil.jobs.runs`); settings are one `RunConfig`."""
from tfdistil.jobs.config import DataConfig, RunConfig, StudentConfig, TeacherConfig, TrainingConfig
from tfdistil.jobs.runs import RunError, load_run_label_names, load_run_model, load_run_tokenizer


def __getattr__(name):
    # The jobs import TensorFlow; `tfdistil --help` reads only the settings above.
    if name in ("finetune", "distill", "evaluate", "predict", "embedded_config"):
        from tfdistil.jobs import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'tfdistil.jobs' has no attribute {name!r}")


__all__ = [
    "RunConfig", "DataConfig", "TeacherConfig", "StudentConfig", "TrainingConfig",
    "finetune", "distill", "evaluate", "predict", "embedded_config",
    "RunError", "load_run_model", "load_run_tokenizer", "load_run_label_names",
]
