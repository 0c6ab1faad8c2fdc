"""Tokenizer training on an explanation with one very long "word" (no spaces): BPE training as earlier versions ran
it, on the text as given, against `train_tokenizer`, which cuts words to `MAX_TRAINING_WORD_CHARS` for training.
The uncut time grows with the square of the word's length (every merge rescans the word); 2,000,000 characters
took more than 8 minutes here without finishing, so the table stops well before.

    python3 bench/bench_long_words.py                       # 25k, 50k, 100k characters; about a minute
"""

import argparse
import logging
import time

from sevlm.tokenizer import _train_bpe, train_tokenizer

TEXTS = [f" the emotion is {emotion} because the {thing} looks {emotion}" for emotion in ("calm", "tense", "joyful")
         for thing in ("lake", "tower", "kite", "field", "bridge")]


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[25_000, 50_000, 100_000],
                        help="Characters of the long word, one row each.")
    parser.add_argument("--vocab_size", type=int, default=1000, help="Tokenizer size (demo.args: 1000).")
    args = parser.parse_args()
    logging.getLogger("sevlm.tokenizer").setLevel(logging.ERROR)  # the warning is the point; not needed here
    print("| long word (characters) | BPE on the text as given, s | train_tokenizer (word cut), s | ratio |")
    print("|---:|---:|---:|---:|")
    for length in args.lengths:
        texts = TEXTS + [" the emotion is calm because " + "a" * length]
        uncut = timed(lambda: _train_bpe(texts, args.vocab_size, 2))  # noqa: B023 - called at once
        cut = timed(lambda: train_tokenizer(texts, vocab_size=args.vocab_size))  # noqa: B023
        print(f"| {length:,} | {uncut:.2f} | {cut:.3f} | {uncut / cut:.0f}x |")
    texts = TEXTS + [" the emotion is calm because " + "a" * 2_000_000]
    cut = timed(lambda: train_tokenizer(texts, vocab_size=args.vocab_size))
    estimate = uncut * (2_000_000 / args.lengths[-1]) ** 2
    print(f"\n2,000,000 characters: train_tokenizer {cut:.3f} s; BPE on the text as given, extrapolated as the square "
          f"of the length from the last row: {estimate / 60:.0f} min.")


if __name__ == "__main__":
    main()
