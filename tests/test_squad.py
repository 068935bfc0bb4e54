"""The SQuAD reader: windows, offsets and answer positions worked out by hand on small files, its
errors, and every answer of the shared dev set found back from its token span."""
import json

import numpy as np
import pytest

from tfdistil.data import DataError
from tfdistil.data.squad import read_squad
from tfdistil.tasks.squad_metrics import normalize_answer
from tfdistil.text import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "went", "home", "tom", "to", "denver", "in", "19",
         "##90", ".", "?", "cafe", "when"]
ID = {t: i for i, t in enumerate(VOCAB)}
CONTEXT = "Tom went home to Denver in 1990."
#          0123456789012345678901234567890
# pieces:  tom(0,3) went(4,8) home(9,13) to(14,16) denver(17,23) in(24,26) 19(27,29) ##90(29,31) .(31,32)


def write(tmp_path, data, name="s.json", version="1.1"):
    path = tmp_path / name
    path.write_text(json.dumps({"version": version, "data": data}), encoding="utf-8")
    return str(path)


def article(qas, context=CONTEXT, title="Tom"):
    return {"title": title, "paragraphs": [{"context": context, "qas": qas}]}


def qa(qid, question, answers, **extra):
    return {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers], **extra}


@pytest.fixture
def tokenizer():
    return WordPieceTokenizer(VOCAB, sequence_length=10)


def test_windows_offsets_and_answer_positions_by_hand(tmp_path, tokenizer):
    """sequence_length 10, question cut to 2 pieces: 5 context pieces a window, stride 3, so the
    9 context pieces make windows [0, 5), [3, 8), [6, 9); window positions = piece - start + 4."""
    path = write(tmp_path, [article([
        qa("q1", "who went home?", [("Denver", 17)]),
        qa("q2", "when?", [("1990", 27), ("in 1990", 24)]),
        qa("q3", "when?", [("90", 29)]),
    ])])
    data = read_squad(path, doc_stride=3, max_question_length=2)
    assert [e.qid for e in data.examples] == ["q1", "q2", "q3"]
    assert data.examples[1].answers == [("1990", 27), ("in 1990", 24)]
    f = data.features(tokenizer)
    assert f.example.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    c, s = ID["[CLS]"], ID["[SEP]"]
    assert f.token_ids[0].tolist() == [c, ID["who"], ID["went"], s, ID["tom"], ID["went"], ID["home"], ID["to"],
                                       ID["denver"], s]
    assert f.token_ids[2].tolist() == [c, ID["who"], ID["went"], s, ID["19"], ID["##90"], ID["."], s]
    assert f.segment_ids[2].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # "when?": 2 question pieces as well.
    assert f.token_ids[3][:4].tolist() == [c, ID["when"], ID["?"], s]
    assert f.token_start[0].tolist() == [-1, -1, -1, -1, 0, 4, 9, 14, 17, -1]
    assert f.token_end[0].tolist() == [-1, -1, -1, -1, 3, 8, 13, 16, 23, -1]
    assert f.token_start[1][4:9].tolist() == [14, 17, 24, 27, 29]  # pieces 3..7
    assert f.token_end[2][4:7].tolist() == [29, 31, 32]
    # Denver is piece 4: in windows 0 and 1, not 2 ([CLS]).
    assert list(zip(f.start_positions[:3], f.end_positions[:3])) == [(8, 8), (5, 5), (0, 0)]
    # 1990 (the first answer) is pieces 6-7: not in window 0.
    assert list(zip(f.start_positions[3:6], f.end_positions[3:6])) == [(0, 0), (7, 8), (4, 5)]
    # "90" starts inside "1990": the piece ##90 alone.
    assert list(zip(f.start_positions[6:], f.end_positions[6:])) == [(0, 0), (8, 8), (5, 5)]


def test_impossible_questions_and_length_changing_normalisation(tmp_path, tokenizer):
    """SQuAD v2.0 is_impossible: [CLS] in every window. "Café" normalises to "cafe" (one byte
    shorter): the piece gets the whole word's characters."""
    path = write(tmp_path, [article([qa("q1", "who?", [], is_impossible=True),
                                     qa("q2", "who?", [("Café", 4)])], context="Tom Café home")], version="v2.0")
    data = read_squad(path, max_question_length=4)
    assert data.version == "v2.0" and data.examples[0].is_impossible
    f = data.features(tokenizer)
    assert f.example.tolist() == [0, 1]
    assert (f.start_positions[0], f.end_positions[0]) == (0, 0)
    # [CLS] who ? [SEP] tom cafe home [SEP]
    assert f.token_ids[1].tolist() == [2, ID["who"], ID["?"], 3, ID["tom"], ID["cafe"], ID["home"], 3]
    assert (f.start_positions[1], f.end_positions[1]) == (5, 5)
    assert (f.token_start[1][5], f.token_end[1][5]) == (4, 9)  # bytes: é is two
    assert f.byte_to_char[1][9] == 8  # the character after "Café"


@pytest.mark.parametrize("question,match", [
    (qa("q9", "who?", [("Denver", 18)]), r"article 'Tom', question q9: answer_start 18 does not match the answer "
                                         r"text: the context there reads 'enver ', the answer is 'Denver'"),
    (qa("q9", "who?", [("Denver", 99)]), r"question q9: answer 'Denver': answer_start 99 is not a character"),
    (qa("q9", "who?", []), r"question q9: no answers"),
    (qa("q9", "who?", [("Denver", 17)], is_impossible=True), r"question q9: is_impossible is true but"),
    (qa("q9", " ", [("Denver", 17)]), r"question q9: no question text"),
])
def test_errors_name_the_article_the_question_and_the_problem(tmp_path, question, match):
    path = write(tmp_path, [article([question])])
    with pytest.raises(DataError, match=match):
        read_squad(path)


def test_file_level_errors(tmp_path):
    path = write(tmp_path, [article([qa("q1", "who?", [("Tom", 0)])]), article([qa("q1", "who?", [("Tom", 0)])],
                                                                               title="Other")])
    with pytest.raises(DataError, match=r"article 'Other', question q1: the id is used twice \(also in article 'Tom'\)"):
        read_squad(path)
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DataError, match="not SQuAD JSON"):
        read_squad(bad)
    with pytest.raises(DataError, match="cannot read"):
        read_squad(tmp_path / "missing.json")


def test_a_squad_file_is_detected_as_qa(tmp_path):
    from tfdistil.tasks import detect_task

    assert detect_task(write(tmp_path, [article([qa("q1", "who?", [("Tom", 0)])])])) == "qa"
    other = tmp_path / "x.json"
    other.write_text('{"data": [1]}', encoding="utf-8")
    assert detect_task(str(other)) == "classification"


def test_every_dev_answer_is_found_back_from_its_token_span(minilm_dir, shared_data):
    """On the shared dev set (MiniLM's vocabulary, 384 / 128 / 64): a window holding the first
    answer spans exactly the pieces that overlap it, so its text from the offsets contains the
    answer and normalises to it unless the answer starts or ends inside a word piece (e.g. "20,980"
    in "£20,980", whose first piece is "£2")."""
    tokenizer = WordPieceTokenizer(str(minilm_dir / "vocab.txt"), sequence_length=384)
    data = read_squad(shared_data / "squad" / "dev.json")
    f = data.features(tokenizer)
    found, equal, inside = set(), 0, 0
    for w in range(len(f)):
        s, e = f.start_positions[w], f.end_positions[w]
        if s == 0:
            continue
        example = data.examples[f.example[w]]
        answer, start = example.answers[0]
        context = example.context.encode("utf-8")
        a = len(example.context[:start].encode("utf-8"))
        b = a + len(answer.encode("utf-8"))
        lo, hi = f.token_start[w][s], f.token_end[w][e]
        assert lo <= a and hi >= b, (example.qid, answer)
        # Tight: the first and last pieces overlap the answer.
        assert f.token_end[w][s] > a and f.token_start[w][e] < b, (example.qid, answer)
        text = context[lo:hi].decode("utf-8")
        if normalize_answer(text) == normalize_answer(answer):
            equal += 1
        else:
            inside += 1
            assert lo < a or hi > b  # a piece crosses the answer's edge
        found.add(example.qid)
    assert len(found) == len(data)  # every question has its answer in some window
    assert len(data) == 1490 and inside <= 5 and equal > 1500
    assert np.all(f.lengths <= 384)
