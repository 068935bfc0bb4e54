"""SavedModel versions any server can read, and nothing left behind by a killed export (issue 28,
items 6 and 7).

TF Serving often runs as another user than the one exporting: a version must carry the
permissions the umask gives an ordinary folder and file. A hidden staging folder left by an
export killed midway must go at the next export into the same model folder, but never one
that a live export is still writing, and TF Serving must never see one.
"""
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tfdistil.export import export_saved_model
from tfdistil.models import BertBackbone, TextClassifier
from tfdistil.text import WordPieceTokenizer

REPO = Path(__file__).resolve().parent.parent
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good", "bad", "film", "dull"]

# Builds the same tiny model as `model` below and exports it into argv[1]; the model card
# writer (called once the SavedModel is in the staging folder) prints the staging folder and
# then sleeps, so the parent can look at a live export and then kill it.
EXPORTER = textwrap.dedent("""
    import sys, time
    import tfdistil.export.saved_model as saved_model
    from tfdistil.models import BertBackbone, TextClassifier
    from tfdistil.text import WordPieceTokenizer

    def hold(staging, *args, **kwargs):
        print(staging, flush=True)
        time.sleep(600)

    saved_model.write_model_card = hold
    vocab = {vocab!r}
    model = TextClassifier(BertBackbone(len(vocab), num_layers=1, num_heads=2, hidden_dim=32,
                                        intermediate_dim=37, max_sequence_length=16), num_classes=2)
    saved_model.export_saved_model(model, WordPieceTokenizer(vocab, sequence_length=8), sys.argv[1],
                                   allow_untrained=True)
""").format(vocab=VOCAB)


@pytest.fixture(scope="module")
def model():
    backbone = BertBackbone(len(VOCAB), num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=37,
                            max_sequence_length=16)
    return TextClassifier(backbone, num_classes=2), WordPieceTokenizer(VOCAB, sequence_length=8)


def export(model, path):
    classifier, tokenizer = model
    return export_saved_model(classifier, tokenizer, path, allow_untrained=True)


# What `chmod`'s man page gives for these umasks: folders 0o777 & ~umask, files 0o666 & ~umask.
MODES = {0o022: (0o755, 0o644), 0o002: (0o775, 0o664), 0o077: (0o700, 0o600)}


@pytest.mark.parametrize("umask", sorted(MODES), ids=oct)
def test_version_folders_and_files_get_the_umask_modes(model, tmp_path, umask):
    folder_mode, file_mode = MODES[umask]
    previous = os.umask(umask)
    try:
        version = export(model, tmp_path / "saved_models" / "sentiment")
    finally:
        os.umask(previous)
    folders = [version] + [p for p in version.rglob("*") if p.is_dir()]
    files = [p for p in version.rglob("*") if p.is_file()]
    assert {p.name for p in folders} >= {"1", "variables", "assets.extra"}
    assert {p.name for p in files} >= {"saved_model.pb", "README.md", "tf_serving_warmup_requests"}
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in folders + files}
    expected = {str(p.relative_to(tmp_path)): oct(folder_mode if p.is_dir() else file_mode)
                for p in folders + files}
    assert modes == expected
    # The model's folder and its parent, made by the export too, are ordinary folders as well.
    for made in (tmp_path / "saved_models", tmp_path / "saved_models" / "sentiment"):
        assert oct(stat.S_IMODE(made.stat().st_mode)) == oct(folder_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=oct)
def test_hugging_face_export_files_get_the_umask_modes(model, tmp_path, umask):
    """save_hf's files, model.safetensors included (safetensors itself creates it 0o600)."""
    from tfdistil.convert import save_hf

    classifier, tokenizer = model
    previous = os.umask(umask)
    try:
        save_hf(classifier, tokenizer, tmp_path / "hf", label_names=["no", "yes"])
    finally:
        os.umask(previous)
    files = sorted(p for p in (tmp_path / "hf").iterdir() if p.is_file())
    assert "model.safetensors" in {p.name for p in files}
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
        p.name: oct(MODES[umask][1]) for p in files}


def start_exporter(root):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-c", EXPORTER, str(root)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env, cwd=str(REPO))
    line = process.stdout.readline().strip()  # the staging folder, once the SavedModel is in it
    if not line:
        process.kill()
        process.wait()
        raise AssertionError(f"the exporter stopped early (exit code {process.poll()})")
    return process, Path(line)


def tf_serving_versions(root):
    """What TF Serving's file system source sees in a model's folder: integer-named folders
    (it ignores every other name)."""
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def test_staging_of_a_killed_export_is_removed_and_a_live_one_kept(model, tmp_path):
    saved_models = tmp_path / "saved_models"
    root = saved_models / "sentiment"
    other_model = saved_models / "other"
    process, staging = start_exporter(root)
    try:
        # A live export: its staging folder, with the SavedModel in it, sits beside the model's folder
        # (hidden, not an integer), where TF Serving's scan of the model's folder never looks.
        assert staging.parent == saved_models and staging.name.startswith(".sentiment-v1-")
        assert (staging / "saved_model.pb").is_file() and not staging.name.isdigit()
        first = export(model, root)  # another export meanwhile: takes the next free version
        assert staging.is_dir() and (staging / "saved_model.pb").is_file()  # the live one is kept
        assert first == root / "1" and sorted(p.name for p in root.iterdir()) == ["1"]
        assert tf_serving_versions(root) == [1]
    finally:
        process.send_signal(signal.SIGKILL)  # killed midway, as by `kill -9` or the OOM killer
        process.wait()
    assert process.returncode == -signal.SIGKILL and staging.is_dir()

    export(model, other_model)  # an export into another model's folder leaves it alone
    assert staging.is_dir()
    second = export(model, root)  # the next export into the same model folder removes it
    assert second == root / "2" and not staging.exists()
    assert sorted(p.name for p in saved_models.iterdir()) == ["other", "sentiment"]
    assert tf_serving_versions(root) == [1, 2]
    assert sorted(p.name for p in (root / "2").rglob("*")) == sorted(p.name for p in (root / "1").rglob("*"))


def test_a_dead_process_staging_folder_is_removed_a_live_one_kept(model, tmp_path):
    """The same as above without a killed TensorFlow process: folders named as the staging folder
    of a live export is named, with the pid changed to one that no longer runs."""
    saved_models = tmp_path / "saved_models"
    root = saved_models / "sentiment"
    process, live = start_exporter(root)
    try:
        pid = str(process.pid)
        assert pid in live.name
        finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                                  capture_output=True, text=True)
        dead_pid = finished.stdout.strip()  # a process that has exited (and been reaped)
        time.sleep(0.1)
        with pytest.raises(ProcessLookupError):
            os.kill(int(dead_pid), 0)
        dead = saved_models / live.name.replace(f"-{pid}@", f"-{dead_pid}@")
        dead.mkdir()
        (dead / "saved_model.pb").write_bytes(b"half written")
        # The same dead pid in another pid space (another machine or container sharing the disk):
        # the pid says nothing there, so the folder is kept.
        elsewhere = saved_models / dead.name.replace(f"{dead_pid}@", f"{dead_pid}@elsewhere-")
        elsewhere.mkdir()
        export(model, root)
        assert live.is_dir() and elsewhere.is_dir() and not dead.exists()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_an_empty_batch_gives_empty_outputs(tmp_path):
    """TF Serving clients send batches of 0 strings: every signature, and the Keras inference path,
    answers with outputs of 0 rows (a 0-width batch used to fail in the layers)."""
    import tensorflow as tf

    from tfdistil import evaluation
    from tfdistil.models import SpanQA, TokenClassifier

    tokenizer = WordPieceTokenizer(VOCAB, sequence_length=8, pad_to_sequence_length=False)

    def backbone():
        return BertBackbone(len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                            max_sequence_length=8)

    empty = tf.constant([], tf.string)
    cases = [(TextClassifier(backbone(), num_classes=2), ["no", "yes"], {"text": empty}),
             (TokenClassifier(backbone(), num_classes=3), ["O", "B-X", "I-X"], {"text": empty}),
             (SpanQA(backbone()), None, {"question": empty, "context": empty})]
    for model, labels, request in cases:
        logits = evaluation.inference_function(model)(tokenizer(*request.values()))
        for value in (logits.values() if isinstance(logits, dict) else [logits]):
            assert value.shape[0] == 0
        version = export_saved_model(model, tokenizer, tmp_path / type(model).__name__, label_names=labels,
                                     allow_untrained=True)
        outputs = tf.saved_model.load(str(version)).signatures["serving_default"](**request)
        assert outputs and all(value.shape[0] == 0 for value in outputs.values()), type(model).__name__
