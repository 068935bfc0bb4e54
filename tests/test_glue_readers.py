"""GLUE MRPC, RTE, STS-B and CoLA TSVs read with no column arguments: layout detection, counts,
rows against a by-hand split of the raw lines, the BOM, literal quotes, labels and float scores,
and errors on small broken files."""

import numpy as np
import pytest

from test_data_readers import raises_data_error, write  # the readers' test helpers
from tfdistil.data.readers import (
    GLUE_FORMATS,
    TextClassificationData,
    detect_format,
    read_glue_tsv,
    read_text_classification,
)

# task: (detected name, train rows, dev rows, text field, pair field, label field) -- counts from
# shared/data/README.md, field positions from GLUE's own layout (0-based).
GLUE = {
    "MRPC": ("glue-mrpc", 3668, 408, 3, 4, 0),
    "RTE": ("glue-rte", 2490, 277, 1, 2, 3),
    "STS-B": ("glue-sts-b", 5749, 1500, 7, 8, 9),
    "CoLA": ("glue-cola", 8551, 1043, 3, None, 1),
}
SPLITS = [(task, split) for task in GLUE for split in ("train", "dev")]
MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"




def raw_rows(path, header):
    """The file's data rows split by hand: BOM off, "\\n" lines, tab fields, the header dropped."""
    text = path.read_bytes().decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = [line for line in text.split("\n") if line]
    return [line.split("\t") for line in (lines[1:] if header else lines)]


@pytest.fixture(scope="module")
def glue(shared_data):
    """{(task, split): (path, data)} read with no column arguments (dev with train's label names)."""
    out = {}
    for task in GLUE:
        train = read_text_classification(shared_data / "glue" / task / "train.tsv")
        path = shared_data / "glue" / task / "dev.tsv"
        out[task, "train"] = (shared_data / "glue" / task / "train.tsv", train)
        out[task, "dev"] = (path, read_text_classification(path, label_names=train.label_names))
    return out


@pytest.mark.parametrize("task,split", SPLITS)
def test_counts_layout_and_first_and_last_rows(glue, task, split):
    name, n_train, n_dev, t, p, lab = GLUE[task]
    path, data = glue[task, split]
    assert len(data) == (n_train if split == "train" else n_dev)
    assert data.detected.name == name
    assert data.detected is GLUE_FORMATS[name]
    rows = raw_rows(path, header=task != "CoLA")
    assert len(rows) == len(data)
    for i in (0, 1, len(rows) - 1):
        assert data.texts[i] == rows[i][t].strip()
        if p is None:
            assert data.text_pairs is None
        else:
            assert data.text_pairs[i] == rows[i][p].strip()
        if task == "STS-B":
            assert data.labels[i] == np.float32(rows[i][lab])
        else:
            assert data.label_names[data.labels[i]] == rows[i][lab]


def test_every_label_matches_the_raw_file(glue):
    for (task, split), (path, data) in glue.items():
        _, _, _, _, _, lab = GLUE[task]
        raw = [row[lab] for row in raw_rows(path, header=task != "CoLA")]
        if task == "STS-B":
            np.testing.assert_allclose(data.labels, np.array(raw, np.float64), rtol=0, atol=1e-6)
        else:
            assert [data.label_names[i] for i in data.labels] == raw, (task, split)


def test_mrpc_label_one_is_paraphrase_and_rte_names(glue):
    path, train = glue["MRPC", "train"]
    assert train.label_names == ["0", "1"]  # id 1 = Quality 1 = paraphrase (GLUE's positive class)
    assert int(train.labels.sum()) == sum(row[0] == "1" for row in raw_rows(path, header=True)) == 2474
    assert train.labels.dtype == np.int32 and not train.regression and train.num_classes == 2
    # First train pair: "Amrozi accused his brother ..." is a paraphrase (Quality 1).
    assert train.texts[0].startswith("Amrozi accused his brother") and train.labels[0] == 1
    assert glue["RTE", "train"][1].label_names == ["entailment", "not_entailment"]
    assert glue["CoLA", "train"][1].label_names == ["0", "1"]


def test_mrpc_dev_bom_is_not_part_of_the_header(glue, shared_data):
    path = shared_data / "glue" / "MRPC" / "dev.tsv"
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    data = glue["MRPC", "dev"][1]
    assert data.detected.name == "glue-mrpc"
    assert data.texts[0] == "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy ."
    assert not any("\ufeff" in t for t in data.texts)


def test_quotes_are_literal_characters(glue):
    _, train = glue["MRPC", "train"]
    assert train.texts[0] == (
        'Amrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .'
    )
    assert train.text_pairs[0] == (
        'Referring to him as only " the witness " , Amrozi accused his brother of deliberately distorting '
        "his evidence ."
    )
    for task in ("MRPC", "RTE", "STS-B"):
        path, data = glue[task, "train"]
        quoted = sum('"' in line for line in path.read_text(encoding="utf-8-sig").split("\n")[1:])
        assert quoted > 0
        assert sum('"' in a or '"' in b for a, b in zip(data.texts, data.text_pairs)) == quoted, task


def test_unbalanced_quotes_in_a_hand_made_mrpc_file(tmp_path):
    path = write(tmp_path, "m.tsv", "\ufeff" + MRPC_HEADER + '1\t7\t8\t" an open quote\tno quote "here\n0\t9\t10\t"\t""\n')
    data = read_text_classification(path)
    assert data.detected.name == "glue-mrpc"
    assert data.texts == ['" an open quote', '"'] and data.text_pairs == ['no quote "here', '""']
    assert data.labels.tolist() == [1, 0]


def test_stsb_scores_are_floats_in_0_to_5(glue):
    for split in ("train", "dev"):
        path, data = glue["STS-B", split]
        assert data.regression and data.label_names is None and data.num_classes == 1
        assert data.labels.dtype == np.float32
        assert data.labels.min() >= 0.0 and data.labels.max() <= 5.0
        raw = np.array([float(row[9]) for row in raw_rows(path, header=True)])
        assert abs(float(data.labels.mean()) - raw.mean()) < 1e-5
    assert glue["STS-B", "dev"][1].labels.min() == 0.0 and glue["STS-B", "dev"][1].labels.max() == 5.0
    assert glue["STS-B", "train"][1].labels[:2].tolist() == [5.0, 3.799999952316284]  # "5.000", "3.800"


def test_detect_format_names_the_columns_and_regression(shared_data):
    glue_dir = shared_data / "glue"
    mrpc = detect_format(glue_dir / "MRPC" / "dev.tsv")
    assert mrpc.describe() == "GLUE MRPC (pairs: #1 String / #2 String, label: Quality)"
    assert detect_format(glue_dir / "STS-B" / "train.tsv").describe() == (
        "GLUE STS-B (pairs: sentence1 / sentence2, score: score)"
    )
    assert detect_format(glue_dir / "CoLA" / "dev.tsv").describe() == (
        "GLUE CoLA (no header; text: sentence (column 4), label: label (column 2))"
    )
    assert [detect_format(glue_dir / t / "train.tsv").regression for t in GLUE] == [False, False, True, False]
    sst2 = detect_format(shared_data / "sst2" / "dev.tsv")
    assert (sst2.name, sst2.text_column, sst2.label_column, sst2.regression) == ("tsv", "content", "label", False)
    assert sst2.describe() == "TSV (text: content, label: label)"


def test_read_glue_tsv_reads_the_four_layouts(shared_data):
    for task, (name, *_ ) in GLUE.items():
        assert read_glue_tsv(shared_data / "glue" / task / "dev.tsv").detected.name == name


def test_explicit_columns_keep_the_generic_reader(glue):
    path, detected = glue["MRPC", "dev"]
    data = read_text_classification(path, "#1 String", "Quality", text_pair_column="#2 String")
    assert data.detected.name == "tsv"
    assert data.texts == detected.texts and data.text_pairs == detected.text_pairs
    assert data.labels.tolist() == detected.labels.tolist()
    # A single text column of a pair file: read as today, no pair.
    rte = read_text_classification(glue["RTE", "dev"][0], text_column="sentence1")
    assert rte.text_pairs is None and rte.detected.name == "tsv" and len(rte) == 277


def test_sst2_style_headers_are_not_taken_for_cola(tmp_path):
    # Four columns with an integer second field, but a `sentence` header: the generic reader.
    data = read_text_classification(write(tmp_path, "s.tsv", "id\tlabel\tnote\tsentence\na\t1\t\tgood\n"))
    assert data.detected.name == "tsv" and data.texts == ["good"]


def test_regression_on_generic_files(tmp_path):
    csv_path = write(tmp_path, "s.csv", "text,score\na,0.5\nb,2\nc,-1e-1\n")
    data = read_text_classification(csv_path, label_column="score", regression=True)
    assert data.label_names is None and data.detected.regression
    np.testing.assert_array_equal(data.labels, np.array([0.5, 2.0, -0.1], np.float32))
    assert read_text_classification(csv_path, label_column="score").label_names == ["-1e-1", "0.5", "2"]
    jsonl = write(tmp_path, "s.jsonl", '{"text": "a", "label": 4.25}\n{"text": "b", "label": "3"}\n')
    assert read_text_classification(jsonl, regression=True).labels.tolist() == [4.25, 3.0]
    assert detect_format(jsonl).describe() == "JSON Lines (text: text, label: label)"


def test_hand_built_data_checks_regression_dtype():
    with pytest.raises(ValueError, match="float scores"):
        TextClassificationData(texts=["a"], text_pairs=None, labels=np.zeros(1, np.int32), label_names=None, path="x")


# ---------------------------------------------------------------------------------------------
# Errors on small broken files: file, line, value


def test_wrong_column_count_names_line_and_layout(tmp_path):
    path = write(tmp_path, "mrpc.tsv", MRPC_HEADER + "1\t1\t2\ta\tb\n0\t3\t4\tonly a\n")
    with raises_data_error("mrpc.tsv", "line 3", "expected 5 fields", "GLUE MRPC", "found 4", "'only a'") as info:
        read_text_classification(path)
    assert info.value.line == 3 and info.value.value == ["0", "3", "4", "only a"]
    cola = write(tmp_path, "cola.tsv", "gj04\t1\t\tFine .\ngj04\t0\t*\n")
    with raises_data_error("cola.tsv", "line 2", "expected 4 fields", "found 3"):
        read_text_classification(cola)


def test_non_float_score_names_line_and_value(tmp_path):
    row = "0\tmain-news\th\t2016\t1\tnone\tnone\ta\tb\t{}\n"
    for bad in ("high", "nan", "1_0", "inf"):
        path = write(tmp_path, "sts.tsv", STSB_HEADER + row.format("3.5") + "\n" + row.format(bad))
        with raises_data_error("sts.tsv", "line 4", repr(bad), "not a number", "'score'") as info:
            read_text_classification(path)
        assert info.value.value == bad
    empty = write(tmp_path, "e.tsv", STSB_HEADER + row.format(""))
    with raises_data_error("e.tsv", "line 2", "empty score"):
        read_text_classification(empty)


def test_unknown_label_names_line_and_value(tmp_path):
    header = "index\tsentence1\tsentence2\tlabel\n"
    train = read_text_classification(write(tmp_path, "train.tsv", header + "0\ta\tb\tentailment\n1\tc\td\tnot_entailment\n"))
    dev = write(tmp_path, "dev.tsv", header + "0\ta\tb\tentailment\n1\tc\td\tneutral\n")
    with raises_data_error("dev.tsv", "line 3", "'neutral'", "['entailment', 'not_entailment']") as info:
        read_text_classification(dev, label_names=train.label_names)
    assert info.value.value == "neutral"


def test_scores_are_not_classes(shared_data, tmp_path):
    path = shared_data / "glue" / "STS-B" / "dev.tsv"
    with raises_data_error("dev.tsv", "'score'", "float scores", "regression"):
        read_text_classification(path, regression=False)
    with raises_data_error("dev.tsv", "label_names", "float scores"):
        read_text_classification(path, label_names=["0", "1"])


def test_the_layouts_own_label_column_still_detects(glue, tmp_path):
    path, detected = glue["MRPC", "dev"]
    data = read_text_classification(path, label_column="Quality")
    assert data.detected.name == "glue-mrpc" and data.labels.tolist() == detected.labels.tolist()
    # Another label column with no text column: the generic reader, which finds no text column.
    with raises_data_error("dev.tsv", "line 1", "no text column", "'#1 String'"):
        read_text_classification(path, label_column="#1 ID")
