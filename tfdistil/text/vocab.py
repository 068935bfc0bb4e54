"""WordPiece vocabularies: learn one from text, read and write `vocab.txt`."""
import collections
from pathlib import Path

import tensorflow as tf
from tqdm.auto import tqdm

from tfdistil.text.words import split_words

DEFAULT_RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_vocabulary(path):
    """Read a `vocab.txt` (one token a line; the line number is the token id).

    Lines are split on newlines only (as Hugging Face's `load_vocab` does), so
    tokens may hold any other character; a final newline adds no token.

    Args:
        path: path to the file.

    Returns:
        The tokens, a list of strings.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Vocabulary file not found: {str(path)!r}.")
    with open(path, encoding="utf-8") as f:
        tokens = f.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    return tokens


def save_vocabulary(vocabulary, path):
    """Write `vocabulary` (a list of strings) to `path`, one token a line.

    Args:
        vocabulary: list of token strings; index = id.
        path: file to write (its folder is created if needed).

    Returns:
        The path written, as a `Path`.
    """
    path = Path(path)
    for token in vocabulary:
        if token == "" or "\n" in token or "\r" in token:
            raise ValueError(f"Token {token!r} cannot be written one per line in a vocab.txt.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(f"{token}\n" for token in vocabulary))
    return path


def _batches_of_text(texts, batch_size):
    """Yield 1-D string tensors from a tf.data dataset of strings or an iterable of str."""
    if isinstance(texts, tf.data.Dataset):
        spec = texts.element_spec
        if not isinstance(spec, tf.TensorSpec) or spec.dtype != tf.string:
            raise ValueError(
                f"`texts` must be a dataset of strings, got element_spec {spec}."
            )
        if spec.shape.rank == 0:
            texts = texts.batch(batch_size)
        elif spec.shape.rank != 1:
            raise ValueError(
                f"`texts` must be a dataset of scalar strings or of 1-D string batches, got {spec}."
            )
        for batch in texts:
            yield batch
        return
    if isinstance(texts, (str, bytes)):
        raise ValueError("`texts` must be an iterable of strings, not a single string.")
    batch = []
    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            yield tf.constant(batch, tf.string)
            batch = []
    if batch:
        yield tf.constant(batch, tf.string)


def count_words(texts, lowercase=True, strip_accents=None, batch_size=1024, progress=True):
    """Count the words of `texts` as `WordPieceTokenizer` splits them before WordPiece.

    Args:
        texts: iterable of `str`, or a `tf.data.Dataset` of scalar strings or string batches.
        lowercase, strip_accents: as in `WordPieceTokenizer`.
        batch_size: strings tokenized at once.
        progress: show a tqdm progress bar.

    Returns:
        A `collections.Counter` from word (str) to count.
    """
    split = tf.function(
        lambda t: split_words(t, lowercase=lowercase, strip_accents=strip_accents).flat_values,
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    total = None
    if hasattr(texts, "__len__") and not isinstance(texts, tf.data.Dataset):
        total = len(texts)
    counts = collections.Counter()
    with tqdm(total=total, unit=" texts", desc="Counting words", disable=not progress) as bar:
        for batch in _batches_of_text(texts, batch_size):
            counts.update(split(batch).numpy().tolist())
            bar.update(int(batch.shape[0]))
    return collections.Counter({word.decode("utf-8"): n for word, n in counts.items()})


def learn_vocabulary(
    texts,
    vocabulary_size,
    lowercase=True,
    reserved_tokens=DEFAULT_RESERVED_TOKENS,
    strip_accents=None,
    max_word_length=50,
    max_unique_characters=1000,
    num_iterations=4,
    batch_size=1024,
    progress=True,
):
    """Learn a WordPiece vocabulary from text.

    Words are split exactly as `WordPieceTokenizer(lowercase=..., strip_accents=...)`
    splits them, then tensorflow-text's WordPiece learner (the algorithm of BERT's
    vocabulary) picks subwords above a frequency threshold; the threshold is
    searched so the vocabulary is as large as possible within `vocabulary_size`
    (then topped up with the most frequent subwords of the next lower threshold).

    The vocabulary is `reserved_tokens` first, in order (so the default `[PAD]`
    gets id 0), then every character of the alphabet, alone and as `##` suffix (so
    any word made of those characters tokenizes without `[UNK]`), then subwords by
    decreasing frequency.

    Args:
        texts: iterable of `str`, or a `tf.data.Dataset` of scalar strings or
            1-D string batches.
        vocabulary_size: maximum number of tokens, reserved tokens included.
        lowercase, strip_accents: as in `WordPieceTokenizer`; use the same values there.
        reserved_tokens: tokens placed first, in this order.
        max_word_length: words longer than this (in characters) do not count.
        max_unique_characters: size of the alphabet (the most frequent characters);
            words with other characters do not count.
        num_iterations: refinement passes of the learner.
        batch_size: strings tokenized at once while counting words.
        progress: show tqdm progress bars.

    Returns:
        The vocabulary, a list of at most `vocabulary_size` strings.
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    reserved_tokens = list(reserved_tokens)
    if len(set(reserved_tokens)) != len(reserved_tokens):
        raise ValueError(f"`reserved_tokens` has duplicates: {reserved_tokens}.")
    if vocabulary_size <= len(reserved_tokens):
        raise ValueError(
            f"`vocabulary_size`={vocabulary_size} leaves no room after the "
            f"{len(reserved_tokens)} reserved tokens."
        )

    counts = count_words(
        texts, lowercase=lowercase, strip_accents=strip_accents, batch_size=batch_size,
        progress=progress,
    )
    if not counts:
        raise ValueError("`texts` holds no words to learn a vocabulary from.")
    words = learner.get_input_words(list(counts.items()), reserved_tokens, max_word_length)
    alphabet = learner.get_allowed_chars(words, max_unique_characters)
    words = learner.filter_input_words(words, alphabet, -1)
    if not words:
        raise ValueError(
            f"No word of `texts` has at most {max_word_length} characters from the "
            f"{max_unique_characters} most frequent ones."
        )
    alphabet = sorted(learner.extract_char_tokens(words))
    minimum = reserved_tokens + [c for c in alphabet if c not in reserved_tokens]
    minimum += [f"##{c}" for c in alphabet if f"##{c}" not in reserved_tokens]
    if len(minimum) > vocabulary_size:
        raise ValueError(
            f"`vocabulary_size`={vocabulary_size} is too small: the reserved tokens and the "
            f"{len(alphabet)} characters (alone and as ##suffix) already need {len(minimum)}. "
            "Raise it or lower `max_unique_characters`."
        )

    params = learner.Params(
        upper_thresh=None, lower_thresh=None, num_iterations=num_iterations,
        max_input_tokens=-1, max_token_length=max_word_length,
        max_unique_chars=max_unique_characters, vocab_size=vocabulary_size,
        slack_ratio=0.0, include_joiner_token=True, joiner="##",
        reserved_tokens=reserved_tokens,
    )

    # Higher thresholds give smaller vocabularies: binary search for the lowest one that
    # fits, then top up with the most frequent extra subwords of the threshold just below
    # (the last one that overflowed).
    low, high = 1, max(n for _, n in words) + 1
    fitting, overflowing = [], []
    with tqdm(desc="Learning WordPiece", unit=" trials", disable=not progress) as bar:
        while low < high:
            threshold = (low + high) // 2
            vocabulary = learner.learn_with_thresh(words, threshold, params)
            bar.update(1)
            bar.set_postfix(threshold=threshold, size=len(vocabulary))
            if len(vocabulary) <= vocabulary_size:
                fitting, high = vocabulary, threshold
            else:
                overflowing, low = vocabulary, threshold + 1
    vocabulary = list(minimum)
    kept = set(vocabulary)
    for token in fitting + overflowing:
        if len(vocabulary) >= vocabulary_size:
            break
        if token not in kept:
            vocabulary.append(token)
            kept.add(token)
    return vocabulary
