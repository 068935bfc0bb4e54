"""BERT basic tokenization in graph ops: text normalization and splitting into words.

The step before WordPiece, shared by the tokenizer and vocabulary learning (so a learned
vocabulary sees exactly the words the tokenizer will look up). Hugging Face's
`BertNormalizer` + `BertPreTokenizer` are the reference.
"""
import tensorflow as tf
import tensorflow_text as tf_text

# HF `clean_text` drops NUL, U+FFFD and the "other" characters Cc, Cf, Co, Cs except
# \t \n \r. Unassigned code points (Cn) are kept, as in `tokenizers`.
_CONTROL_PATTERN = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\p{Cs}\x{FFFD}]"
# ... and turns \t \n \r and separators into a plain space.
_WHITESPACE_PATTERN = r"[\t\n\r\p{Z}]"
# BERT punctuation: Unicode P* plus all ASCII symbols (!-/ :-@ [-` {-~).
_PUNCTUATION_CLASS = r"!-/:-@\[-`{-~\p{P}"
# The "Chinese character" ranges of HF's BertNormalizer (`tokenizers`), which
# isolates each of these characters as a word.
_CJK_CLASS = (
    r"\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}"
)
_KEEP_DELIMITER_PATTERN = f"[{_PUNCTUATION_CLASS}{_CJK_CLASS}]"
_DELIMITER_PATTERN = r"[\s\p{Z}]+|" + _KEEP_DELIMITER_PATTERN


def replace_invalid_utf8(text):
    """Invalid UTF-8 becomes U+FFFD, as Python's `bytes.decode(errors="replace")` does;
    cleaning then removes it."""
    return tf.strings.unicode_transcode(
        text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )


def normalize_text(text, lowercase=True, strip_accents=None):
    """BERT text normalization (cleaning, accent stripping, lowercasing) of a string tensor.

    Args:
        text: string tensor of any shape.
        lowercase: lowercase the text.
        strip_accents: remove accents (NFD then drop Mn); `None` follows `lowercase`.

    Returns:
        A string tensor of the same shape.
    """
    if strip_accents is None:
        strip_accents = lowercase
    text = replace_invalid_utf8(text)
    text = tf.strings.regex_replace(text, _CONTROL_PATTERN, "")
    text = tf.strings.regex_replace(text, _WHITESPACE_PATTERN, " ")
    if strip_accents:
        text = tf_text.normalize_utf8(text, "NFD")
        text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    if lowercase:
        # ICU lowercases a capital sigma to final sigma at the end of a word; Hugging Face's
        # `tokenizers` maps character by character, so always to the medial form.
        text = tf.strings.regex_replace(text, "\u03a3", "\u03c3")
        text = tf.strings.lower(text, encoding="utf-8")
    return text


def split_words(text, lowercase=True, strip_accents=None):
    """BERT basic tokenization: normalize, then split on whitespace, punctuation and CJK.

    Args:
        text: string tensor of shape (batch,).
        lowercase, strip_accents: as in `normalize_text`.

    Returns:
        A string RaggedTensor of shape (batch, words).
    """
    text = normalize_text(text, lowercase=lowercase, strip_accents=strip_accents)
    return tf_text.regex_split(text, _DELIMITER_PATTERN, _KEEP_DELIMITER_PATTERN)
