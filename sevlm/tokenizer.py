"""Training a small GPT-2 style tokenizer offline, for models whose decoder is built from a config (the demo, tests,
corpora of one's own). Real training from distilGPT-2 uses its pretrained tokenizer.

A byte-level BPE trained on a small corpus with a fixed number of merges leaves its rarer words in pieces, and a
briefly trained model then writes pieces ("the black fra is a squ"). So when the corpus's words fit in the
vocabulary, `train_tokenizer` makes every one of them a single token (any other text still encodes, byte by byte at
worst). On request the rest of the vocabulary goes to a word list of the language (`english_word_list`:
lemminflect's word forms, function words, a VAD lexicon's words), so that text beyond the corpus takes fewer tokens;
for a small model trained from scratch on a small corpus that costs variety in what it writes (bench/
bench_whole_words.py), so it is not the default. A corpus too large for whole words gets the plain BPE of its size.
"""

import functools
import gzip
import json
import logging
import re
from pathlib import Path

from processing_sevlm import EMOTION_TOKEN, EXPLANATION_TOKEN, PAD_TOKEN

logger = logging.getLogger(__name__)

BOS_EOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = [BOS_EOS_TOKEN, PAD_TOKEN, EMOTION_TOKEN, EXPLANATION_TOKEN]
# BPE training time grows with the square of a word's length (every merge rescans the word): one 2,000,000-character
# "word" keeps it busy for minutes. Longer words are cut to this length for training only (no real word is longer).
MAX_TRAINING_WORD_CHARS = 48
WORD_LIST_LINE = 64  # words per line of training text made from a word list
# lemminflect's table holds nouns, verbs, adjectives and adverbs; the words that join them come from here.
FUNCTION_WORDS = (
    "a an the this that these those some any each every no all both either neither few many much more most other "
    "another such what which who whom whose i me my mine we us our ours you your yours he him his she her hers it its "
    "they them their theirs myself yourself himself herself itself ourselves themselves one ones something nothing "
    "everything anything someone nobody everyone and or but nor so yet because since although though while if unless "
    "until when whenever where wherever whether than as like of in on at by for with without within into onto upon "
    "from to toward towards over under above below between among through across along around behind beside besides "
    "near against about after before during despite beyond inside outside off out up down not very too also just only "
    "even still already almost quite rather here there now then again ever never always often once twice"
).split()


@functools.lru_cache(maxsize=1)
def _lemminflect_words():
    import lemminflect

    words = set()
    table = Path(lemminflect.__file__).parent / "resources" / "lemma_lu.csv.gz"
    with gzip.open(table, "rt", encoding="utf-8") as handle:
        for line in handle:
            form, _, lemmas = line.rstrip("\n").split(",", 2)
            words.add(form)
            words.update(lemmas.split("/"))
    return frozenset(words)


def english_word_list(lexicon=None):
    """English word forms available offline: lemminflect's table of word forms and their lemmas, English function
    words, and the words of `lexicon` (a VAD lexicon: a file in NRC-VAD format, or a mapping or list of words).
    Sorted, without duplicates."""
    if isinstance(lexicon, (str, Path)):
        from sevlm.vad import load_vad_lexicon

        lexicon = load_vad_lexicon(lexicon)
    words = _lemminflect_words() | set(FUNCTION_WORDS) | set(lexicon or ())
    return sorted(word for word in words if word and not any(character.isspace() for character in word))


def cap_word_length(texts, max_chars=MAX_TRAINING_WORD_CHARS):
    """`texts` with every run of non-space characters longer than `max_chars` cut to `max_chars`; says how many were
    cut (BPE training on a very long word takes minutes and learns nothing useful)."""
    long_word = re.compile(rf"\S{{{max_chars + 1},}}")
    capped, cut, longest = [], 0, 0
    for text in texts:
        if long_word.search(text):
            for match in long_word.finditer(text):
                cut += 1
                longest = max(longest, len(match.group()))
            text = long_word.sub(lambda match: match.group()[:max_chars], text)
        capped.append(text)
    if cut:
        logger.warning(
            f"{cut} word(s) of the tokenizer's training text are longer than {max_chars} characters (the longest: "
            f"{longest}); they are cut to {max_chars} characters for tokenizer training only (its time grows with the "
            "square of a word's length)."
        )
    return capped


def _bpe_trainer(vocab_size, min_frequency, special_tokens=SPECIAL_TOKENS, initial_alphabet=None):
    from tokenizers import pre_tokenizers, trainers

    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if initial_alphabet is None else initial_alphabet,
        show_progress=False,
    )


def _train_bpe(texts, vocab_size, min_frequency):
    """A byte-level BPE `tokenizers.Tokenizer` (GPT-2 style) trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(texts, _bpe_trainer(vocab_size, min_frequency))
    return backend


def _merges(backend):
    """The BPE merges of a tokenizer, in rank order, as (left, right) pairs."""
    merges = json.loads(backend.to_str())["model"]["merges"]
    return [tuple(merge.split(" ", 1)) if isinstance(merge, str) else tuple(merge) for merge in merges]


# Each token of the corpus's tokenizer stands for one character of this Unicode private-use plane (65,534 of them)
# while the word list's merges are learned.
PRIVATE_USE = 0xF0000


def _extend_with_word_list(backend, words, vocab_size):
    """`backend` (a BPE whose every corpus word is one token) with merges learned on `words` appended, until the
    vocabulary holds `vocab_size` tokens.

    The word list's merges must continue from the pieces `backend` leaves a word in (its own merges come first and
    keep their ranks, so its words tokenize as before). So the words are tokenized by `backend`, each token written
    as one private-use character, and a BPE learned on those strings; its merges, read back as tokens, follow.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers

    state = json.loads(backend.to_str())
    vocab, merges = state["model"]["vocab"], state["model"]["merges"]
    if len(vocab) >= vocab_size or len(vocab) > 0xFFFFD - PRIVATE_USE:
        return backend
    token_of = {PRIVATE_USE + index: token for token, index in vocab.items()}
    pieces = ["".join(chr(PRIVATE_USE + index) for index in encoding.ids)
              for encoding in backend.encode_batch([" " + word for word in words])]
    lines = [" ".join(pieces[start:start + WORD_LIST_LINE]) for start in range(0, len(pieces), WORD_LIST_LINE)]
    alphabet = sorted({character for line in lines for character in line if character != " "})
    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # Room for as many merges as tokens are missing, and more: a merge may make a token the corpus already has.
    room = 2 * (vocab_size - len(vocab))
    trainer = _bpe_trainer(len(alphabet) + room, min_frequency=1, special_tokens=[], initial_alphabet=alphabet)
    learner.train_from_iterator(lines, trainer)

    def token(text):
        return "".join(token_of[ord(character)] for character in text)

    known = {tuple(merge) for merge in merges}
    for left, right in _merges(learner):
        pair = (token(left), token(right))
        if pair in known:
            continue
        new = pair[0] + pair[1]
        if new not in vocab:
            if len(vocab) >= vocab_size:
                break
            vocab[new] = len(vocab)
        merges.append(list(pair))
        known.add(pair)
    return Tokenizer.from_str(json.dumps(state))


def train_tokenizer(texts, vocab_size=2000, min_frequency=2, word_list=None, whole_words=True):
    """Train a small byte-level BPE tokenizer (GPT-2 style) on `texts`; the result already holds the special tokens
    SEVLM needs (`<|endoftext|>` as bos / eos, `<pad>`, `<emotion>`, `<explanation>`).

    With `whole_words` (the default), when every word of `texts` fits in `vocab_size` tokens as one token each, each
    is one token; the vocabulary then holds what the corpus needs, at most `vocab_size` tokens, or exactly
    `vocab_size` with `word_list` (words of the language, e.g. `english_word_list(vad_lexicon_path)`), whose merges
    fill the rest. Otherwise (a larger corpus, or `whole_words=False`) it is a plain BPE of `vocab_size` tokens over
    pairs seen at least `min_frequency` times, as earlier versions trained. Words longer than
    `MAX_TRAINING_WORD_CHARS` are cut for training (`cap_word_length`).
    """
    from transformers import GPT2Tokenizer

    texts = cap_word_length(list(texts))
    backend = None
    if whole_words:
        # Every pair may merge: training stops early once every word is one token, or fills the vocabulary.
        corpus = _train_bpe(texts, vocab_size, min_frequency=1)
        if corpus.get_vocab_size() < vocab_size:
            backend = _extend_with_word_list(corpus, list(word_list), vocab_size) if word_list else corpus
        elif min_frequency <= 1:
            backend = corpus  # the plain BPE asked for: the same training
    if backend is None:
        backend = _train_bpe(texts, vocab_size, min_frequency)
    return GPT2Tokenizer(
        tokenizer_object=backend,
        bos_token=BOS_EOS_TOKEN,
        eos_token=BOS_EOS_TOKEN,
        unk_token=BOS_EOS_TOKEN,
        pad_token=PAD_TOKEN,
    )
