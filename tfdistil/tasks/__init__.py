"""Tasks as declarations: one `TaskSpec` per kind of task, read by every job.

    from tfdistil.tasks import get_task
    task = get_task("ner")
    data = task.read("train.conll", config.data)
    model = task.build_head(backbone, data.num_classes)

Adding a task is a declaration (a `TaskSpec` subclass) registered here, its head
(`tfdistil.models`) and its reader (`tfdistil.data`): `regression` is the example. A kind that a
later issue fills in: "general" (distillation on raw text)."""
from tfdistil.tasks.base import InputError, TaskSpec
from tfdistil.tasks.classification import Classification
from tfdistil.tasks.embedding import Embedding
from tfdistil.tasks.ner import NER
from tfdistil.tasks.qa import QuestionAnswering
from tfdistil.tasks.regression import Regression

TASKS = {spec.name: spec for spec in (Classification(), NER(), Regression(), Embedding(), QuestionAnswering())}
PLANNED = ("general",)


def get_task(name):
    """The declaration of task `name` ("classification", "ner", "regression", "embedding", "qa");
    ValueError naming the known ones."""
    if isinstance(name, TaskSpec):
        return name
    try:
        return TASKS[name]
    except KeyError:
        planned = f"; planned: {list(PLANNED)}" if name in PLANNED else ""
        raise ValueError(f"unknown task {name!r}; tasks: {sorted(TASKS)}{planned}") from None


def detect_task(path, data_config=None):
    """The task name of a training file when none is given: "qa" for a `.json` file in SQuAD layout,
    "regression" for a layout whose labels are float scores (GLUE STS-B), else "classification".
    A file the text readers cannot place
    (a CoNLL file, a missing one) is "classification" too: its reader then says what is wrong.
    `data_config` (a `DataConfig`) gives the columns to look for."""
    from tfdistil.data.readers import DataError, detect_format
    from tfdistil.data.squad import is_squad_file

    if is_squad_file(path):
        return "qa"

    columns = {}
    if data_config is not None:
        columns = dict(text_column=data_config.text_column, label_column=data_config.label_column,
                       text_pair_column=data_config.text_pair_column)
    try:
        return "regression" if detect_format(path, **columns).regression else "classification"
    except DataError:
        return "classification"


def task_of_model(model):
    """The declaration whose head `model` is (a tfdistil task model)."""
    for spec in TASKS.values():
        if type(model) is spec.head:
            return spec
    raise ValueError(f"no task declares the head {type(model).__name__}; heads: "
                     f"{[spec.head.__name__ for spec in TASKS.values()]}")


__all__ = ["InputError", "TaskSpec", "Classification", "Embedding", "NER", "QuestionAnswering", "Regression", "TASKS",
           "detect_task",
           "get_task", "task_of_model"]
