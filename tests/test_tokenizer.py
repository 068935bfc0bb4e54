"""tfdistil.text: WordPiece tokenizer parity with Hugging Face, packing, saving, vocab learning."""
import json
import unicodedata

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistil.text import WordPieceTokenizer, learn_vocabulary, load_vocabulary, save_vocabulary
from tfdistil.text.vocab import count_words
from tfdistil.text.packing import first_piece_values, pack_words, spread_word_labels
from tfdistil.text.words import split_words

import tokenizers
import transformers
from transformers.models.bert.tokenization_bert import load_vocab  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# ----------------------------------------------------------------------------- helpers


def read_sst2(path, limit=None):
    """Sentences of an SST-2 TSV (header, then `label<TAB>text`)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t", 1)[1] for line in lines[:limit]]


def read_conll_words(path):
    """Sentences of a CoNLL-2003 file as lists of tokens (first column), no -DOCSTART-."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields:
            if current:
                sentences.append(current)
            current = []
        elif fields[0] != "-DOCSTART-":
            current.append(fields[0])
    if current:
        sentences.append(current)
    return sentences


def ragged_to_lists(ragged):
    """`RaggedTensor.to_list()`, but fast for big 3-D tensors."""
    values = ragged.flat_values.numpy().tolist()
    for splits in reversed(ragged.nested_row_splits):
        splits = splits.numpy().tolist()
        values = [values[start:end] for start, end in zip(splits[:-1], splits[1:])]
    return values


def unpadded(outputs, key="token_ids"):
    """Rows of `outputs[key]` without padding, as lists of ints."""
    values, mask = outputs[key].numpy(), outputs["padding_mask"].numpy()
    return [row[m == 1].tolist() for row, m in zip(values, mask)]


def assert_all_equal(texts, ours, theirs, what):
    mismatches = [(t, a, b) for t, a, b in zip(texts, ours, theirs) if a != b]
    if mismatches:
        examples = "\n".join(f"  {t!r}\n    ours {a}\n    hf   {b}" for t, a, b in mismatches[:5])
        pytest.fail(f"{what}: {len(mismatches)} of {len(texts)} differ, e.g.\n{examples}")


def hf_words(text, lowercase=True, strip_accents=None):
    """Words as Hugging Face `tokenizers` splits them before WordPiece."""
    normalizer = tokenizers.normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents,
        lowercase=lowercase,
    )
    pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    return [w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]


def our_words(text, lowercase=True, strip_accents=None):
    words = split_words(tf.constant([text]), lowercase=lowercase, strip_accents=strip_accents)
    return [w.decode("utf-8") for w in words.to_list()[0]]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def vocab_path(minilm_dir):
    return minilm_dir / "vocab.txt"


@pytest.fixture(scope="module")
def tokenizer(vocab_path):
    return WordPieceTokenizer(vocab_path, sequence_length=512, pad_to_sequence_length=False)


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    """`tokenizers` from the checkpoint's tokenizer.json, its [CLS]/[SEP] post-processor kept."""
    hf = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    hf.no_padding()  # the file turns on fixed padding and truncation at 128
    hf.no_truncation()
    return hf


@pytest.fixture(scope="module")
def hf_bert(vocab_path):
    # transformers>=5: BertTokenizer is the `tokenizers`-backed class and silently ignores
    # `vocab_file=` (it would build a 5-token vocabulary); pass the loaded vocab instead.
    hf = transformers.BertTokenizer(vocab=load_vocab(str(vocab_path)))
    assert hf.vocab_size == 30522
    return hf


@pytest.fixture(scope="module")
def hf_legacy(vocab_path):
    """The pure-Python BertTokenizer of transformers<5 (BasicTokenizer + WordpieceTokenizer)."""
    from transformers.models.bert import BertTokenizerLegacy

    return BertTokenizerLegacy(vocab_file=str(vocab_path))


@pytest.fixture(scope="module")
def sst2_dev(shared_data):
    return read_sst2(shared_data / "sst2" / "dev.tsv")


@pytest.fixture(scope="module")
def conll_valid(shared_data):
    return read_conll_words(shared_data / "conll2003" / "valid.txt")


# ----------------------------------------------------------------------------- parity


def test_parity_sst2_dev(tokenizer, hf_tokenizer, sst2_dev):
    assert len(sst2_dev) == 872
    ours = unpadded(tokenizer(tf.constant(sst2_dev)))
    theirs = [e.ids for e in hf_tokenizer.encode_batch(sst2_dev)]
    assert_all_equal(sst2_dev, ours, theirs, "SST-2 dev token_ids")


def test_parity_conll_valid(tokenizer, hf_tokenizer, conll_valid):
    assert len(conll_valid) == 3250
    texts = [" ".join(words) for words in conll_valid]
    ours = unpadded(tokenizer(tf.constant(texts)))
    theirs = [e.ids for e in hf_tokenizer.encode_batch(texts)]
    assert_all_equal(texts, ours, theirs, "CoNLL-2003 valid token_ids")


def test_tokenize_words_matches_hf_word_ids(tokenizer, hf_tokenizer, conll_valid):
    """Word -> wordpieces alignment (NER labels) equals HF's `is_pretokenized` word_ids."""
    words = tf.RaggedTensor.from_row_lengths(
        [word for sentence in conll_valid for word in sentence],
        [len(sentence) for sentence in conll_valid],
    )
    pieces = ragged_to_lists(tokenizer.tokenize_words(words))
    theirs = []
    encodings = hf_tokenizer.encode_batch(conll_valid, is_pretokenized=True)
    for words, encoding in zip(conll_valid, encodings):
        per_word = [[] for _ in words]
        for token_id, word_id in zip(encoding.ids, encoding.word_ids):
            if word_id is not None:  # [CLS] / [SEP]
                per_word[word_id].append(token_id)
        theirs.append(per_word)
    texts = [" ".join(words) for words in conll_valid]
    assert_all_equal(texts, pieces, theirs, "CoNLL-2003 valid word pieces")
    # Splitting into words first changes nothing for CoNLL tokens (no spaces inside).
    flat = [sum(row, []) for row in pieces]
    assert flat == tokenizer.tokenize(tf.constant(texts)).to_list()


def test_parity_pairs_longest_first(vocab_path, hf_bert, sst2_dev):
    tokenizer = WordPieceTokenizer(vocab_path, sequence_length=24)
    first, second = sst2_dev[:-1], sst2_dev[1:]
    outputs = tokenizer(tf.constant(first), tf.constant(second))
    assert outputs["token_ids"].shape == (871, 24)
    theirs = hf_bert(first, second, truncation="longest_first", max_length=24)
    texts = [f"{a} ||| {b}" for a, b in zip(first, second)]
    assert_all_equal(texts, unpadded(outputs), theirs["input_ids"], "pair token_ids")
    assert_all_equal(
        texts, unpadded(outputs, "segment_ids"), theirs["token_type_ids"], "pair segment_ids"
    )
    # The data exercise truncation, including ties that leave an odd token over.
    lengths = [(len(a), len(b)) for a, b in zip(
        tokenizer.tokenize(tf.constant(first)).to_list(),
        tokenizer.tokenize(tf.constant(second)).to_list(),
    )]
    assert sum(a + b > 21 for a, b in lengths) > 700
    assert any(a == b and a > 10 for a, b in lengths)


@pytest.mark.parametrize(
    "lowercase, strip_accents", [(False, None), (False, True), (True, None), (True, False)]
)
def test_parity_cased_and_accent_options(lowercase, strip_accents):
    text = "Héllo WORLD, Café naïve Zürich über-cool ÉCOLE Ωmega Straße! e\u0301t\u00e9 ÅSA"
    words = ["Héllo", "hello", "WORLD", "world", "Café", "café", "cafe", "naïve", "naive",
             "Zürich", "zürich", "zurich", "über", "uber", "cool", "ÉCOLE", "école", "ecole",
             "Straße", "straße", "été", "ete", "ASA", "asa"]
    variants = [text, text.lower(), unicodedata.normalize("NFD", text),
                unicodedata.normalize("NFD", text.lower())]
    chars = sorted({c for v in variants for c in v if not c.isspace()})
    vocab = SPECIALS + words + chars + [f"##{c}" for c in chars]
    ours = WordPieceTokenizer(vocab, lowercase=lowercase, strip_accents=strip_accents)
    hf = transformers.BertTokenizer(
        vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=lowercase,
        strip_accents=strip_accents,
    )
    got = ours.tokenize(tf.constant([text])).to_list()[0]
    expected = hf(text, add_special_tokens=False)["input_ids"]
    assert [vocab[i] for i in got] == [vocab[i] for i in expected]
    assert our_words(text, lowercase, strip_accents) == hf_words(text, lowercase, strip_accents)


def test_detokenize_matches_hf_decoder(tokenizer, minilm_dir, sst2_dev):
    texts = sst2_dev[:200]
    outputs = tokenizer(tf.constant(texts))
    ours = tokenizer.detokenize(outputs["token_ids"], skip_special_tokens=True).numpy()
    decoder = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    decoder.decoder = tokenizers.decoders.WordPiece(prefix="##", cleanup=False)
    theirs = decoder.decode_batch(unpadded(outputs), skip_special_tokens=True)
    assert [s.decode("utf-8") for s in ours] == theirs
    # Without skipping, special tokens and padding come back as their strings.
    raw = tokenizer.detokenize(tf.ragged.constant([[101, 7592, 102]])).numpy()[0]
    assert raw == b"[CLS] hello [SEP]"


# ----------------------------------------------------------------------------- exotic Unicode

# (text, HF `tokenizers` words == ours?) -- every case is also checked at the token level.
EXOTIC_AGREE = [
    "Crème brûlée à São Paulo, Ångström!",  # accents (NFD + strip Mn)
    "我爱北京天安门。",  # CJK ideographs, ideographic full stop
    "こんにちは 안녕하세요",  # kana and Hangul are not "CJK": words; Hangul NFD -> jamo
    "I love it 😍🔥! 👍🏽",  # emoji: one [UNK] word each run
    "a\x00b\x07c\ufffdd\x1be",  # NUL, BEL, U+FFFD, ESC removed
    "ＦＵＬＬ－ＷＩＤＴＨ　１２３！",  # full-width: no NFKC, so [UNK]s and punctuation
    "ﬁnance ﬂow œuvre Ⅻ ½",  # ligatures / compatibility characters are not decomposed
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u00adsoft",  # Cf characters removed
    "a\u00a0b\u2009c\u3000d\u2028e\u2029f\tg\nh\ri",  # NBSP and other spaces split
    "İSTANBUL ıi ǅemal ß ẞ",  # case mappings
    "ΟΔΟΣ ΣΟΦΟΣ",  # capital sigma lowercases to σ character by character, never ς
    "hello [MASK] world[SEP]x [unk] [UNK]",  # special tokens written in the text
    "a" * 100 + " " + "b" * 101 + " x",  # 100 characters is a word, 101 is [UNK]
    "¿Qué? ¡Sí! «guillemets» „quotes“ — dash… §5 $3+4^2 `x` ~y |z|",  # punctuation
    "\ue000private\U000F0000use",  # private-use (Co) removed
    "\u0915\u093f\u0924\u093e\u092c",  # Devanagari: vowel signs are Mc (kept), not Mn
]

# Where HF `tokenizers` (Unicode tables of its `unicode_categories` crate, ~Unicode 9 for
# categories, but a recent Rust std for case mapping) and ours (RE2 / ICU tables in
# TensorFlow) disagree. Each entry: text, HF words, our words. Documented in
# docs_tokenizer_notes.md.
EXOTIC_DIFFER = [
    # Unicode 14 format character: RE2 knows it is Cf (removed), HF does not.
    ("a\u0890b", ["a\u0890b"], ["ab"]),
    # Unicode 14 bracket (Ps): we split on it, HF does not.
    ("a\u2e55b", ["a\u2e55b"], ["a", "\u2e55", "b"]),
    # Unicode 11+ nonspacing mark (Mn): we strip it when stripping accents, HF keeps it.
    ("a\u08d3b", ["a\u08d3b"], ["ab"]),
    # Unicode 14 capital letter (Vithkuqi A): HF lowercases it, TensorFlow's ICU does not.
    ("\U00010570", ["\U00010597"], ["\U00010570"]),
    # Category changed in Unicode 12 (Po -> So): HF still splits on it as punctuation.
    ("a\u166db", ["a", "\u166d", "b"], ["a\u166db"]),
]


@pytest.mark.parametrize("text", EXOTIC_AGREE)
def test_exotic_unicode_agrees_with_hf(text, tokenizer, hf_tokenizer):
    assert our_words(text) == hf_words(text)
    ours = unpadded(tokenizer(tf.constant([text])))[0]
    assert ours == hf_tokenizer.encode(text).ids


@pytest.mark.parametrize("text, theirs, ours", EXOTIC_DIFFER)
def test_exotic_unicode_known_differences(text, theirs, ours):
    assert hf_words(text) == theirs
    assert our_words(text) == ours


def test_known_differences_with_legacy_python_tokenizer(tokenizer, hf_bert, hf_legacy):
    """transformers' pure-Python BertTokenizer (`BertTokenizerLegacy`) differs from its
    `tokenizers`-backed BertTokenizer in a few places; we follow the latter."""
    def ours(text):
        ids = tokenizer.tokenize(tf.constant([text])).to_list()[0]
        return [tokenizer.id_to_token(i) for i in ids]

    # Final sigma: Python's str.lower() is context-sensitive.
    assert ours("ΟΔΟΣ") == hf_bert.tokenize("ΟΔΟΣ") == ["ο", "##δ", "##ο", "##σ"]
    assert hf_legacy.tokenize("ΟΔΟΣ") == ["ο", "##δ", "##ος"]
    # Unassigned code points (Cn): the Python code removes every C* character.
    assert ours("a\u0378b") == hf_bert.tokenize("a\u0378b") == ["[UNK]"]
    assert hf_legacy.tokenize("a\u0378b") == ["ab"]
    # Longest-first ties with an odd budget: the extra token goes to the second segment in
    # `tokenizers`, to the first in the Python loop.
    pair = ("one two three four", "alpha beta gamma delta")
    short = WordPieceTokenizer(tokenizer.get_vocabulary(), sequence_length=8)
    got = short(tf.constant([pair[0]]), tf.constant([pair[1]]))["token_ids"].numpy()[0].tolist()
    assert got == hf_bert(*pair, truncation="longest_first", max_length=8)["input_ids"]
    assert [tokenizer.id_to_token(i) for i in got] == [
        "[CLS]", "one", "two", "[SEP]", "alpha", "beta", "gamma", "[SEP]"]
    legacy = hf_legacy(*pair, truncation="longest_first", max_length=8)["input_ids"]
    assert [tokenizer.id_to_token(i) for i in legacy] == [
        "[CLS]", "one", "two", "three", "[SEP]", "alpha", "beta", "[SEP]"]


@pytest.mark.parametrize(
    "raw", [b"\xff\xfeabc def", b"caf\xc3", b"ok \xe2\x82 text", b"x\xf0\x9f\x98y", b"\xc0\xafover"]
)
def test_invalid_utf8_like_decode_with_replace(raw, tokenizer, hf_tokenizer):
    """Bytes that are not UTF-8 act as U+FFFD (then removed), as after
    `raw.decode("utf-8", errors="replace")` on the Python side."""
    ours = tokenizer.tokenize(tf.constant([raw])).to_list()[0]
    expected = hf_tokenizer.encode(raw.decode("utf-8", errors="replace"), add_special_tokens=False)
    assert ours == expected.ids


def test_cased_no_nfc_like_tokenizers():
    """Cased, no accent stripping: decomposed input stays decomposed (no NFC), as in
    `tokenizers`; the legacy Python tokenizer composes it first."""
    assert our_words("Cafe\u0301", lowercase=False) == hf_words("Cafe\u0301", lowercase=False)
    assert our_words("Cafe\u0301", lowercase=False) == ["Cafe\u0301"]


# ----------------------------------------------------------------------------- packing by hand

TINY_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  # 0-4
    "the", "cat", "sat", "on", "mat",  # 5-9
    "a", "dog", "##s", "run", "fast",  # 10-14
    ".", "!", "un", "##able", "[unused]",  # 15-19
]


def tiny(**kwargs):
    return WordPieceTokenizer(TINY_VOCAB, **kwargs)


def test_tiny_tokenize_and_unknowns():
    ids = tiny().tokenize(tf.constant(["The cat sat.", "dogs run", "unable zebra dogsx", ""]))
    assert ids.dtype == tf.int32
    assert ids.to_list() == [[5, 6, 7, 15], [11, 12, 13], [17, 18, 1, 1], []]


def test_tiny_single_padding_and_truncation():
    outputs = tiny(sequence_length=8)(tf.constant(["The cat sat.", "the cat sat on the mat .", ""]))
    assert {k: v.dtype for k, v in outputs.items()} == {
        "token_ids": tf.int32, "segment_ids": tf.int32, "padding_mask": tf.int32}
    np.testing.assert_array_equal(outputs["token_ids"], [
        [2, 5, 6, 7, 15, 3, 0, 0],
        [2, 5, 6, 7, 8, 5, 9, 3],  # 7 pieces, room for 6
        [2, 3, 0, 0, 0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(outputs["padding_mask"], [
        [1, 1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(outputs["segment_ids"], np.zeros((3, 8)))


def test_tiny_pairs_longest_first():
    tokenizer = tiny(sequence_length=9)  # 6 pieces of room
    outputs = tokenizer(
        tf.constant(["the cat sat on the mat", "a dog", "the cat sat on", "a"]),
        tf.constant(["a dog", "the cat sat on the mat", "a dog run fast", "b"]),
    )
    np.testing.assert_array_equal(outputs["token_ids"], [
        [2, 5, 6, 7, 8, 3, 10, 11, 3],  # a: 6 -> 4, b: 2 kept
        [2, 10, 11, 3, 5, 6, 7, 8, 3],  # a: 2 kept, b: 6 -> 4
        [2, 5, 6, 7, 3, 10, 11, 13, 3],  # tie 4/4 -> 3/3
        [2, 10, 3, 1, 3, 0, 0, 0, 0],  # fits; b is unknown
    ])
    np.testing.assert_array_equal(outputs["segment_ids"], [
        [0, 0, 0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 0, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 1, 1, 1, 1],
        [0, 0, 0, 1, 1, 0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(outputs["padding_mask"][3], [1, 1, 1, 1, 1, 0, 0, 0, 0])
    # Odd room (5) and a tie: the second segment keeps the extra token.
    tie = tiny(sequence_length=8)(tf.constant(["the cat sat on"]), tf.constant(["a dog run fast"]))
    np.testing.assert_array_equal(tie["token_ids"], [[2, 5, 6, 3, 10, 11, 13, 3]])
    np.testing.assert_array_equal(tie["segment_ids"], [[0, 0, 0, 0, 1, 1, 1, 1]])


def test_pack_words_by_hand():
    # Sentence 0: words of pieces [5], [] (only control characters), [6, 7]; sentence 1: [8, 9, 10].
    pieces = tf.ragged.constant([[[5], [], [6, 7]], [[8, 9, 10]]], dtype=tf.int32)
    ids = dict(cls_id=1, sep_id=2, pad_id=0)
    word_labels = tf.constant([11, 12, 13, 14])

    packed = pack_words(pieces, sequence_length=5, **ids)  # the empty word gets no piece
    np.testing.assert_array_equal(packed.inputs["token_ids"], [[1, 5, 6, 7, 2], [1, 8, 9, 10, 2]])
    np.testing.assert_array_equal(packed.inputs["segment_ids"], np.zeros((2, 5)))
    np.testing.assert_array_equal(packed.inputs["padding_mask"], np.ones((2, 5)))
    assert packed.word_row.numpy().tolist() == [0, 0, 0, 1]
    assert packed.kept.numpy().tolist() == [True, False, True, True]
    assert first_piece_values(packed, packed.inputs["token_ids"], -1).numpy().tolist() == [5, -1, 6, 8]

    packed = pack_words(pieces, sequence_length=5, empty_word_id=3, **ids)  # ... or [UNK] (3)
    np.testing.assert_array_equal(packed.inputs["token_ids"], [[1, 5, 3, 6, 2], [1, 8, 9, 10, 2]])
    np.testing.assert_array_equal(
        spread_word_labels(packed, word_labels), [[-100, 11, 12, 13, -100], [-100, 14, -100, -100, -100]]
    )
    # Truncated to 2 pieces: the third word loses its only first piece, hence its label.
    packed = pack_words(pieces, sequence_length=4, empty_word_id=3, pad_to_sequence_length=False, **ids)
    np.testing.assert_array_equal(packed.inputs["token_ids"], [[1, 5, 3, 2], [1, 8, 9, 2]])
    assert packed.kept.numpy().tolist() == [True, True, False, True]
    np.testing.assert_array_equal(spread_word_labels(packed, word_labels), [[-100, 11, 12, -100], [-100, 14, -100, -100]])
    # Per-batch width: the longest packed row.
    short = pack_words(tf.ragged.constant([[[5]], [[6], [7]]], dtype=tf.int32), sequence_length=8,
                       pad_to_sequence_length=False, **ids)
    np.testing.assert_array_equal(short.inputs["token_ids"], [[1, 5, 2, 0], [1, 6, 7, 2]])
    np.testing.assert_array_equal(short.inputs["padding_mask"], [[1, 1, 1, 0], [1, 1, 1, 1]])


def test_text_modules_sit_on_the_bottom_floor():
    """tfdistil.text imports no other tfdistil package; packing and words import nothing of
    tfdistil; and no two text modules import each other (the old vocab <-> wordpiece circle)."""
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "tfdistil" / "text"
    imports = {}
    for path in folder.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
        imports[path.stem] = {name for name in names if name.split(".")[0] == "tfdistil"}
    assert {"packing", "words", "vocab", "wordpiece"} <= set(imports)
    for module, names in imports.items():
        assert all(name.startswith("tfdistil.text.") for name in names), (module, names)
    assert imports["packing"] == imports["words"] == set()
    for module, names in imports.items():
        for name in names:
            assert f"tfdistil.text.{module}" not in imports.get(name.rsplit(".", 1)[-1], set()), (module, name)


def test_tiny_pad_to_longest_in_batch():
    tokenizer = tiny(sequence_length=8, pad_to_sequence_length=False)
    outputs = tokenizer(tf.constant(["the cat", "a"]))
    np.testing.assert_array_equal(outputs["token_ids"], [[2, 5, 6, 3], [2, 10, 3, 0]])
    np.testing.assert_array_equal(outputs["padding_mask"], [[1, 1, 1, 1], [1, 1, 1, 0]])
    # Still truncated to sequence_length.
    long = tokenizer(tf.constant(["the cat sat on the mat . !"]))
    assert long["token_ids"].shape == (1, 8)
    pair = tokenizer(tf.constant(["the"]), tf.constant(["cat"]))
    np.testing.assert_array_equal(pair["token_ids"], [[2, 5, 3, 6, 3]])
    np.testing.assert_array_equal(pair["segment_ids"], [[0, 0, 0, 1, 1]])


def test_tiny_pad_to_multiple_of():
    tokenizer = tiny(sequence_length=8, pad_to_sequence_length=False, pad_to_multiple_of=3)
    outputs = tokenizer(tf.constant(["the cat", "a"]))  # longest 4 -> 6
    np.testing.assert_array_equal(outputs["token_ids"], [[2, 5, 6, 3, 0, 0], [2, 10, 3, 0, 0, 0]])
    np.testing.assert_array_equal(outputs["padding_mask"], [[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(outputs["segment_ids"], np.zeros((2, 6)))
    assert tokenizer(tf.constant(["a"]))["token_ids"].shape == (1, 3)  # already a multiple
    # Rounding never passes sequence_length: 7 pieces + 2 = 9 -> truncated to 8, not 9.
    assert tokenizer(tf.constant(["the cat sat on the mat . !"]))["token_ids"].shape == (1, 8)
    assert tokenizer(tf.constant(["the cat sat on"]))["token_ids"].shape == (1, 6)
    # Ignored when every batch is padded to sequence_length anyway.
    fixed = tiny(sequence_length=8, pad_to_multiple_of=3)
    assert fixed(tf.constant(["a"]))["token_ids"].shape == (1, 8)
    # In a traced function too (the width is computed in the graph).
    traced = tf.function(lambda t: tokenizer(t)["token_ids"], input_signature=[tf.TensorSpec([None], tf.string)])
    assert traced(tf.constant(["the cat sat"])).shape == (1, 6)
    for bad in (0, -8, 2.5, True, "8"):
        with pytest.raises(ValueError, match="pad_to_multiple_of"):
            tiny(pad_to_multiple_of=bad)


def test_tiny_empty_batch():
    for pad in (True, False):
        tokenizer = tiny(sequence_length=6, pad_to_sequence_length=pad)
        empty = tf.constant([], tf.string)
        # Per-batch padding: as wide as an empty text packs ([CLS] [SEP], or [CLS] [SEP] [SEP]).
        for outputs, width in ((tokenizer(empty), 2), (tokenizer(empty, empty), 3)):
            assert outputs["token_ids"].shape == (0, 6 if pad else width)
        assert tokenizer.tokenize(empty).shape.as_list() == [0, None]


def test_tiny_vocabulary_accessors():
    tokenizer = tiny()
    assert tokenizer.vocabulary_size() == 20
    assert tokenizer.get_vocabulary() == TINY_VOCAB
    assert tokenizer.token_to_id("##able") == 18
    assert tokenizer.id_to_token(12) == "##s"
    assert (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id) == (0, 2, 3)
    with pytest.raises(ValueError, match="zebra"):
        tokenizer.token_to_id("zebra")
    with pytest.raises(ValueError, match="20"):
        tokenizer.id_to_token(20)
    words = tf.ragged.constant([["The", "dogs", "unable"], ["a"]])
    assert tokenizer.tokenize_words(words).to_list() == [[[5], [11, 12], [17, 18]], [[10]]]
    text = tokenizer.detokenize(tf.constant([[2, 11, 12, 17, 18, 3, 0]]), skip_special_tokens=True)
    assert text.numpy().tolist() == [b"dogs unable"]


# ----------------------------------------------------------------------------- graphs and saving


def test_tf_data_map_matches_eager(tokenizer, sst2_dev):
    texts = sst2_dev[:50]
    packer = WordPieceTokenizer(tokenizer.get_vocabulary(), sequence_length=32)
    eager = packer(tf.constant(texts))
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(16).map(packer)
    batches = list(dataset)
    for key in eager:
        np.testing.assert_array_equal(np.concatenate([b[key] for b in batches]), eager[key])
    pairs = tf.data.Dataset.from_tensor_slices((texts, texts[::-1])).batch(50)
    mapped = next(iter(pairs.map(lambda a, b: packer(a, b))))
    expected = packer(tf.constant(texts), tf.constant(texts[::-1]))
    for key in expected:
        np.testing.assert_array_equal(mapped[key], expected[key])


def test_saved_model_round_trip(tmp_path, tokenizer, sst2_dev):
    packer = WordPieceTokenizer(tokenizer.get_vocabulary(), sequence_length=64)

    class Serving(tf.Module):
        def __init__(self, packer):
            super().__init__()
            self.packer = packer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, text):
            return self.packer(text)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
        def serve_pair(self, text, text_pair):
            return self.packer(text, text_pair)

    module = Serving(packer)
    path = str(tmp_path / "tokenizer_savedmodel")
    tf.saved_model.save(module, path, signatures={
        "serving_default": module.serve, "pair": module.serve_pair})
    loaded = tf.saved_model.load(path)

    texts = tf.constant(sst2_dev[:40] + ["Exotic: Ünïcödé 中文 [MASK] 😍"])
    expected = packer(texts)
    for outputs in (loaded.serve(texts), loaded.signatures["serving_default"](text=texts)):
        for key in expected:
            np.testing.assert_array_equal(outputs[key], expected[key])
    pair = loaded.signatures["pair"](text=texts, text_pair=texts[::-1])
    expected = packer(texts, texts[::-1])
    for key in expected:
        np.testing.assert_array_equal(pair[key], expected[key])

    # No Python in the graph: only TF and tensorflow-text kernels that TF Serving can link.
    graph = loaded.signatures["serving_default"].graph.as_graph_def()
    op_types = {node.op for node in graph.node}
    op_types |= {node.op for f in graph.library.function for node in f.node_def}
    assert not op_types & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    assert {"FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"} <= op_types


def test_keras_serialization_round_trip(tmp_path):
    original = tiny(sequence_length=10, lowercase=True, strip_accents=False, pad_to_multiple_of=4, name="wp")
    config = original.get_config()
    for key, value in {
        "vocabulary": TINY_VOCAB, "lowercase": True, "strip_accents": False,
        "sequence_length": 10, "pad_to_sequence_length": True, "pad_to_multiple_of": 4, "cls_token": "[CLS]",
        "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]",
    }.items():
        assert config[key] == value, key
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(original))
    assert isinstance(restored, WordPieceTokenizer)
    texts = tf.constant(["The cat sat.", "dogs run fast !"])
    for key, value in original(texts).items():
        np.testing.assert_array_equal(restored(texts)[key], value)

    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, original(inputs))
    path = tmp_path / "tokenizer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[-1], WordPieceTokenizer)
    for key, value in model(texts).items():
        np.testing.assert_array_equal(loaded(texts)[key], value)


# ----------------------------------------------------------------------------- vocabulary learning


def test_learn_vocabulary(tmp_path, shared_data):
    texts = read_sst2(shared_data / "sst2" / "train.tsv", limit=2000)
    vocab = learn_vocabulary(texts, vocabulary_size=1000, progress=False)
    assert vocab[:5] == SPECIALS and vocab.index("[PAD]") == 0
    assert len(vocab) <= 1000 and len(vocab) == len(set(vocab))
    assert len(vocab) > 900  # the learner fills the budget

    tokenizer = WordPieceTokenizer(vocab)
    words = split_words(tf.constant(texts)).flat_values
    pieces = tokenizer.tokenize_words(tf.RaggedTensor.from_row_lengths(words, [len(words)]))
    assert tokenizer.unk_token_id not in pieces.flat_values.numpy()
    # Learned subwords do their job: fewer pieces than characters.
    assert len(pieces.flat_values) < 0.5 * int(tf.reduce_sum(tf.strings.length(words)))

    path = save_vocabulary(vocab, tmp_path / "vocab.txt")
    assert load_vocabulary(path) == vocab
    assert WordPieceTokenizer(path).get_vocabulary() == vocab

    # A tf.data dataset of strings is counted the same way (the learning is deterministic).
    assert count_words(tf.data.Dataset.from_tensor_slices(texts), progress=False) == count_words(
        texts, progress=False)


def test_learn_vocabulary_too_small():
    with pytest.raises(ValueError, match="too small"):
        learn_vocabulary(["abcdefghij klmnopqrst"], vocabulary_size=20, progress=False)


# ----------------------------------------------------------------------------- errors


def test_missing_vocabulary_file(tmp_path):
    missing = tmp_path / "nowhere" / "vocab.txt"
    with pytest.raises(ValueError, match=str(missing).replace("\\", "\\\\")):
        WordPieceTokenizer(missing)
    with pytest.raises(ValueError, match="nowhere"):
        WordPieceTokenizer(str(missing))


def test_missing_special_token():
    vocab = [t for t in TINY_VOCAB if t != "[MASK]"]
    with pytest.raises(ValueError, match=r"\[MASK\].*mask_token"):
        WordPieceTokenizer(vocab)
    with pytest.raises(ValueError, match="<s>"):
        WordPieceTokenizer(TINY_VOCAB, cls_token="<s>")


def test_bad_inputs():
    tokenizer = tiny()
    with pytest.raises(ValueError, match="1-D"):
        tokenizer(tf.constant("a scalar"))
    with pytest.raises(ValueError, match="1-D"):
        tokenizer(tf.constant([["a"], ["b"]]))
    with pytest.raises(ValueError, match="RaggedTensor"):
        tokenizer.tokenize_words(tf.constant([["a", "b"]]))
    with pytest.raises(ValueError, match="sequence_length"):
        tiny(sequence_length=2)
    with pytest.raises(ValueError, match="twice"):
        WordPieceTokenizer(TINY_VOCAB + ["cat"])


def test_run_tokenizer_settings_round_trip(tmp_path):
    from tfdistil.jobs.runs import load_run_tokenizer, save_run_tokenizer

    save_run_tokenizer(tiny(sequence_length=12, pad_to_sequence_length=False, pad_to_multiple_of=4), tmp_path)
    restored = load_run_tokenizer(tmp_path)
    assert (restored.sequence_length, restored.pad_to_sequence_length, restored.pad_to_multiple_of) == (12, False, 4)
    assert restored(tf.constant(["the cat"]))["token_ids"].shape == (1, 4)
    assert restored(tf.constant(["the cat sat"]))["token_ids"].shape == (1, 8)
    # tokenizer.json of a run written before the setting existed: off.
    settings_path = tmp_path / "tokenizer.json"
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    del settings["pad_to_multiple_of"]
    settings_path.write_text(json.dumps(settings), encoding="utf-8")
    assert load_run_tokenizer(tmp_path).pad_to_multiple_of is None
