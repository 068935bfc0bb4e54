"""The tutorial notebooks: the committed copies are clean outputs of a full run, and every
notebook executes without error in smoke mode (TFDISTIL_SMOKE=1), giving sane numbers.

The smoke run executes copies in a temporary folder, in reading order (notebooks 4 and 5
use the run notebook 1 leaves in `runs/`), so the committed outputs are never touched.
"""
import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = [
    "01_quickstart.ipynb",
    "02_pretrained_teacher.ipynb",
    "03_ner_distillation.ipynb",
    "04_export_and_serve.ipynb",
    "05_inspect_runs.ipynb",
]
# Strings that must not appear in committed outputs: absolute paths and the machine's name.
FORBIDDEN = ["/work", "/tmp", "/home", "/root"]
if len(socket.gethostname()) >= 4:  # a very short name would match ordinary words
    FORBIDDEN.append(socket.gethostname())
SMOKE_CELL_TIMEOUT_S = 900


def _read(path):
    import nbformat
    return nbformat.read(str(path), as_version=4)


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield from cell.get("outputs", [])


def _text(nb):
    """Everything the outputs show as text."""
    parts = []
    for out in _outputs(nb):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts += [out.get("ename", ""), out.get("evalue", ""), *out.get("traceback", [])]
        for mime in ("text/plain", "text/html", "text/markdown"):
            value = out.get("data", {}).get(mime)
            if value:
                parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def _results(nb):
    """The dict the last cell prints as `results: {...}`."""
    found = re.findall(r"^results: (\{.*\})$", _text(nb), flags=re.MULTILINE)
    assert len(found) == 1, "expected one 'results:' line in the outputs"
    return json.loads(found[0])


def test_the_list_is_every_notebook():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_are_a_clean_full_run(name):
    nb = _read(NOTEBOOK_DIR / name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # Executed top to bottom in one kernel: every cell ran, in order.
    counts = [c.get("execution_count") for c in code]
    assert all(isinstance(n, int) for n in counts), f"{name}: not every cell was executed"
    assert counts == sorted(counts), f"{name}: cells were executed out of order: {counts}"
    assert not [o for o in _outputs(nb) if o.get("output_type") == "error"], f"{name}: error outputs"
    text = _text(nb)
    leaked = [s for s in FORBIDDEN if s in text]
    assert not leaked, f"{name}: outputs contain {leaked}"
    assert "Traceback" not in text
    # The first cell prints the mode: what is committed is the real thing, not smoke mode.
    assert re.search(r"^mode: full$", text, flags=re.MULTILINE), f"{name}: outputs are not from a full run"
    assert re.search(r"^took [\d.]+ min in full mode$", text, flags=re.MULTILINE)
    _results(nb)


def _check_quickstart(r):
    for key in ("teacher_accuracy", "distilled_accuracy", "hard_label_accuracy"):
        assert 0.0 <= r[key] <= 1.0
    assert r["speedup"] > 0
    # A student narrower than the teacher: soft and hard targets, no hidden-state term.
    assert {"hard_loss", "soft_loss", "loss"} <= set(r["loss_terms"]) and "hidden_cosine_loss" not in r["loss_terms"]
    assert r["export"] == os.path.join("runs", "01_quickstart", "saved_models", "sentiment", "1")


def _check_pretrained(r):
    # Parity with transformers does not depend on training: it holds in smoke mode too.
    assert r["parity_token_ids_equal"] is True
    assert r["parity_max_abs_diff"] < 1e-3
    assert 0.0 <= r["teacher_accuracy"] <= 1.0 and 0.0 <= r["student_accuracy"] <= 1.0
    assert r["speedup_b32"] > 0


def _check_ner(r):
    for scores in (r["teacher_f1"], r["student_f1"]):
        assert set(scores) == {"PER", "LOC", "ORG", "MISC", "all (micro)"}
        assert all(0.0 <= f1 <= 1.0 for f1 in scores.values())


def _check_export(r):
    assert set(r["signatures"]) == {"serving_default", "logits", "tokenize"}
    assert r["client_ok"] is True  # the SavedModel ran in a process without tfdistil
    tflite = r["tflite"]
    assert tflite["TFLite int8"]["size_mb"] < tflite["TFLite float32"]["size_mb"]
    for row in tflite.values():
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["agreement"] <= 1.0
    # Without quantization TFLite computes what Keras computes.
    assert tflite["TFLite float32"]["agreement"] >= 0.99


def _check_inspect(r):
    assert r["models"] == ["student_distilled", "student_hard_labels", "teacher"]
    assert {"hard_loss", "soft_loss", "loss"} <= set(r["loss_terms"])
    assert r["rows"] > 0 and r["finite"] is True


CHECKS = dict(zip(NOTEBOOKS, (_check_quickstart, _check_pretrained, _check_ner, _check_export, _check_inspect)))


def test_notebooks_run_in_smoke_mode(tmp_path, monkeypatch, shared_data):
    import nbformat
    import nbclient
    import ipykernel  # noqa: F401 - the kernel the notebooks run on
    # The kernel inherits this environment: smoke mode, and the data found as conftest finds it
    # (the copies do not sit beside shared/ as notebooks/ does).
    monkeypatch.setenv("TFDISTIL_SMOKE", "1")
    monkeypatch.setenv("TFDISTIL_SHARED_DATA", str(shared_data.resolve()))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    failures = []
    for name in NOTEBOOKS:
        shutil.copy(NOTEBOOK_DIR / name, workdir / name)
        nb = nbformat.read(str(workdir / name), as_version=4)
        client = nbclient.NotebookClient(nb, timeout=SMOKE_CELL_TIMEOUT_S, kernel_name="python3",
                                         resources={"metadata": {"path": str(workdir)}})
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as error:
            failures.append(f"{name}: {error}")
            continue
        finally:
            nbformat.write(nb, str(workdir / name))  # keep the executed copy for a look after a failure
        text = _text(nb)
        assert re.search(r"^mode: smoke$", text, flags=re.MULTILINE), f"{name} did not see TFDISTIL_SMOKE=1"
        CHECKS[name](_results(nb))
    assert not failures, "\n\n".join(failures)
