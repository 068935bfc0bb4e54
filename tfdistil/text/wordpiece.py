"""In-graph BERT WordPiece tokenization with Hugging Face parity.

`WordPieceTokenizer` turns raw strings into the `token_ids`, `segment_ids` and
`padding_mask` a BERT backbone takes, with TensorFlow and tensorflow-text ops
only, so that the same layer runs eagerly, inside `tf.data`, and inside a
SavedModel served by TF Serving (which links tensorflow-text ops but runs no
Python).

The reference is Hugging Face's `BertTokenizer` (the `tokenizers`-backed one
that `transformers>=5` returns, i.e. `BertNormalizer` + `BertPreTokenizer` +
`WordPiece`). The pipeline, step by step:

1. Special tokens written literally in the text (`"[MASK]"`, `"[SEP]"`, ...)
   are matched on the raw text, before any normalization, and map to their
   own id, as Hugging Face does for its added special tokens.
2. Cleaning: invalid UTF-8 bytes, NUL, U+FFFD and "other" characters
   (Unicode categories Cc, Cf, Co, Cs) are removed; tab, newline, carriage
   return and separators (Zs, Zl, Zp) become a space.
3. Accent stripping (when `strip_accents`, by default when `lowercase`): NFD,
   then nonspacing marks (Mn) are removed.
4. Lowercasing (when `lowercase`), character by character (no final-sigma
   context rule, as `tokenizers` does).
5. Splitting on whitespace (dropped) and on punctuation and CJK ideographs
   (kept as one-character words). Punctuation is Unicode category P* plus
   every ASCII non-alphanumeric symbol (`$`, `+`, `^`, `` ` ``, ...).
6. WordPiece: greedy longest-match-first with `##` continuation; a word longer
   than 100 characters, or with no match, becomes a single unknown token.

Steps 2-5 are `tfdistil.text.words`; packing the pieces into `[CLS] a [SEP] b [SEP]`
is `tfdistil.text.packing`.

The few places where we differ on exotic Unicode: docs/tokenizer_parity.md.
"""
import numbers
import os

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from tfdistil.text.packing import merge_inner_dims, num_special_tokens, pack
from tfdistil.text.vocab import load_vocabulary
from tfdistil.text.words import normalize_text, replace_invalid_utf8, split_words  # noqa: F401 (re-exported)

# Hugging Face's WordPiece `max_input_chars_per_word`: longer words become one unknown token.
MAX_CHARS_PER_WORD = 100

# Stands in for a special token written in the text: too long a word, so exactly one piece.
_OVERLONG_WORD = "x" * (MAX_CHARS_PER_WORD + 1)


def _escape_re2(literal):
    """A RE2 pattern matching `literal` exactly (non-alphanumerics as \\x{..})."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in literal)


def _check_rank_1(text, name):
    if text.shape.rank is not None and text.shape.rank != 1:
        raise ValueError(
            f"`{name}` must be a 1-D string tensor of shape (batch,), got shape {text.shape}. "
            "Wrap a single string in a list: `tokenizer([\"some text\"])`."
        )


def _to_string_tensor(text, name):
    if isinstance(text, tf.RaggedTensor):
        raise ValueError(f"`{name}` must be a dense 1-D string tensor, got a RaggedTensor.")
    text = tf.convert_to_tensor(text)
    if text.dtype != tf.string:
        raise ValueError(f"`{name}` must be a string tensor, got dtype {text.dtype.name}.")
    _check_rank_1(text, name)
    return text


def _is_int_at_least(value, minimum):
    """An int (not a bool) of at least `minimum`."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


@keras.saving.register_keras_serializable(package="tfdistil")
class WordPieceTokenizer(keras.layers.Layer):
    """BERT WordPiece tokenizer and packer, as a Keras layer (Hugging Face parity).

    Calling the layer on a batch of strings returns the BERT inputs
    `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, truncated to `sequence_length`
    (longest-first for pairs) and padded with the pad token's id.

    Only TensorFlow and tensorflow-text ops run in the graph (`UnicodeTranscode`,
    `StaticRegexReplace`, `StringLower`, `StringLength`, `NormalizeUTF8`,
    `RegexSplitWithOffsets`, `FastWordpieceTokenizeWithOffsets`, gathers), so the
    layer can be used in `tf.data.Dataset.map` and in SavedModel serving functions
    for TF Serving.
    It cannot run under XLA (`jit_compile`): strings stay outside compiled steps.

    Args:
        vocabulary: path to a `vocab.txt` file (one token a line, the line number
            is the id), or a list of token strings.
        lowercase: lowercase the text before WordPiece (uncased vocabularies).
        strip_accents: remove accents (NFD, then drop nonspacing marks). `None`
            follows `lowercase`, as Hugging Face's `BertTokenizer` does.
        sequence_length: total length of the packed output, special tokens included.
        pad_to_sequence_length: pad every batch to `sequence_length`; if False, pad
            only to the longest packed sequence of the batch (per-batch padding).
        pad_to_multiple_of: with per-batch padding, round the batch's width up to a
            multiple of this (never past `sequence_length`), as Hugging Face tokenizers'
            option of that name: a model then meets at most `sequence_length /
            pad_to_multiple_of` widths instead of one per length, which bounds what compiles
            per shape (XLA, `jit_compile`). `None`: off.
        cls_token, sep_token, pad_token, unk_token, mask_token: special token
            strings; each must be in the vocabulary.
        **kwargs: passed to `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        text: string tensor of shape (batch,). A scalar string raises a ValueError
            (wrap it in a list).
        text_pair: optional string tensor of shape (batch,), the second segment.

    Returns:
        A dict of int32 tensors of shape (batch, sequence_length) (or
        (batch, longest) when `pad_to_sequence_length=False`, longest rounded up to
        `pad_to_multiple_of`): `token_ids`,
        `segment_ids` (0 for `[CLS] a [SEP]`, 1 for `b [SEP]`) and `padding_mask`
        (1 on real tokens, 0 on padding).

    Example:

    >>> tokenizer = WordPieceTokenizer("vocab.txt", sequence_length=8)
    >>> tokenizer(tf.constant(["The quick fox."]))["token_ids"]
    """

    def __init__(
        self,
        vocabulary,
        lowercase=True,
        strip_accents=None,
        sequence_length=128,
        pad_to_sequence_length=True,
        pad_to_multiple_of=None,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]",
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        # Strings in, int32 dicts out: keep Keras from casting the inputs to floats.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocabulary(vocabulary)
        elif isinstance(vocabulary, (list, tuple)):
            vocabulary = [str(token) for token in vocabulary]
        else:
            raise ValueError(
                "`vocabulary` must be a path to a vocab.txt file or a list of strings, "
                f"got {type(vocabulary).__name__}."
            )
        _check_vocabulary(vocabulary)
        if not _is_int_at_least(sequence_length, num_special_tokens(pair=True)):
            raise ValueError(
                "`sequence_length` must be an int >= 3 (room for [CLS] a [SEP] b [SEP] "
                f"needs at least 3), got {sequence_length!r}."
            )

        if pad_to_multiple_of is not None and not _is_int_at_least(pad_to_multiple_of, 1):
            raise ValueError(f"`pad_to_multiple_of` must be a positive int or None, got {pad_to_multiple_of!r}.")

        self.vocabulary = vocabulary
        self.lowercase = bool(lowercase)
        self.strip_accents = None if strip_accents is None else bool(strip_accents)
        self.sequence_length = int(sequence_length)
        self.pad_to_sequence_length = bool(pad_to_sequence_length)
        self.pad_to_multiple_of = None if pad_to_multiple_of is None else int(pad_to_multiple_of)
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.pad_token = pad_token
        self.unk_token = unk_token
        self.mask_token = mask_token

        self._token_to_id = {token: i for i, token in enumerate(vocabulary)}
        special_tokens = {
            "cls_token": cls_token,
            "sep_token": sep_token,
            "pad_token": pad_token,
            "unk_token": unk_token,
            "mask_token": mask_token,
        }
        for argument, token in special_tokens.items():
            if token not in self._token_to_id:
                raise ValueError(
                    f"The special token {token!r} (`{argument}`) is not in the vocabulary "
                    f"of {len(vocabulary)} tokens. Add it to the vocabulary or pass the "
                    f"vocabulary's own token as `{argument}`."
                )
        self.cls_token_id = self._token_to_id[cls_token]
        self.sep_token_id = self._token_to_id[sep_token]
        self.pad_token_id = self._token_to_id[pad_token]
        self.unk_token_id = self._token_to_id[unk_token]
        self.mask_token_id = self._token_to_id[mask_token]

        # Longest first, so that a special token that contains another one wins.
        self._special_tokens = sorted(set(special_tokens.values()), key=len, reverse=True)
        self._special_ids = [self._token_to_id[t] for t in self._special_tokens]
        self._special_pattern = "|".join(_escape_re2(t) for t in self._special_tokens)

        # Words of more than MAX_CHARS_PER_WORD characters are replaced by the unknown
        # token before WordPiece, so the byte limit only has to admit every shorter word
        # (at most 4 UTF-8 bytes a character).
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary,
            suffix_indicator="##",
            max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
            token_out_type=tf.int32,
            unknown_token=unk_token,
            no_pretokenization=True,
            support_detokenization=False,
        )
        self.built = True

    # ------------------------------------------------------------------ vocabulary

    def vocabulary_size(self):
        """Number of tokens in the vocabulary."""
        return len(self.vocabulary)

    def get_vocabulary(self):
        """The vocabulary as a list of strings (index = token id)."""
        return list(self.vocabulary)

    def token_to_id(self, token):
        """Id of `token` (a Python string); ValueError if it is not in the vocabulary."""
        if token not in self._token_to_id:
            raise ValueError(f"Token {token!r} is not in the vocabulary.")
        return self._token_to_id[token]

    def id_to_token(self, id):
        """Token string of `id` (a Python int); ValueError if out of range."""
        if not 0 <= int(id) < len(self.vocabulary):
            raise ValueError(
                f"Id {id} is out of range for a vocabulary of {len(self.vocabulary)} tokens."
            )
        return self.vocabulary[int(id)]

    # ------------------------------------------------------------------ tokenizing

    def _tokenize_flat(self, strings):
        """Wordpiece ids of each string of a 1-D tensor: int32 RaggedTensor (n, pieces)."""
        strings = replace_invalid_utf8(strings)
        # RegexSplitWithOffsets stops at a NUL byte: turn NULs into U+FFFD, which cleaning
        # removes as well and which cannot complete a special token either.
        strings = tf.strings.regex_replace(strings, r"\x00", "\uFFFD")
        # Split out special tokens written in the raw text, before any normalization.
        segments = tf_text.regex_split(strings, self._special_pattern, self._special_pattern)
        flat = segments.flat_values  # (num_segments,)
        matches = tf.equal(tf.expand_dims(flat, 1), tf.constant([self._special_tokens]))
        is_special = tf.reduce_any(matches, axis=1)  # (num_segments,)
        special_ids = tf.reduce_sum(
            tf.where(matches, tf.constant([self._special_ids], tf.int32), 0), axis=1
        )  # (num_segments,)

        # A special segment becomes one over-long word, hence exactly one piece (the
        # unknown token), which is then swapped for the special token's id.
        words = split_words(
            tf.where(is_special, _OVERLONG_WORD, flat),
            lowercase=self.lowercase,
            strip_accents=self.strip_accents,
        )  # (num_segments, words)
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        words = words.with_flat_values(tf.where(too_long, self.unk_token, words.flat_values))
        pieces = merge_inner_dims(self._wordpiece.tokenize(words))  # (num_segments, pieces)
        # Row of each piece (what `value_rowids()` gives, in 3 ops instead of ~70).
        segment_of_piece = tf.searchsorted(
            pieces.row_splits[1:], tf.range(tf.size(pieces.values, out_type=tf.int64)), side="right"
        )
        values = tf.where(
            tf.gather(is_special, segment_of_piece),
            tf.gather(special_ids, segment_of_piece),
            pieces.values,
        )
        # (n, segments, pieces) -> (n, pieces)
        row_splits = tf.gather(pieces.row_splits, segments.row_splits)
        return tf.RaggedTensor.from_row_splits(values, row_splits, validate=False)

    def tokenize(self, text):
        """Wordpiece ids of each string, no special tokens added, no truncation.

        Args:
            text: string tensor of shape (batch,).

        Returns:
            int32 RaggedTensor of shape (batch, pieces).
        """
        text = _to_string_tensor(text, "text")
        return self._tokenize_flat(text)

    def tokenize_words(self, words):
        """Wordpiece ids of each word of pre-split text, for word-level label alignment (NER).

        Each word goes through the whole pipeline on its own (so `"all-rounder"` gives the
        pieces of `all`, `-` and `rounder`). A word that normalizes to nothing (e.g. only
        control characters) gets no pieces.

        Args:
            words: string RaggedTensor of shape (batch, words).

        Returns:
            int32 RaggedTensor of shape (batch, words, pieces).
        """
        if not isinstance(words, tf.RaggedTensor) or words.shape.rank != 2:
            raise ValueError(
                "`words` must be a string RaggedTensor of shape (batch, words), e.g. "
                f"`tf.ragged.constant([['EU', 'rejects']])`, got {words!r}."
            )
        if words.dtype != tf.string:
            raise ValueError(f"`words` must hold strings, got dtype {words.dtype.name}.")
        return words.with_flat_values(self._tokenize_flat(words.flat_values))

    def detokenize(self, ids, skip_special_tokens=False):
        """Strings from token ids: pieces joined with spaces, `##` continuations glued.

        No clean-up of spaces around punctuation (Hugging Face's `cleanup` option).

        Args:
            ids: int tensor or RaggedTensor of shape (batch, length).
            skip_special_tokens: drop the special tokens (CLS, SEP, PAD, UNK, MASK),
                as Hugging Face's `decode(..., skip_special_tokens=True)`.

        Returns:
            string tensor of shape (batch,).
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
        if ids.shape.rank != 2:
            raise ValueError(f"`ids` must have shape (batch, length), got shape {ids.shape}.")
        ids = tf.cast(ids, tf.int32)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        if skip_special_tokens:
            keep = tf.reduce_all(
                tf.not_equal(tf.expand_dims(ids.flat_values, 1), tf.constant([self._special_ids])),
                axis=1,
            )
            ids = tf.ragged.boolean_mask(ids, ids.with_flat_values(keep))
        tokens = tf.gather(tf.constant(self.vocabulary), ids)
        text = tf.strings.reduce_join(tokens, axis=1, separator=" ")
        return tf.strings.regex_replace(text, " ##", "")

    # ------------------------------------------------------------------ packing

    def call(self, text, text_pair=None):
        first = self._tokenize_flat(_to_string_tensor(text, "text"))  # (batch, pieces)
        second = None
        if text_pair is not None:
            second = self._tokenize_flat(_to_string_tensor(text_pair, "text_pair"))
        return pack(
            first,
            second,
            sequence_length=self.sequence_length,
            cls_id=self.cls_token_id,
            sep_id=self.sep_token_id,
            pad_id=self.pad_token_id,
            pad_to_sequence_length=self.pad_to_sequence_length,
            pad_to_multiple_of=self.pad_to_multiple_of,
        )

    def compute_output_spec(self, text, text_pair=None):
        length = self.sequence_length if self.pad_to_sequence_length else None
        shape = (text.shape[0], length)
        return {
            key: keras.KerasTensor(shape, dtype="int32")
            for key in ("token_ids", "segment_ids", "padding_mask")
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self.vocabulary),
                "lowercase": self.lowercase,
                "strip_accents": self.strip_accents,
                "sequence_length": self.sequence_length,
                "pad_to_sequence_length": self.pad_to_sequence_length,
                "pad_to_multiple_of": self.pad_to_multiple_of,
                "cls_token": self.cls_token,
                "sep_token": self.sep_token,
                "pad_token": self.pad_token,
                "unk_token": self.unk_token,
                "mask_token": self.mask_token,
            }
        )
        return config


def _check_vocabulary(vocabulary):
    if not vocabulary:
        raise ValueError("The vocabulary is empty.")
    seen = set()
    for index, token in enumerate(vocabulary):
        if token == "":
            raise ValueError(f"The vocabulary has an empty token at id {index}.")
        if token in seen:
            raise ValueError(f"The vocabulary has the token {token!r} twice (again at id {index}).")
        seen.add(token)
