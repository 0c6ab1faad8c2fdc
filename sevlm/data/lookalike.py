"""ArtEmis-shaped look-alike data for benchmarks and tests (never a stand-in for the real corpus in results): raw
annotation CSVs with WikiArt's names and quirks, ArtEmis's preprocessed file made by ArtEmis's own rules (tokens,
length cut-offs, vocabulary), and WikiArt-like image folders."""

import csv
import multiprocessing
import os
import random
import re
import time
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from configuration_sevlm import ARTEMIS_EMOTIONS

STYLES = ["Abstract_Expressionism", "Action_painting", "Analytical_Cubism", "Art_Nouveau_Modern", "Baroque",
          "Color_Field_Painting", "Contemporary_Realism", "Cubism", "Early_Renaissance", "Expressionism", "Fauvism",
          "High_Renaissance", "Impressionism", "Mannerism_Late_Renaissance", "Minimalism", "Naive_Art_Primitivism",
          "New_Realism", "Northern_Renaissance", "Pointillism", "Pop_Art", "Post_Impressionism", "Realism", "Rococo",
          "Romanticism", "Symbolism", "Synthetic_Cubism", "Ukiyo_e"]
ARTISTS = ["claude-monet", "pablo-picasso", "vincent-van-gogh", "rembrandt", "albrecht-durer", "ivan-aivazovsky",
           "pierre-auguste-renoir", "gustave-dore", "john-singer-sargent", "camille-pissarro", "marc-chagall",
           "salvador-dali", "edgar-degas", "paul-cezanne", "henri-matisse", "francisco-goya", "titian"]
WORDS = ("the colors are dark and woman looks sad lonely bright happy calm sky sea storm mountain face eyes red blue "
         "green yellow strange shapes lines make me feel peaceful angry scared excited amused because of how light "
         "falls on her dress it reminds of a quiet evening with friends old man seems tired").split()
TITLE_WORDS = "portrait landscape still-life view river garden woman man boats church winter night study".split()
EMOTION_WEIGHTS = [0.08, 0.14, 0.26, 0.12, 0.02, 0.05, 0.12, 0.12, 0.09]
V1_HEADER = ["art_style", "painting", "emotion", "utterance", "repetition"]
PREPROCESSED_HEADER = ["art_style", "painting", "emotion", "utterance", "repetition", "split", "tokens", "tokens_len",
                       "utterance_spelled", "tokens_encoded", "emotion_label"]
HIGH_COVERAGE = 701
NUM_PAINTINGS = 80031
MOJIBAKE = "joaquã\xadn-sorolla"  # WikiArt's mojibake: U+00E3, then an invisible soft hyphen U+00AD


# ---------------------------------------------------------------------------------------------- generation
def painting_names(num_paintings, seed=0, high_coverage=HIGH_COVERAGE):
    """[(style, name, repetition)]: names unique, a few NFD-spelled and mojibake; `high_coverage` paintings with
    41-50 annotations, the others 5 (most) to 10."""
    rng = random.Random(seed)
    paintings = []
    for index in range(num_paintings):
        style = STYLES[index % len(STYLES)]
        if index % 997 == 5:
            name = f"{MOJIBAKE}_portrait-of-antonio-elegido-{index}"
        elif index % 991 == 7:
            name = unicodedata.normalize("NFD", f"édouard-manet_café-concert-{index}")  # NFD in the CSV
        else:
            name = f"{rng.choice(ARTISTS)}_{rng.choice(TITLE_WORDS)}-{rng.choice(TITLE_WORDS)}-{index}"
        if index < high_coverage:
            repetition = rng.randint(41, 50)
        else:
            repetition = rng.choices([5, 6, 7, 8, 9, 10], [0.84, 0.08, 0.04, 0.02, 0.01, 0.01])[0]
        paintings.append((style, name, repetition))
    rng.shuffle(paintings)
    return paintings


def raw_utterance(rng):
    # ArtEmis's preprocessing drops utterances under 5 tokens: about 2% here.
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 4) if rng.random() < 0.03 else rng.randint(5, 28))]
    words[0] = words[0].capitalize()
    if len(words) > 6 and rng.random() < 0.5:
        words[rng.randint(1, len(words) - 2)] += ","
    text = " ".join(words)
    if rng.random() < 0.15:
        text = text.replace(" ", "  ", 1)  # a double space
    if rng.random() < 0.1:
        text = f'{text} "I\'m" {rng.choice(WORDS)}'
    return text + rng.choice([".", "", "!", "..."])


def write_raw_csv(path, paintings, seed=0, block=3000):
    """The raw release's shape; a painting's rows are scattered within blocks of `block` paintings."""
    rng = random.Random(seed + 1)
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(V1_HEADER)
        for start in range(0, len(paintings), block):
            chunk = []
            for style, name, repetition in paintings[start:start + block]:
                for _ in range(repetition):
                    emotion = rng.choices(ARTEMIS_EMOTIONS, EMOTION_WEIGHTS)[0]
                    chunk.append([style, name, emotion, raw_utterance(rng), repetition])
            rng.shuffle(chunk)
            writer.writerows(chunk)
            rows += len(chunk)
    return rows


# ArtEmis's text preprocessing (`artemis/language/basics.py: pre_process_text`) as it acts on the utterances generated
# here (words of WORDS, commas, . ! ..., and `"I'm"`): lower case; a quote, word characters and a quote lose the two
# quotes (`unquote_words`: `"i'm"` -> ` i m"`); these punctuation marks become spaces; NLTK's word tokenizer splits on
# spaces and makes a closing `"` the token `''` (an opening one "``"). Its spell checking changes none of these words.
ARTEMIS_QUOTED_WORD = re.compile(r"""['|"]\w+['|"]""")
ARTEMIS_PUNCTUATION_TO_SPACE = str.maketrans(dict.fromkeys(".?!,:;/\\-~*_=[–]{}$^@|%#<—>", " "))
# `--preprocess-for-deep-nets True`: fewer tokens than this, or more than this percentile of the training split's
# lengths (all rows before any drop), and a row is dropped; words used fewer times in training become <unk>.
ARTEMIS_TOO_SHORT, ARTEMIS_TOO_LONG_PERCENTILE, ARTEMIS_MIN_WORD_FREQ = 5, 95, 5
ARTEMIS_SPECIAL = {"<pad>": 0, "<sos>": 1, "<eos>": 2, "<unk>": 3}


def artemis_tokens(utterance):
    """The tokens ArtEmis's preprocessing makes of a generated utterance (see above)."""
    text = ARTEMIS_QUOTED_WORD.sub(lambda match: f" {match.group()[1:-1]} ", utterance.lower())
    tokens = []
    for word in text.translate(ARTEMIS_PUNCTUATION_TO_SPACE).split():
        opening, word = word.startswith('"'), word.lstrip('"')
        closing, word = word.endswith('"'), word.rstrip('"')
        tokens += ["``"] * opening + [word] * bool(word) + ["''"] * closing
    return tokens


def artemis_vocabulary(train_tokens):
    """ArtEmis's `build_vocab`: the special symbols, then the training words used at least ARTEMIS_MIN_WORD_FREQ
    times, in the order they first occur."""
    counts = Counter(token for tokens in train_tokens for token in tokens)
    words = [word for word, count in counts.items() if count >= ARTEMIS_MIN_WORD_FREQ]
    return {**ARTEMIS_SPECIAL, **{word: index for index, word in enumerate(words, start=len(ARTEMIS_SPECIAL))}}


def artemis_encode(tokens, vocabulary, max_len):
    """ArtEmis's `Vocabulary.encode`: <sos>, the first max_len token ids, <eos>, <pad> up to max_len + 2."""
    ids = [vocabulary.get(token, ARTEMIS_SPECIAL["<unk>"]) for token in tokens][:max_len]
    padding = [ARTEMIS_SPECIAL["<pad>"]] * (max_len - len(tokens))
    return [ARTEMIS_SPECIAL["<sos>"], *ids, ARTEMIS_SPECIAL["<eos>"], *padding]


def write_preprocessed_csv(raw_csv, path, unit_splits):
    """`artemis_preprocessed.csv` as ArtEmis's `preprocess_artemis_data.py --preprocess-for-deep-nets True` writes
    it from the generated raw CSV: the official split of each row (`unit_splits`: art_style + painting -> split),
    the rows with repetition >= 41 after the others as `rest`; rows under 5 tokens or above the 95th percentile of
    the training split's token lengths dropped; tokens, tokens_len, utterance_spelled, tokens_encoded (vocabulary of
    the kept training rows) and emotion_label. Returns (rows written, rows dropped)."""
    names = {"validation": "val"}
    with open(raw_csv, encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        next(reader)
        rows = [(style, name, emotion, text, int(repetition)) for style, name, emotion, text, repetition in reader]
    rows = [row for row in rows if row[4] < 41] + [row for row in rows if row[4] >= 41]
    splits = [names.get(unit_splits[style + name], unit_splits[style + name]) if repetition < 41 else "rest"
              for style, name, _, _, repetition in rows]
    tokens = [artemis_tokens(row[3]) for row in rows]
    train_lengths = [len(t) for t, split in zip(tokens, splits) if split == "train"]
    too_long = np.percentile(train_lengths, ARTEMIS_TOO_LONG_PERCENTILE)
    kept = [i for i, t in enumerate(tokens) if ARTEMIS_TOO_SHORT <= len(t) <= too_long]
    vocabulary = artemis_vocabulary(tokens[i] for i in kept if splits[i] == "train")
    with open(path, "w", encoding="utf-8", newline="") as sink:
        writer = csv.writer(sink, lineterminator="\n")  # pandas' to_csv
        writer.writerow(PREPROCESSED_HEADER)
        for i in kept:
            style, name, emotion, utterance, repetition = rows[i]
            writer.writerow([style, name, emotion, utterance, repetition, splits[i], repr(tokens[i]), len(tokens[i]),
                             " ".join(tokens[i]), repr(artemis_encode(tokens[i], vocabulary, int(too_long))),
                             ARTEMIS_EMOTIONS.index(emotion)])
    return len(kept), len(rows) - len(kept)


def image_file_name(name):
    """Most files as named; mojibake ones stored with Info-ZIP escapes, as an Info-ZIP unpacking can leave them;
    NFD names from the CSV stored in NFC, as in the WikiArt archive."""
    if name.startswith(MOJIBAKE):
        return "".join(char if ord(char) < 128 else f"#U{ord(char):04x}" for char in name) + ".jpg"
    return unicodedata.normalize("NFC", name) + ".jpg"


def _write_images(job):
    folder, items, side, seed = job
    rng = np.random.default_rng(seed)
    for style, name in items:
        base = rng.integers(0, 256, 3)
        pixels = np.clip(base + rng.normal(0, 12, (side, side, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, style, image_file_name(name)), format="JPEG", quality=85)
    return len(items)


def write_images(wikiart_dir, paintings, side=32, processes=2, chunk=2000):
    """One `side` x `side` JPEG per painting at <wikiart_dir>/<style>/<name>.jpg, in parallel."""
    for style in {style for style, _, _ in paintings}:
        os.makedirs(os.path.join(wikiart_dir, style), exist_ok=True)
    items = [(style, name) for style, name, _ in paintings]
    jobs = [(str(wikiart_dir), items[start:start + chunk], side, start) for start in range(0, len(items), chunk)]
    if processes > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            return sum(pool.map(_write_images, jobs))
    return sum(map(_write_images, jobs))


def write_artemis_shaped(folder, num_paintings, seed=0, image_side=32, processes=2, high_coverage=HIGH_COVERAGE,
                         images=True):
    """Raw CSV, preprocessed CSV and WikiArt folder under `folder`; returns their paths and counts."""
    from sevlm.data.artemis import official_split

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paintings = painting_names(num_paintings, seed, high_coverage)
    raw_csv, preprocessed_csv, wikiart = folder / "artemis_dataset_release_v0.csv", folder / "artemis_preprocessed.csv", folder / "wikiart"
    timings = {}
    started = time.perf_counter()
    rows = write_raw_csv(raw_csv, paintings, seed)
    timings["raw_csv"] = time.perf_counter() - started
    started = time.perf_counter()
    units = {style + name for style, name, repetition in paintings if repetition < 41}
    written, dropped = write_preprocessed_csv(raw_csv, preprocessed_csv, official_split(units))
    timings["preprocessed_csv"] = time.perf_counter() - started
    started = time.perf_counter()
    if images:
        write_images(wikiart, paintings, image_side, processes)
    timings["images"] = time.perf_counter() - started
    return {"raw_csv": raw_csv, "preprocessed_csv": preprocessed_csv, "wikiart_dir": wikiart, "rows": rows,
            "paintings": paintings, "preprocessed_rows": written, "preprocessed_dropped": dropped, "timings": timings}


# ------------------------------------------------------------------------------------------------ measuring
