"""Readers for labelled text files: CSV / TSV / JSON Lines classification and regression data, and
CoNLL NER data.

Pure Python: a reader returns a complete, validated dataclass or raises `DataError` naming the
file, the 1-based line and the value, so a bad file fails before any training starts.
CSV has standard quoting; TSV is GLUE style (split on tabs, quotes are ordinary characters, as
SST-2 and MRPC sentences contain them), and the GLUE MRPC, RTE, STS-B and CoLA layouts are
recognised from their header (CoLA: from its four columns, it has no header); JSON Lines is one
object a line; CoNLL is `TOKEN TAG [extra ...]` a line, a blank line between sentences,
`-DOCSTART-` skipped.
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "DataError",
    "DataFormat",
    "GLUE_FORMATS",
    "TextClassificationData",
    "TokenClassificationData",
    "read_text_classification",
    "detect_format",
    "read_glue_tsv",
    "read_conll",
    "TEXT_COLUMN_CANDIDATES",
]

# Columns tried, in order, when `text_column=None` (GLUE SST-2 train.tsv says `sentence`,
# its dev.tsv says `content`; many CSV/JSONL exports say `text`).
TEXT_COLUMN_CANDIDATES = ("sentence", "content", "text")

_FORMATS = ("csv", "tsv", "jsonl")
_EXTENSION_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
_INTEGER = re.compile(r"[+-]?\d+")
# A decimal number as written in data files; Python's float() would also take "nan", "inf", "1_0".
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SHOW = 80  # characters of a bad value to quote in a message


class DataError(ValueError):
    """A data file could not be read. The message names the file, the line and the bad value.

    Attributes:
        path: the file (str).
        line: 1-based line number, or None when the problem is the whole file.
        value: the offending value (a string, or None).
    """

    def __init__(self, message: str, *, path=None, line: int | None = None, value=None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.line = line
        self.value = value


def _error(path, message: str, line: int | None = None, value=None) -> DataError:
    where = f"{path}" if line is None else f"{path}, line {line}"
    return DataError(f"{where}: {message}", path=path, line=line, value=value)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


@dataclasses.dataclass(frozen=True)
class DataFormat:
    """The layout a reader found in a file, and the columns it took.

    Attributes:
        name: "glue-mrpc", "glue-rte", "glue-sts-b", "glue-cola" for the GLUE layouts; "csv",
            "tsv" or "jsonl" for any other file (columns from the arguments or the defaults).
        title: a display name ("GLUE MRPC", "TSV").
        columns: the file's columns (JSON Lines: the first object's keys); a headerless file
            (CoLA) gets GLUE's names for them.
        text_column, text_pair_column, label_column: the columns read (pair None: single texts).
        regression: the label column holds float scores (GLUE STS-B's `score`), not classes.
        header: the first line names the columns (False for CoLA: every line is data).
    """

    name: str
    title: str
    columns: tuple[str, ...]
    text_column: str
    text_pair_column: str | None
    label_column: str
    regression: bool = False
    header: bool = True

    def describe(self) -> str:
        """One line for a run log: "GLUE MRPC (pairs: #1 String / #2 String, label: Quality)"."""
        def name(column):
            # Without a header the names are GLUE's, not the file's: say where they are.
            return column if self.header else f"{column} (column {self.columns.index(column) + 1})"

        if self.text_pair_column is None:
            texts = f"text: {name(self.text_column)}"
        else:
            texts = f"pairs: {name(self.text_column)} / {name(self.text_pair_column)}"
        label = f"{'score' if self.regression else 'label'}: {name(self.label_column)}"
        return f"{self.title} ({'' if self.header else 'no header; '}{texts}, {label})"


GLUE_FORMATS = {
    f.name: f
    for f in (
        DataFormat(
            "glue-mrpc", "GLUE MRPC", ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
            "#1 String", "#2 String", "Quality",
        ),
        DataFormat(
            "glue-rte", "GLUE RTE", ("index", "sentence1", "sentence2", "label"),
            "sentence1", "sentence2", "label",
        ),
        DataFormat(
            "glue-sts-b", "GLUE STS-B",
            ("index", "genre", "filename", "year", "old_index", "source1", "source2",
             "sentence1", "sentence2", "score"),
            "sentence1", "sentence2", "score", regression=True,
        ),
        DataFormat(
            "glue-cola", "GLUE CoLA", ("source", "label", "original label", "sentence"),
            "sentence", None, "label", header=False,
        ),
    )
}
"""The GLUE TSV layouts recognised when no text column is given (see `detect_format`)."""


@dataclasses.dataclass(frozen=True)
class TextClassificationData:
    """A labelled text file (classes, or float scores for regression), read into memory.

    Attributes:
        texts: one string per example.
        text_pairs: the second segment of each example (sentence-pair tasks), or None.
        labels: classification: int32 array, shape (num_examples,), indices into `label_names`;
            regression: float32 array, shape (num_examples,), the scores.
        label_names: the label strings (`labels[i]` names `label_names[labels[i]]`); None for
            regression.
        path: the file it was read from.
        detected: the layout and columns the reader used (None when built by hand).
    """

    texts: list[str]
    text_pairs: list[str] | None
    labels: np.ndarray
    label_names: list[str] | None
    path: str
    detected: DataFormat | None = None

    def __post_init__(self):
        if self.text_pairs is not None and len(self.text_pairs) != len(self.texts):
            raise ValueError(
                f"text_pairs has {len(self.text_pairs)} entries but texts has {len(self.texts)}."
            )
        if len(self.labels) != len(self.texts):
            raise ValueError(f"labels has {len(self.labels)} entries but texts has {len(self.texts)}.")
        if self.label_names is None and not np.issubdtype(np.asarray(self.labels).dtype, np.floating):
            raise ValueError(
                f"label_names None means regression, whose labels are float scores; got "
                f"labels of dtype {np.asarray(self.labels).dtype}."
            )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def regression(self) -> bool:
        """The labels are float scores (no classes)."""
        return self.label_names is None

    @property
    def num_classes(self) -> int:
        """The head's number of outputs: the number of classes, 1 (the score) for regression."""
        return 1 if self.label_names is None else len(self.label_names)


@dataclasses.dataclass(frozen=True)
class TokenClassificationData:
    """A token-tagged (e.g. NER) file, read into memory.

    Attributes:
        sentences: one list of word strings per sentence.
        tags: one list of tag strings per sentence, aligned with `sentences`.
        label_names: the tag strings, "O" first then sorted; tag ids index this list.
        path: the file it was read from.
    """

    sentences: list[list[str]]
    tags: list[list[str]]
    label_names: list[str]
    path: str

    def __post_init__(self):
        if len(self.sentences) != len(self.tags):
            raise ValueError(f"{len(self.sentences)} sentences but {len(self.tags)} tag sequences.")

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def tag_ids(self) -> list[np.ndarray]:
        """The tags as int32 arrays of indices into `label_names`, one array per sentence."""
        index = {name: i for i, name in enumerate(self.label_names)}
        return [np.array([index[t] for t in tags], dtype=np.int32) for tags in self.tags]


# --------------------------------------------------------------------------------------------
# Low-level helpers


def _read_utf8(path) -> str:
    """The file's text; BOM removed. Raises DataError for a missing, unreadable or empty file."""
    p = Path(path)
    if not p.exists():
        raise _error(p, "file not found")
    if p.is_dir():
        raise _error(p, "is a directory, expected a data file")
    try:
        raw = p.read_bytes()
    except OSError as e:  # no read permission, an I/O error, ...
        raise _error(p, f"cannot read it: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        byte = raw[e.start]
        raise _error(
            p,
            f"not valid UTF-8: byte 0x{byte:02x} at column {column} (byte offset {e.start}); "
            "re-save the file as UTF-8",
            line=line,
            value=f"0x{byte:02x}",
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise _error(p, "file is empty")
    return text


def _lines(text: str) -> list[str]:
    """Split on "\\n" only (str.splitlines would also split on \\u2028, \\x1c, ... and so shift
    line numbers against what an editor shows); a trailing "\\r" (CRLF files) is dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _resolve_format(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {_FORMATS} or None, got {format!r}.")
        return format
    suffix = path.suffix.lower()
    if suffix not in _EXTENSION_FORMATS:
        raise _error(
            path,
            f"cannot tell the format from the extension {suffix!r}; "
            f"use one of {sorted(_EXTENSION_FORMATS)} or pass format= one of {_FORMATS}",
        )
    return _EXTENSION_FORMATS[suffix]


def _check_label_names(label_names) -> list[str] | None:
    if label_names is None:
        return None
    if isinstance(label_names, str) or not all(isinstance(n, str) for n in label_names):
        raise TypeError(f"label_names must be a list of strings, got {label_names!r}.")
    names = list(label_names)
    if not names:
        raise ValueError("label_names is empty.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"label_names has duplicates: {duplicates}.")
    return names


def _sorted_label_names(values) -> list[str]:
    """Sorted unique labels; numerically when every label is an integer ("2" < "10")."""
    unique = set(values)
    if all(_INTEGER.fullmatch(v) for v in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def _check_one_label_kind(path, labels, lines):
    """Numeric labels and text labels in one column ("1" and "positive") are two spellings of the
    classes, not four classes: a DataError naming the first line that changes kind."""
    first_kind = None
    for label, line in zip(labels, lines):
        kind = "numeric" if _DECIMAL.fullmatch(label) else "text"
        if first_kind is None:
            first_kind, first_line, first_label = kind, line, label
        elif kind != first_kind:
            raise _error(
                path,
                f"label {_show(label)} is {kind} but line {first_line} has the {first_kind} label "
                f"{_show(first_label)}: a label column holds either numbers or names, not both",
                line=line, value=label,
            )


def _label_ids(path, labels: Sequence[str], lines: Sequence[int], label_names):
    """(int32 ids, label names); an unknown label is a DataError naming its line."""
    if label_names is None:
        _check_one_label_kind(path, labels, lines)
        label_names = _sorted_label_names(labels)
    index = {name: i for i, name in enumerate(label_names)}
    ids = np.empty(len(labels), dtype=np.int32)
    for i, (label, line) in enumerate(zip(labels, lines)):
        if label not in index:
            raise _error(
                path,
                f"label {_show(label)} is not one of the known labels {label_names}",
                line=line,
                value=label,
            )
        ids[i] = index[label]
    return ids, list(label_names)


# --------------------------------------------------------------------------------------------
# Classification files


def _delimited_records(path: Path, text: str, delimiter: str, quoting: int):
    """Yield (line_number, fields) for the header and each row of a CSV/TSV file."""
    # Keep "\n" on each line so that csv can rebuild quoted fields that span lines.
    lines = re.split(r"(?<=\n)", text)
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            bad = lines[start - 1] if start - 1 < len(lines) else ""
            raise _error(path, f"malformed row ({e}): {_show(bad.rstrip())}", line=start, value=bad) from None
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        yield start, fields


def _find_column(path, name, columns, line, what="column") -> None:
    if name not in columns:
        raise _error(
            path, f"{what} {name!r} not found; {what}s found: {list(columns)}", line=line, value=name
        )


def _auto_text_column(path, columns, line, what="column") -> str:
    for candidate in TEXT_COLUMN_CANDIDATES:
        if candidate in columns:
            return candidate
    raise _error(
        path,
        f"no text {what} found (looked for {list(TEXT_COLUMN_CANDIDATES)}); "
        f"{what}s found: {list(columns)}; pass text_column=",
        line=line,
    )


def _glue_format(first: Sequence[str], label_column: str | None) -> DataFormat | None:
    """The GLUE layout whose header is `first`; CoLA (no header) when `first` looks like its data
    row: four fields, an integer label second, and no field named like a column. `label_column`
    must be unset, "label" (the jobs' default) or the layout's own."""
    fields = tuple(f.strip() for f in first)
    found = None
    for layout in GLUE_FORMATS.values():
        if layout.header and fields == layout.columns:
            found = layout
    cola = GLUE_FORMATS["glue-cola"]
    if (
        len(fields) == len(cola.columns)
        and _INTEGER.fullmatch(fields[1])
        and fields[3]
        and not set(fields) & {*TEXT_COLUMN_CANDIDATES, "label"}
    ):
        found = cola
    if found is None or label_column not in (None, "label", found.label_column):
        return None
    return found


def _delimited_format(path, fmt, line, first, text_column, label_column, text_pair_column) -> DataFormat:
    """The layout of a CSV/TSV file from its first record (`first`, at `line`) and the arguments."""
    if fmt == "tsv" and text_column is None and text_pair_column is None:
        glue = _glue_format(first, label_column)
        if glue is not None:
            return glue
    header = [h.strip() for h in first]
    seen = set()
    for h in header:
        if h in seen:
            raise _error(path, f"duplicate column {h!r} in header {header}", line=line, value=h)
        seen.add(h)
    if text_column is None:
        text_column = _auto_text_column(path, header, line)
    if label_column is None:
        label_column = "label"
    for name in (text_column, label_column, text_pair_column):
        if name is not None:
            _find_column(path, name, header, line)
    return DataFormat(fmt, fmt.upper(), tuple(header), text_column, text_pair_column, label_column)


def _delimited(path: Path, text: str, fmt: str):
    if fmt == "tsv":
        return _delimited_records(path, text, "\t", csv.QUOTE_NONE)
    return _delimited_records(path, text, ",", csv.QUOTE_MINIMAL)


def _read_delimited(path: Path, text: str, fmt: str, text_column, label_column, text_pair_column):
    records = _delimited(path, text, fmt)
    try:
        first_line, first = next(records)
    except StopIteration:
        raise _error(path, "file is empty") from None
    found = _delimited_format(path, fmt, first_line, first, text_column, label_column, text_pair_column)
    if not found.header:
        records = itertools.chain([(first_line, first)], records)
    columns = list(found.columns)
    t, lab = columns.index(found.text_column), columns.index(found.label_column)
    p = None if found.text_pair_column is None else columns.index(found.text_pair_column)
    layout = f"{found.title} columns {columns}" if found.name.startswith("glue-") else f"{columns}"
    label_what = "score" if found.regression else "label"

    texts, pairs, labels, lines = [], [], [], []
    for line, fields in records:
        if len(fields) != len(columns):
            raise _error(
                path,
                f"expected {len(columns)} fields ({layout}) but found {len(fields)}: {_show(fields)}",
                line=line,
                value=fields,
            )
        texts.append(_nonempty(path, fields[t], found.text_column, line))
        if p is not None:
            pairs.append(_nonempty(path, fields[p], found.text_pair_column, line))
        labels.append(_nonempty(path, fields[lab], found.label_column, line, what=label_what))
        lines.append(line)
    return texts, (pairs if p is not None else None), labels, lines, found


def _nonempty(path, value: str, column: str, line: int, what="text") -> str:
    value = value.strip()
    if not value:
        raise _error(path, f"empty {what} in column {column!r}", line=line, value=value)
    return value


def _read_jsonl(path: Path, text: str, text_column, label_column, text_pair_column, scores: bool):
    """`scores`: float labels are allowed (regression); otherwise a label is a string or an integer."""
    label_column = "label" if label_column is None else label_column
    texts, pairs, labels, lines, keys = [], [], [], [], None
    for line, raw in enumerate(_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            hint = ""
            if raw.lstrip().startswith("["):
                hint = " (a JSON array? expected JSON Lines: one object a line)"
            raise _error(path, f"invalid JSON ({e.msg}){hint}: {_show(raw)}", line=line, value=raw) from None
        if not isinstance(record, dict):
            raise _error(path, f"expected a JSON object, got {_show(record)}", line=line, value=record)
        if keys is None:
            keys = tuple(record)
        if text_column is None:
            text_column = _auto_text_column(path, list(record), line, what="key")
        for name in (text_column, label_column, text_pair_column):
            if name is not None:
                _find_column(path, name, list(record), line, what="key")
        texts.append(_json_text(path, record[text_column], text_column, line))
        if text_pair_column is not None:
            pairs.append(_json_text(path, record[text_pair_column], text_pair_column, line))
        label = record[label_column]
        # bool is an int subclass: `true` as a class label is almost surely a mistake.
        kinds = (str, int, float) if scores else (str, int)
        if isinstance(label, bool) or not isinstance(label, kinds):
            expected = "a number or a string" if scores else "a string or an integer"
            raise _error(
                path, f"label in key {label_column!r} must be {expected}, got {_show(label)}",
                line=line, value=label,
            )
        labels.append(_nonempty(path, str(label), label_column, line, what="score" if scores else "label"))
        lines.append(line)
    if not texts:
        raise _error(path, "file is empty")
    found = DataFormat("jsonl", "JSON Lines", keys, text_column, text_pair_column, label_column)
    return texts, (pairs if text_pair_column is not None else None), labels, lines, found


def _json_text(path, value, key, line) -> str:
    if not isinstance(value, str):
        raise _error(path, f"expected a string in key {key!r}, got {_show(value)}", line=line, value=value)
    return _nonempty(path, value, key, line)


def _scores(path, values: Sequence[str], lines: Sequence[int], column: str) -> np.ndarray:
    """float32 scores; a value that is not a decimal number is a DataError naming its line."""
    scores = np.empty(len(values), dtype=np.float32)
    for i, (value, line) in enumerate(zip(values, lines)):
        if not _DECIMAL.fullmatch(value):
            raise _error(
                path, f"score {_show(value)} in column {column!r} is not a number", line=line, value=value
            )
        scores[i] = float(value)
    return scores


def read_text_classification(
    path,
    text_column: str | None = None,
    label_column: str | None = None,
    text_pair_column: str | None = None,
    format: str | None = None,
    label_names: Sequence[str] | None = None,
    regression: bool | None = None,
) -> TextClassificationData:
    """Read a labelled text file (CSV, TSV or JSON Lines): classes, or float scores for regression.

    With no text column given, a TSV in a GLUE layout (MRPC, RTE, STS-B by their header; CoLA,
    which has none, by its four columns) is read with that layout's columns; `detected` on the
    result says which layout and columns were used (see `detect_format`).

    Args:
        path: the file (str or os.PathLike).
        text_column: column (JSON key) holding the text; None picks the GLUE layout's, else the
            first of `TEXT_COLUMN_CANDIDATES` ("sentence", "content", "text") that the file has.
        label_column: column holding the label (a string or an integer; a number for regression);
            None (or "label") means "label", or the GLUE layout's (MRPC: "Quality") when the text
            column comes from the layout.
        text_pair_column: column holding the second segment of sentence-pair tasks, or None.
        format: "csv", "tsv" or "jsonl"; None infers it from the extension
            (.csv, .tsv, .jsonl/.json).
        label_names: fixes the label -> id mapping (pass the training set's `label_names` when
            reading dev/test, so that ids agree); a label outside it is an error. None: the
            sorted unique labels (numerically when all are integers: ["0", "1", "2", "10"]).
            Must be None for regression.
        regression: True reads the label column as float scores; None lets the layout decide
            (GLUE STS-B's `score`: regression; anything else: classes); False asks for classes
            and refuses a layout whose labels are scores.

    Returns:
        TextClassificationData; for regression `labels` is float32 and `label_names` None. Texts
        are stripped of surrounding whitespace.

    Raises:
        DataError: missing/empty/non-UTF-8 file, missing column, wrong field count, empty text
            or label, unknown label, a score that is not a number. The message names the file,
            the line and the value.
    """
    path_ = Path(os.fspath(path))
    label_names = _check_label_names(label_names)
    fmt = _resolve_format(path_, format)
    text = _read_utf8(path_)
    if fmt == "jsonl":
        texts, pairs, labels, lines, found = _read_jsonl(
            path_, text, text_column, label_column, text_pair_column, scores=bool(regression)
        )
    else:
        texts, pairs, labels, lines, found = _read_delimited(
            path_, text, fmt, text_column, label_column, text_pair_column
        )
    if not texts:
        raise _error(path_, "no data rows after the header")
    if regression is False and found.regression:
        raise _error(
            path_,
            f"column {found.label_column!r} holds float scores ({found.title}), not classes: "
            "read it as regression",
            value=found.label_column,
        )
    if regression and not found.regression:
        found = dataclasses.replace(found, regression=True)
    if found.regression:
        if label_names is not None:
            raise _error(
                path_,
                f"label_names {label_names} given, but column {found.label_column!r} holds float "
                "scores (regression), not classes",
            )
        scores = _scores(path_, labels, lines, found.label_column)
        return TextClassificationData(
            texts=texts, text_pairs=pairs, labels=scores, label_names=None, path=str(path_), detected=found
        )
    ids, names = _label_ids(path_, labels, lines, label_names)
    return TextClassificationData(
        texts=texts, text_pairs=pairs, labels=ids, label_names=names, path=str(path_), detected=found
    )


def detect_format(
    path,
    text_column: str | None = None,
    label_column: str | None = None,
    text_pair_column: str | None = None,
    format: str | None = None,
) -> DataFormat:
    """The layout `read_text_classification` would use for `path` with these arguments, from the
    file's first record only: e.g. `detect_format(p).regression` is True for GLUE STS-B.

    Raises:
        DataError: as `read_text_classification`, for the file and its first record.
    """
    path_ = Path(os.fspath(path))
    fmt = _resolve_format(path_, format)
    text = _read_utf8(path_)
    if fmt == "jsonl":
        lines = _lines(text)
        first = next(i for i, line in enumerate(lines) if line.strip())  # _read_utf8: not all blank
        return _read_jsonl(
            path_, "\n".join(lines[: first + 1]), text_column, label_column, text_pair_column, scores=True
        )[-1]
    try:
        line, first = next(_delimited(path_, text, fmt))
    except StopIteration:
        raise _error(path_, "file is empty") from None
    return _delimited_format(path_, fmt, line, first, text_column, label_column, text_pair_column)


def read_glue_tsv(path, label_names: Sequence[str] | None = None) -> TextClassificationData:
    """Read a GLUE TSV: SST-2 style (a `label` column and a text column named `sentence`,
    `content` or `text`: SST-2's train.tsv and dev.tsv name it differently), or the MRPC, RTE,
    STS-B (float scores, regression) and CoLA (no header) layouts."""
    return read_text_classification(path, format="tsv", label_names=label_names)


# --------------------------------------------------------------------------------------------
# CoNLL


def _conll_label_names(tags) -> list[str]:
    unique = set(tags)
    rest = sorted(unique - {"O"})
    return (["O"] if "O" in unique else []) + rest


def read_conll(
    path, label_names: Sequence[str] | None = None, tag_column: int = 1
) -> TokenClassificationData:
    """Read a CoNLL-style token-tagged file.

    One ``TOKEN TAG [extra ...]`` a line, whitespace separated (extra columns are ignored); a blank
    line ends a sentence; ``-DOCSTART-`` lines are skipped.

    Args:
        path: the file.
        label_names: fixes the tag -> id mapping (pass the training set's); a tag outside it is an
            error. None: "O" first, then the other tags sorted.
        tag_column: which whitespace-separated column holds the tag (1 = the second; the original
            four-column CoNLL-2003 files keep it last: pass -1).

    Raises:
        DataError: missing/empty/non-UTF-8 file, a line with no tag, an unknown tag.
    """
    path_ = Path(os.fspath(path))
    label_names = _check_label_names(label_names)
    text = _read_utf8(path_)
    allowed = None if label_names is None else set(label_names)
    sentences, tags = [], []
    words, word_tags = [], []
    min_columns = tag_column + 1 if tag_column >= 0 else max(2, -tag_column + 1)

    def end_sentence():
        if words:
            sentences.append(list(words))
            tags.append(list(word_tags))
            words.clear()
            word_tags.clear()

    for line, raw in enumerate(_lines(text), start=1):
        fields = raw.split()
        if not fields:
            end_sentence()
            continue
        if fields[0] == "-DOCSTART-":
            end_sentence()
            continue
        if len(fields) < min_columns:
            raise _error(
                path_, f"token {_show(fields[0])} has no tag (expected 'TOKEN TAG ...'): {_show(raw)}",
                line=line, value=raw,
            )
        tag = fields[tag_column]
        if allowed is not None and tag not in allowed:
            raise _error(
                path_, f"tag {_show(tag)} is not one of the known tags {label_names}", line=line, value=tag
            )
        words.append(fields[0])
        word_tags.append(tag)
    end_sentence()
    if not sentences:
        raise _error(path_, "no sentences found")
    if label_names is None:
        label_names = _conll_label_names(t for ts in tags for t in ts)
    return TokenClassificationData(
        sentences=sentences, tags=tags, label_names=list(label_names), path=str(path_)
    )
