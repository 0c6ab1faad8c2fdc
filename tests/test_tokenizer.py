"""Small tokenizers trained offline: whole words for small corpora, plain BPE for large ones, bounded cost."""

import logging

import pytest

from sevlm.tokenizer import MAX_TRAINING_WORD_CHARS, SPECIAL_TOKENS, english_word_list, train_tokenizer

# 30 explanations of a small corpus of one's own: most words occur once or twice.
SMALL = [
    f" the emotion is {emotion} because {text}"
    for emotion, texts in {
        "calm": ["the lake lies still under a pale morning sky", "soft green hills fade into the mist",
                 "a quiet harbour with sleeping boats", "the cat dozes on a sunny windowsill",
                 "gentle waves brush the sand", "the meadow is wide and peaceful", "an empty bench beneath willows"],
        "tense": ["the black fragment hangs over the square", "a crowd pushes against the narrow gate",
                  "the rope is frayed and stretched", "storm clouds gather above the tower",
                  "a shadow waits behind the door", "sharp red lines cut the canvas", "the bridge sways in the wind"],
        "joyful": ["children chase bubbles across the garden", "bright kites dance over the beach",
                   "the wedding guests laugh and sing", "yellow tulips burst from every pot",
                   "a puppy tumbles through the leaves", "fireworks bloom above the river", "the band plays in the park"],
        "gloomy": ["rain drips from the broken gutter", "the abandoned factory rusts in silence",
                   "grey fog swallows the lonely road", "withered roses lie on the grave",
                   "an old man sits alone at dusk", "the shutters are closed for winter", "ashes drift over the field"],
    }.items()
    for text in texts
]


def words_of(texts):
    return {word for text in texts for word in text.split()}


def test_every_word_of_a_small_corpus_is_one_token():
    """A BPE of fixed size trained on 30 sentences used to leave most words in pieces ("fra", "squ")."""
    tokenizer = train_tokenizer(SMALL, vocab_size=1000)
    for word in words_of(SMALL):
        assert tokenizer.tokenize(" " + word) == ["Ġ" + word], word
    # The vocabulary is what the corpus needs; any other text still encodes (in pieces) and decodes as it was.
    assert len(tokenizer) < 1000
    assert all(tokenizer.convert_tokens_to_ids(token) == index for index, token in enumerate(SPECIAL_TOKENS))
    sentence = " the lonely wanderer feels melancholy in the Zwiebelturm"
    assert tokenizer.decode(tokenizer(sentence)["input_ids"]) == sentence


def test_a_word_list_fills_the_vocabulary_after_the_corpus():
    lexicon = ["melancholy", "wanderer", "serenity"]
    tokenizer = train_tokenizer(SMALL, vocab_size=1000, word_list=lexicon)
    for word in lexicon + sorted(words_of(SMALL)):
        assert tokenizer.tokenize(" " + word) == ["Ġ" + word], word
    assert len(train_tokenizer(SMALL, vocab_size=1000).tokenize(" melancholy")) > 1
    english = train_tokenizer(SMALL, vocab_size=1000, word_list=english_word_list(lexicon))
    assert len(english) == 1000 and all(english.tokenize(" " + word) == ["Ġ" + word] for word in words_of(SMALL))
    assert {"serenity", "happiness", "the", "because"} <= set(english_word_list(lexicon))


def test_a_corpus_too_large_for_whole_words_gets_the_plain_bpe():
    texts = SMALL * 3
    plain = train_tokenizer(texts, vocab_size=300, whole_words=False)
    assert train_tokenizer(texts, vocab_size=300).get_vocab() == plain.get_vocab()
    assert len(plain) == 300 and len(plain.tokenize(" the abandoned factory")) > 3
    once = train_tokenizer(texts, vocab_size=300, min_frequency=1)
    assert once.get_vocab() == train_tokenizer(texts, vocab_size=300, min_frequency=1, whole_words=False).get_vocab()


def test_very_long_words_are_cut_for_training_with_a_warning(caplog):
    """One 2,000,000-character explanation without spaces kept BPE training busy for minutes, without a word."""
    texts = SMALL + [" the emotion is calm because " + "a" * 2_000_000]
    with caplog.at_level(logging.WARNING, logger="sevlm.tokenizer"):
        tokenizer = train_tokenizer(texts, vocab_size=1000)
    assert f"1 word(s) of the tokenizer's training text are longer than {MAX_TRAINING_WORD_CHARS}" in caplog.text
    assert "(the longest: 2000000)" in caplog.text
    assert max(len(token) for token in tokenizer.get_vocab()) <= MAX_TRAINING_WORD_CHARS + 1  # + "Ġ"
    assert tokenizer.tokenize(" " + SMALL[0].split()[-1]) == ["Ġsky"]


@pytest.mark.parametrize("vocab_size", [400, 2000])
def test_the_training_call_keeps_working(vocab_size):
    tokenizer = train_tokenizer(SMALL, vocab_size=vocab_size)
    assert tokenizer.pad_token == "<pad>" and tokenizer.bos_token == tokenizer.eos_token == "<|endoftext|>"
    assert len(tokenizer) <= vocab_size
