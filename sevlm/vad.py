"""VAD lexicons: reading NRC-VAD style files (any language), looking words up (English lemmas through
`lemminflect`, offline), and building the `[vocab, 3]` table a SEVLM model stores (`model.set_vad_table`).

A model folder holds only the table; the lexicon is a training-time input.
"""

import math
import os

import numpy as np


class VadLexicon(dict):
    """`{word: (valence, arousal, dominance)}` on the bipolar scale [-1, 1], with the lexicon's `language`."""

    def __init__(self, entries, language="en"):
        super().__init__(entries)
        self.language = language


def load_vad_lexicon(source, vad_lexicon_language="en"):
    """Read a VAD lexicon into a `VadLexicon` `{word: (valence, arousal, dominance)}` on the bipolar scale [-1, 1].

    `source` is a path to an NRC-VAD format file or a mapping `word -> (v, a, d)`. A file has an optional header line,
    then `word<TAB>valence<TAB>arousal<TAB>dominance` lines; the NRC-VAD translations into other languages have a fifth
    column, the word in that language, which is then the word looked up (for `vad_lexicon_language` other than
    English). Scores in [0, 1] (NRC-VAD v1) are mapped with `2 * x - 1`; a lexicon with any negative score (NRC-VAD
    v2) is taken as already bipolar. Non-finite scores are errors naming the file and line (or the word).

    `vad_lexicon_language` (an ISO code, default `"en"`): English words not found are looked up by their lemma
    (`lemminflect`); in other languages only the surface form is looked up.
    """
    language = str(vad_lexicon_language or "en").lower()
    if isinstance(source, (str, os.PathLike)):
        entries = _read_vad_file(source, language)
        where = str(source)
    else:
        entries, where = {}, "the VAD mapping"
        for word, scores in dict(source).items():
            scores = tuple(float(x) for x in scores)
            if len(scores) != 3:
                raise ValueError(f"{where}: entry {word!r} has {len(scores)} scores; expected (valence, arousal, dominance).")
            if not all(math.isfinite(x) for x in scores):
                raise ValueError(f"{where}: entry {word!r} has a non-finite score {scores}.")
            entries[str(word).strip().lower()] = scores
    if not entries:
        raise ValueError(f"{where} holds no entries.")
    values = [x for scores in entries.values() for x in scores]
    low, high = min(values), max(values)
    if low < -1.0 or high > 1.0:
        raise ValueError(f"{where}: scores must lie in [0, 1] or [-1, 1]; found range [{low}, {high}].")
    if low >= 0.0:
        entries = {word: tuple(2.0 * x - 1.0 for x in scores) for word, scores in entries.items()}
    return VadLexicon(entries, language)


def _read_vad_file(path, language):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"VAD lexicon {path} not found. Download the NRC-VAD lexicon (https://saifmohammad.com/WebPages/nrc-vad.html) "
            "and pass the path to NRC-VAD-Lexicon.txt."
        )
    expected = "`word<TAB>valence<TAB>arousal<TAB>dominance` (and optionally `<TAB>translated word`)"
    entries = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\n\r").split("\t")
            try:
                scores = tuple(float(x) for x in fields[1:4])
            except ValueError:
                if number == 1:
                    continue  # header line
                raise ValueError(f"{path}:{number}: expected {expected}, got {line!r}.") from None
            if len(fields) not in (4, 5) or len(scores) != 3:
                raise ValueError(f"{path}:{number}: expected {expected}, got {line!r}.")
            if not all(math.isfinite(x) for x in scores):
                raise ValueError(f"{path}:{number}: non-finite score in {line.strip()!r}; scores must be numbers in [0, 1] or [-1, 1].")
            # A translation file lists the English word first and the word of its language last.
            word = fields[4] if len(fields) == 5 and not language.startswith("en") else fields[0]
            word = word.strip().lower()
            if not word:
                raise ValueError(f"{path}:{number}: expected {expected}, got {line!r}.")
            entries.setdefault(word, scores)
    return entries


def lemmas(word):
    """Dictionary lemmas of an English word, then rule-based ones (lemminflect: offline, no downloads)."""
    try:
        import lemminflect
    except ImportError as error:
        raise ImportError("Looking up VAD lemmas needs `lemminflect`: pip install lemminflect") from error
    found = []
    for candidates in lemminflect.getAllLemmas(word).values():
        found.extend(candidates)
    if not found:
        for pos in ("VERB", "NOUN", "ADJ"):
            found.extend(lemminflect.getAllLemmasOOV(word, pos).get(pos, ()))
    return [lemma.lower() for lemma in dict.fromkeys(found) if lemma.lower() != word]


def lookup_vad(lexicon, word, vad_lexicon_language=None):
    """VAD of `word` (lower-cased; in English also its lemma) in a bipolar lexicon, or None when not found.

    The language is `vad_lexicon_language`, else the lexicon's own (`load_vad_lexicon`), else English.
    """
    word = word.strip().lower()
    if not word:
        return None
    if word in lexicon:
        return lexicon[word]
    language = str(vad_lexicon_language or getattr(lexicon, "language", "en")).lower()
    if not language.startswith("en") or not word.isalpha():
        return None
    for lemma in lemmas(word):
        if lemma in lexicon:
            return lexicon[lemma]
    return None


def build_vad_table(tokenizer, lexicon, size=None, vad_lexicon_language=None):
    """`[size, 3]` float tensor: each token's VAD (BPE piece without its leading space, lower-cased, or in English its
    lemma). Special tokens, sub-word pieces and words missing from the lexicon get zeros.

    `lexicon`: a `VadLexicon`, a mapping `word -> (v, a, d)` or a path (read with `load_vad_lexicon`)."""
    import torch

    if not isinstance(lexicon, VadLexicon):
        lexicon = load_vad_lexicon(lexicon, vad_lexicon_language or "en")
    size = size or len(tokenizer)
    table = torch.zeros(size, 3)
    special = set(tokenizer.all_special_ids)
    for token_id, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))):
        if token_id in special or piece is None:
            continue
        scores = lookup_vad(lexicon, tokenizer.convert_tokens_to_string([piece]), vad_lexicon_language)
        if scores is not None:
            table[token_id] = torch.tensor(scores)
    return table


def vad_profile(token_ids, vad_table):
    """Mean (valence, arousal, dominance) over the tokens whose row in `vad_table` ([vocab, 3]) is non-zero: the VAD
    profile of a text, from its token ids (encode explanations with `processing_sevlm.explanation_ids`). The
    evaluation's `vad_distance` and the search index's third part both use it.

    Tokens without a lexicon entry have an all-zero row and carry no emotion, so they are left out rather than
    pulling the mean to neutral. Returns None when no token has a VAD value.
    """
    table = np.asarray(vad_table, dtype=np.float64)
    rows = table[np.asarray(list(token_ids), dtype=np.int64)].reshape(-1, 3)
    rows = rows[np.any(rows != 0, axis=1)]
    return rows.mean(axis=0) if len(rows) else None
