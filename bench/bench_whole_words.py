"""Whole words from a tokenizer trained on a small corpus: the share of generated words that are real words, with the
plain byte-level BPE of earlier versions, with `train_tokenizer`'s whole words (the default), and with whole words
plus the English word list filling the vocabulary, side by side.

A corpus of one's own with 30 pictures and 4 classes (calm, tense, joyful, gloomy: a coloured picture per item, 2-3
annotations each, every explanation a different sentence, with adjectives and nouns drawn from lemminflect's table
so that most words occur once or twice, as in real annotations) is prepared with `sevlm.data.corpus.prepare_corpus`
and trained with `configs/own-data.args` (`--no_vad`, no early stopping), once per tokenizer, epoch count and seed;
training calls the tokenizer as `train_tokenizer(texts, vocab_size=2000)`. Each model then explains all 30
pictures; a generated word is "real" when it is in the English word list (lemminflect's word forms, function words,
plus the NRC-VAD lexicon's words when ../shared/data/nrc-vad holds it).

    python3 bench/bench_whole_words.py                        # 2 epoch counts x 3 seeds x 3 tokenizers, ~10 min
    python3 bench/bench_whole_words.py --epochs 2 --seeds 0   # a quick check of the script
"""

import argparse
import functools
import os
import pathlib
import re
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from datasets import disable_progress_bars  # noqa: E402
from PIL import Image  # noqa: E402

import sevlm.training  # noqa: E402
from sevlm import config_file  # noqa: E402
from sevlm.data.corpus import prepare_corpus  # noqa: E402
from sevlm.tokenizer import english_word_list, train_tokenizer  # noqa: E402
from train_sevlm import train  # noqa: E402

NRC_VAD = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "nrc-vad" / "NRC-VAD-Lexicon.txt"
CLASSES = {
    "calm": {"color": (120, 190, 170),
             "adjectives": ["still", "pale", "quiet", "gentle", "soft", "misty", "slow", "peaceful", "silent", "mild",
                            "tender", "shallow"],
             "nouns": ["lake", "meadow", "harbour", "morning", "willow", "cloud", "garden", "river", "valley", "candle",
                       "shore", "pasture"],
             "phrases": ["rests under a wide sky", "fades into the mist", "sleeps by the water", "glows in the dawn",
                         "waits without a sound", "breathes slowly"]},
    "tense": {"color": (170, 40, 40),
              "adjectives": ["sharp", "narrow", "frayed", "crooked", "heavy", "restless", "broken", "jagged", "tight",
                             "nervous", "hostile", "sudden"],
              "nouns": ["fragment", "gate", "rope", "tower", "shadow", "crowd", "bridge", "corridor", "wire", "alley",
                        "cliff", "blade"],
              "phrases": ["hangs over the square", "pushes against the wall", "sways in the wind", "waits behind the door",
                          "cuts across the canvas", "leans toward the edge"]},
    "joyful": {"color": (240, 200, 40),
               "adjectives": ["bright", "golden", "playful", "lively", "sunny", "cheerful", "colourful", "merry",
                              "sparkling", "warm", "festive", "bouncing"],
               "nouns": ["kite", "balloon", "puppy", "festival", "tulip", "carousel", "wedding", "picnic", "parade",
                         "fountain", "circus", "beach"],
               "phrases": ["dances over the crowd", "bursts with colour", "laughs in the sun", "spins across the park",
                           "sings all afternoon", "sparkles like confetti"]},
    "gloomy": {"color": (60, 70, 110),
               "adjectives": ["grey", "rusty", "lonely", "withered", "damp", "empty", "faded", "abandoned", "bleak",
                              "murky", "cold", "hollow"],
               "nouns": ["factory", "gutter", "grave", "road", "shutter", "field", "chimney", "station", "attic",
                         "swamp", "ruin", "harbor"],
               "phrases": ["drips in the rain", "rusts in silence", "sinks into the fog", "waits for nobody",
                           "crumbles at dusk", "stands alone in winter"]},
}


def lemminflect_words(pos):
    """Lower-case lemmas of one part of speech ("NOUN", "ADJ") from lemminflect's table, 4-10 letters."""
    import gzip

    import lemminflect

    table = pathlib.Path(lemminflect.__file__).parent / "resources" / "lemma_lu.csv.gz"
    with gzip.open(table, "rt", encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split(",", 2) for line in handle]
    return sorted({lemma for form, kind, lemma in rows if kind == pos.lower() and lemma.isalpha()
                   and lemma.islower() and 4 <= len(lemma) <= 10})


def add_rare_words(count, seed=0):
    """Give each class `count` more adjectives and nouns drawn from lemminflect: a real corpus's explanations hold
    many words that occur once or twice."""
    rng = np.random.default_rng(seed)
    for kind, pos in (("adjectives", "ADJ"), ("nouns", "NOUN")):
        pool = [word for word in lemminflect_words(pos) if all(word not in c[kind] for c in CLASSES.values())]
        drawn = rng.choice(pool, size=count * len(CLASSES), replace=False).tolist()
        for index, spec in enumerate(CLASSES.values()):
            spec[kind] = spec[kind] + drawn[index * count:(index + 1) * count]


def explanation(rng, emotion):
    pool = CLASSES[emotion]
    pick = lambda name: pool[name][rng.integers(len(pool[name]))]  # noqa: E731
    return f"the {pick('adjectives')} {pick('nouns')} {pick('phrases')}"


def write_corpus(folder, items_per_class=8, seed=0):
    """30 pictures (8 + 8 + 7 + 7) with 2-3 annotations each; a third of them with a second emotion."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    names = list(CLASSES)
    rows = []
    for index in range(30):
        emotion = names[index % 4]
        pixels = np.clip(np.array(CLASSES[emotion]["color"]) + rng.normal(0, 18, (32, 32, 3)), 0, 255).astype(np.uint8)
        image = f"photos/item-{index:02d}.png"
        (folder / "photos").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(folder / image)
        labels = [emotion, emotion] + ([names[(index + 1) % 4]] if index % 3 == 0 else [])
        rows += [(image, label, explanation(rng, label)) for label in labels]
    lines = ["image,emotion,explanation"] + [",".join(row) for row in rows]
    (folder / "annotations.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "annotations.csv", rows


def generated_explanations(model_dir, images):
    from pipeline_sevlm import predict_batch
    from sevlm.loading import load_model_and_processor

    model, processor = load_model_and_processor(str(model_dir), device="cpu")
    results = predict_batch(model, processor, [str(image) for image in images])
    return [result["explanation"] for result in results]


def words(text):
    return [word for word in re.findall(r"[^\s.,;:!?\"()]+", text.lower()) if word]


def tokenizers(word_list):
    """The tokenizers compared: {name: a `train_tokenizer(texts, vocab_size=...)` as training calls it}."""
    return {
        "plain BPE": functools.partial(train_tokenizer, whole_words=False),
        "whole words": functools.partial(train_tokenizer, word_list=()),
        "whole words + word list": functools.partial(train_tokenizer, word_list=word_list),
    }


def run(kind, tokenizer, seed, epochs, corpus_dir, work_dir, images, real_words):
    output = work_dir / f"model-{kind.replace(' ', '-')}-{seed}-{epochs}"
    sevlm.training.train_tokenizer = tokenizer  # what training calls: train_tokenizer(texts, vocab_size=...)
    started = time.perf_counter()
    train(["--args_file", str(config_file("own-data.args")), "--dataset_path", str(corpus_dir), "--output_dir", str(output),
           "--no_vad", "--num_train_epochs", str(epochs), "--early_stopping_patience", "0", "--seed", str(seed),
           "--disable_tqdm", "true"])
    seconds = time.perf_counter() - started
    texts = generated_explanations(output, images)
    generated = [word for text in texts for word in words(text)]
    return {"kind": kind, "seed": seed, "epochs": epochs, "seconds": seconds, "words": len(generated),
            "real": sum(word in real_words for word in generated), "distinct": len(set(generated)),
            "fragments": sorted({word for word in generated if word not in real_words}), "examples": texts[:3]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[24, 40],
                        help="Training epochs per run (own-data.args: 30); each count trains every tokenizer.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="Training seeds; each trains every tokenizer.")
    parser.add_argument("--rare_words", type=int, default=18,
                        help="Adjectives and nouns added to each class from lemminflect's table (words seen once or twice).")
    args = parser.parse_args()
    disable_progress_bars()
    add_rare_words(args.rare_words)
    word_list = english_word_list(NRC_VAD if NRC_VAD.is_file() else None)
    real_words = {word.lower() for word in word_list}
    compared = tokenizers(word_list)
    kinds = tuple(compared)
    with tempfile.TemporaryDirectory() as temporary:
        work_dir = pathlib.Path(temporary)
        csv_path, rows = write_corpus(work_dir / "mine")
        corpus_words = {word for _, _, text in rows for word in words(text)}
        missing = sorted(corpus_words - real_words)
        prepare_corpus(csv_path, work_dir / "corpus", emotions=list(CLASSES))
        images = sorted((work_dir / "mine" / "photos").glob("*.png"))
        tokenizer_texts = [f" the emotion is {name} because" for name in CLASSES] * 10 + [text for _, _, text in rows]
        whole, sizes = {}, {}
        for kind, function in compared.items():
            tokenizer = function(tokenizer_texts, vocab_size=2000)
            whole[kind] = sum(len(tokenizer.tokenize(" " + word)) == 1 for word in corpus_words) / len(corpus_words)
            sizes[kind] = len(tokenizer)
        results = [run(kind, compared[kind], seed, epochs, work_dir / "corpus", work_dir, images, real_words)
                   for epochs in args.epochs for seed in args.seeds for kind in kinds]
    print(f"\nCorpus: 30 pictures, 4 classes, {len(rows)} annotations, {len(corpus_words)} distinct words "
          f"({len(missing)} not in the word list: {missing}); word list: {len(real_words)} words "
          f"({'with NRC-VAD' if NRC_VAD.is_file() else 'lemminflect only'}); configs/own-data.args, no early stopping; "
          "each model explains the 30 pictures.\n")
    print("| epochs | seed | tokenizer | vocabulary | corpus words as one token | generated words | distinct | real "
          "words | share | train s |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        share = result["real"] / max(result["words"], 1)
        print(f"| {result['epochs']} | {result['seed']} | {result['kind']} | {sizes[result['kind']]} | "
              f"{whole[result['kind']]:.0%} | {result['words']} | {result['distinct']} | {result['real']} | "
              f"{share:.1%} | {result['seconds']:.0f} |")
    print("\nAll seeds together, real words / generated words (distinct words generated):\n")
    print("| epochs | " + " | ".join(kinds) + " |")
    print("|---:|" + "---:|" * len(kinds))
    for epochs in args.epochs:
        cells = []
        for kind in kinds:
            mine = [r for r in results if r["kind"] == kind and r["epochs"] == epochs]
            real, total = sum(r["real"] for r in mine), sum(r["words"] for r in mine)
            cells.append(f"{real}/{total} = {real / max(total, 1):.1%} ({sum(r['distinct'] for r in mine)})")
        print(f"| {epochs} | " + " | ".join(cells) + " |")
    for kind in kinds:
        mine = [r for r in results if r["kind"] == kind]
        print(f"\n{kind}: words outside the word list: {sorted({w for r in mine for w in r['fragments']})[:30]}; e.g.")
        for text in mine[-1]["examples"]:
            print(f"    {text!r}")


if __name__ == "__main__":
    main()
