"""Training a small GPT-2 style tokenizer offline, for models whose decoder is built from a config (the demo, tests,
corpora of one's own). Real training from distilGPT-2 uses its pretrained tokenizer."""

from processing_sevlm import EMOTION_TOKEN, EXPLANATION_TOKEN, PAD_TOKEN

BOS_EOS_TOKEN = "<|endoftext|>"


def train_tokenizer(texts, vocab_size=2000, min_frequency=2):
    """Train a small byte-level BPE tokenizer (GPT-2 style) on `texts`; the result already holds the special tokens
    SEVLM needs."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Tokenizer

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[BOS_EOS_TOKEN, PAD_TOKEN, EMOTION_TOKEN, EXPLANATION_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return GPT2Tokenizer(
        tokenizer_object=backend,
        bos_token=BOS_EOS_TOKEN,
        eos_token=BOS_EOS_TOKEN,
        unk_token=BOS_EOS_TOKEN,
        pad_token=PAD_TOKEN,
    )
