"""Tasks as declarations: one `TaskSpec` per kind of task, read by every job.

    from tfdistil.tasks import get_task
    task = get_task("ner")
    data = task.read("train.conll", config.data)
    model = task.head(backbone, num_classes=data.num_classes)

Adding a task is a declaration (a `TaskSpec` subclass) registered here, its head
(`tfdistil.models`) and its reader (`tfdistil.data`). Kinds that later issues fill in:
"regression" (STS-B), "qa" (SQuAD spans), "embedding" (sentence vectors), "general"
(distillation on raw text)."""
from tfdistil.tasks.base import InputError, TaskSpec
from tfdistil.tasks.classification import Classification
from tfdistil.tasks.ner import NER

TASKS = {spec.name: spec for spec in (Classification(), NER())}
PLANNED = ("regression", "qa", "embedding", "general")


def get_task(name):
    """The declaration of task `name` ("classification", "ner"); ValueError naming the known ones."""
    if isinstance(name, TaskSpec):
        return name
    try:
        return TASKS[name]
    except KeyError:
        planned = f"; planned: {list(PLANNED)}" if name in PLANNED else ""
        raise ValueError(f"unknown task {name!r}; tasks: {sorted(TASKS)}{planned}") from None


def task_of_model(model):
    """The declaration whose head `model` is (a tfdistil task model)."""
    for spec in TASKS.values():
        if type(model) is spec.head:
            return spec
    raise ValueError(f"no task declares the head {type(model).__name__}; heads: "
                     f"{[spec.head.__name__ for spec in TASKS.values()]}")


__all__ = ["InputError", "TaskSpec", "Classification", "NER", "TASKS", "get_task", "task_of_model"]
