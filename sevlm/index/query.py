"""Reading what a user asks an emotion index for: emotion mixes, filters, and words.

Names follow the one rule of `sevlm.names` (case, Unicode form, `_` and extra spaces do not matter) and are written
as on every command line: `awe=0.6,sadness=0.4` (the weight after the last `=`), a name holding a comma in double
quotes (`"mixed, feelings"=0.5,joy=0.5`).

Words are read word by word: a word counts when it names one of the index's emotions or when the model's word list
(its VAD table) gives it a feeling; the others are reported with the nearest words the list knows.

Conditions on the works' metadata are written `COLUMN OPERATOR VALUE`: `artist=Claude Monet`, `date>=1900`,
`room!=3` (operators `=`, `!=`, `<`, `<=`, `>`, `>=`; `==` reads as `=`), several in one text separated by `;` or
line breaks (`artist=Claude Monet; date>=1900`), every one of which must hold. A value that holds a `;`, or starts
with a quote or an operator character (`=`, `!`, `<`, `>`), is written in double or single quotes, a quote inside
doubled: `title="Red; Blue"`, `title="=X"`, `title="The ""Storm"" at sea"`; an unquoted value starting with an operator
character (`title= =X`) is an error. Column names follow the name rule; how values compare is
`sevlm.index.metadata`'s.
"""

import difflib
import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from sevlm.io import display_path
from sevlm.names import emotion_key, match_emotion, parse_weighted_names, split_names

WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
SUGGESTIONS = 3  # nearest known words offered for a word that was not used


# ------------------------------------------------------------------------------------------ emotion mixes
def parse_emotion_mix(text_or_mapping, emotions):
    """`"awe=0.6,sadness=0.4"` (or `"awe,sadness"`: equal parts, or a mapping) -> a distribution over `emotions`.

    Weights must be finite numbers >= 0 with a positive sum; they are normalised to sum 1 (scaled by the largest
    first, so that huge weights such as 1e308 do not overflow). A name given twice is an error.
    """
    pairs = _pairs(text_or_mapping, "emotion mix")
    if not pairs:
        raise ValueError(f"Empty emotion mix {text_or_mapping!r}: write it like 'awe=0.6,sadness=0.4'.")
    mix = np.zeros(len(emotions), dtype=np.float64)
    given = {}
    for name, value in pairs:
        position = _position(name, emotions, "the emotion mix", value)
        if position in given:
            raise ValueError(f"The emotion mix names {emotions[position]!r} twice ({given[position]!r} and {str(name).strip()!r}); give each emotion once.")
        given[position] = str(name).strip()
        mix[position] = _weight(name, "1" if value is None else value, "Emotion mix: the weight of")
    top = mix.max()
    if not top > 0:
        raise ValueError(f"Emotion mix {text_or_mapping!r} has no positive weight.")
    mix = mix / top
    return (mix / mix.sum()).astype(np.float32)


def parse_min_scores(value, emotions):
    """`0.3` (the hit's own score: the probability of its predicted emotion) or `"awe=0.3,fear=0.1"` (those
    emotions' probabilities) -> `(float or None, {emotion position: minimum})`."""
    if value is None or value == "":
        return None, {}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _check_probability(float(value), "min_score"), {}
    if not isinstance(value, dict):
        try:
            return _check_probability(float(str(value).strip()), "min_score"), {}
        except ValueError as error:
            if "=" not in str(value):
                raise ValueError(f"min_score {value!r}: write a number (e.g. 0.3) or emotion=number pairs (awe=0.3,fear=0.1).") from error
    minimums = {}
    for name, number in _pairs(value, "min_score"):
        if number is None:
            raise ValueError(f"min_score {value!r}: write emotion=number pairs (awe=0.3,fear=0.1); {str(name).strip()!r} has no number.")
        position = _position(name, emotions, "min_score", number)
        minimums[position] = _check_probability(_weight(name, number, "min_score: the minimum of"), f"min_score {emotions[position]}")
    return None, minimums


def parse_emotion_filter(value, emotions):
    """Positions of the emotions a filter names: `"sadness,fear"` (a comma-separated text, quotes for names with
    commas) or a list of names."""
    names = split_names(value, "emotion filter") if isinstance(value, str) else [str(name) for name in value]
    positions = []
    for name in names:
        if not name.strip():
            continue
        match = match_emotion(name, emotions)
        if match is None:
            raise ValueError(f"Unknown emotion filter {name.strip()!r}; this index's emotions are {list(emotions)}.")
        positions.append(list(emotions).index(match))
    return positions


def _pairs(value, what):
    if isinstance(value, dict):
        return [(name, weight) for name, weight in value.items()]
    return [(name, weight) for name, weight in parse_weighted_names(str(value), what) if name or weight is not None]


def _position(name, emotions, what, value=None):
    match = match_emotion(name, emotions)
    if match is not None:
        return list(emotions).index(match)
    shown = str(name).strip()
    before, sep, after = shown.rpartition("=")
    if sep and match_emotion(before, emotions) is not None:  # "awe=x": a weight that is not a number
        raise ValueError(f"{what[0].upper() + what[1:]}: the weight of {before.strip()!r} is {after.strip()!r}, not a number.")
    raise ValueError(f"Unknown emotion {shown!r} in {what}; this index's emotions are {list(emotions)}.")


def _weight(name, value, what):
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {str(name).strip()!r} is {value!r}, not a number.") from None
    if isinstance(value, bool) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"{what} {str(name).strip()!r} must be a number >= 0, got {value!r}.")
    return weight


def _check_probability(value, what):
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be between 0 and 1, got {value}.")
    return value


# ------------------------------------------------------------------------------------------------- words
def normalised(text):
    """Text compared with emotion names: NFC, case folded, `_` read as a space (the rule of `emotion_key`)."""
    return unicodedata.normalize("NFC", str(text)).casefold().replace("_", " ")


def emotion_spans(text, emotions):
    """`[(start, end, emotion)]` of the emotions named in `normalised(text)` (whole words, multi-word names as
    phrases), in the text's order."""
    found = []
    lowered = normalised(text)
    for name in emotions:
        words = emotion_key(name).split()
        if not words:
            continue
        match = re.search(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)", lowered)
        if match:
            found.append((match.start(), match.end(), name))
    return sorted(found)


def emotion_names_in(text, emotions):
    """The emotions named in `text` (whole words, any case, multi-word names as phrases), in the text's order."""
    return [name for _, _, name in emotion_spans(text, emotions)]


def known_words(tokenizer, vad_table):
    """The whole words (single tokens after a space) that the VAD table gives a feeling, sorted: what word search
    can use, and where suggestions come from."""
    table = np.asarray(vad_table)
    ids = np.flatnonzero(np.any(table != 0, axis=1)).tolist()
    words = set()
    for token in tokenizer.convert_ids_to_tokens(ids):
        text = tokenizer.convert_tokens_to_string([token])
        if text.startswith(" ") and text.strip():
            words.add(text.strip().casefold())
    return sorted(words)


def has_feeling(word, tokenizer, vad_table):
    """Whether any token of `word` (tokenised as an explanation's word: after a space) has a VAD value."""
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    return bool(np.any(np.asarray(vad_table)[np.asarray(ids, dtype=np.int64)] != 0))


def read_words(text, emotions, tokenizer, vad_table, vocabulary):
    """Split a words query into what it can use: `(named emotions, words with a feeling, unused)` where unused is
    `[(word, [nearest known words])]`. `vocabulary`: `known_words(...)`."""
    spans = emotion_spans(text, emotions)
    named = [name for _, _, name in spans]
    felt, unused = [], []
    for match in WORD.finditer(normalised(text)):
        word = match.group()
        in_name = any(start <= match.start() and match.end() <= end for start, end, _ in spans)
        if has_feeling(word, tokenizer, vad_table):
            felt.append(word)
        elif not in_name:
            unused.append((word, difflib.get_close_matches(word, vocabulary, n=SUGGESTIONS, cutoff=0.75)))
    return named, felt, list({word: (word, suggestions) for word, suggestions in unused}.values())


def describe_unused(unused):
    """`'melancholic' (nearest known: melancholy), 'zzz'` for messages."""
    parts = []
    for word, suggestions in unused:
        hint = f" (nearest known: {', '.join(suggestions)})" if suggestions else ""
        parts.append(f"{word!r}{hint}")
    return ", ".join(parts)


class UnusableWords(ValueError):
    """A words query none of whose words can be used. `unused`: `[(word, suggestions)]`. Commands add how to search
    otherwise in their own terms (a flag, or the app's controls)."""

    def __init__(self, text, unused, emotions):
        self.text, self.unused, self.emotions = text, unused, list(emotions)
        super().__init__(
            f"No word of {text!r} could be used: {describe_unused(unused) or 'it holds no words'}. A word counts when "
            f"the model's word list gives it a feeling, or when it names one of this index's emotions "
            f"({', '.join(self.emotions)})."
        )


# ------------------------------------------------------------------------------------------- conditions
OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
CONDITION = re.compile(r"^\s*(?P<column>[^=!<>]*?)\s*(?P<operator>[=!<>]+)\s*(?P<value>.*?)\s*$", re.S)
EXAMPLE_CONDITIONS = "artist=Claude Monet, date>=1900"
OPERATOR_CHARACTERS = "=!<>"
QUOTES = "\"'"
SEPARATOR = re.compile(r"[;\r\n]")  # between conditions written in one text
CONDITION_HEAD = re.compile(r"[^=!<>;\r\n]*?[ \t]*[=!<>]+[ \t]*")  # a condition's column and operator


@dataclass(frozen=True)
class Condition:
    """One condition on a metadata column: `column` (as the index names it), `operator` (one of `OPERATORS`),
    `value` (the text compared with), `text` (as the user wrote it)."""

    column: str
    operator: str
    value: str
    text: str

    def __str__(self):
        return f"{self.column}{self.operator}{self.value}"


def split_conditions(text):
    """`"artist=Claude Monet; date>=1900"` -> `["artist=Claude Monet", "date>=1900"]`: conditions are separated by
    `;` or line breaks, except inside a quoted value (`title="Red; Blue"`). A quote never closed, or text after a
    value's closing quote, is an error naming the condition."""
    items, rest = [], "" if text is None else str(text)
    while rest.strip():
        head = CONDITION_HEAD.match(rest)
        if head and rest[head.end() : head.end() + 1] and rest[head.end()] in QUOTES:  # "" is in every string
            end = closing_quote(rest, head.end())
            if end is None:
                raise ValueError(f"The condition {rest.strip()!r}: the quote ({rest[head.end()]}) that opens its value is never closed; close it after the value, doubling a quote inside it.")
            after = re.match(r"[ \t]*(?:[;\r\n]|$)", rest[end + 1 :])
            if after is None:
                tail = re.split(r"[;\r\n]", rest)[0]
                raise ValueError(f"The condition {tail.strip()!r} goes on after its value's closing quote; quote the whole value, doubling a quote inside it, and separate conditions with ';'.")
            items.append(rest[: end + 1].strip())
            rest = rest[end + 1 + after.end() :]
            continue
        separator = SEPARATOR.search(rest)
        item, rest = (rest, "") if separator is None else (rest[: separator.start()], rest[separator.end() :])
        if item.strip():
            items.append(item.strip())
    return items


def closing_quote(text, start):
    """Position of the quote that closes the one at `start` (a doubled quote inside is one quote), or None."""
    quote, position = text[start], start + 1
    while True:
        found = text.find(quote, position)
        if found < 0:
            return None
        if text[found + 1 : found + 2] != quote:
            return found
        position = found + 2


def parse_conditions(conditions, columns, folder=None):
    """`["artist=Claude Monet", "date>=1900"]` (or one such text, conditions separated by `;` or line breaks, or
    `Condition`s) -> `[Condition]`, every column matched to the index's metadata `columns` by the name rule. Errors
    name the condition and say what is allowed; `folder`: the index's, named in the error of an index without
    metadata."""
    if conditions is None or isinstance(conditions, (str, Condition)):
        conditions = [] if conditions is None else [conditions]
    parsed = []
    for item in conditions:
        if isinstance(item, Condition):
            parsed.append(item)
            continue
        parsed += [parse_condition(text, columns, folder) for text in split_conditions(item)]
    return parsed


def parse_condition(text, columns, folder=None):
    """One condition `COLUMN OPERATOR VALUE` (see the module docstring)."""
    text = str(text)
    found = CONDITION.match(text)
    if found is None or not found.group("column"):
        raise ValueError(f"The condition {text!r} is not COLUMN OPERATOR VALUE: write it like {EXAMPLE_CONDITIONS.split(', ')[0]!r} or {EXAMPLE_CONDITIONS.split(', ')[1]!r} (operators {' '.join(OPERATORS)}).")
    column, operator, value = found.group("column"), found.group("operator"), found.group("value")
    operator = "=" if operator == "==" else operator
    if operator not in OPERATORS:
        hint = {"=>": ">=", "=<": "<=", "<>": "!=", "=!": "!="}.get(operator)
        raise ValueError(f"Unknown operator {operator!r} in the condition {text!r}; use one of {' '.join(OPERATORS)}" + (f" (did you mean {hint}?)." if hint else "."))
    match = match_column(column, columns, f"the condition {text!r}", folder)
    if value[:1] and value[0] in QUOTES:
        end = closing_quote(value, 0)
        if end is None or end != len(value) - 1:
            problem = "is never closed" if end is None else "is closed before the value ends"
            raise ValueError(f"The condition {text!r}: the quote ({value[0]}) that opens its value {problem}; quote the whole value, doubling a quote inside it ({column}=\"a \"\"b\"\"\").")
        value = value[1:-1].replace(value[0] * 2, value[0])
    elif value[:1] and value[0] in OPERATOR_CHARACTERS:
        raise ValueError(
            f"The value {value!r} of the condition {text!r} starts with {value[0]!r}, an operator character; write the "
            f"operator once, or, if the value is meant, quote it: {match}{operator}\"{value}\"."
        )
    return Condition(match, operator, value, text.strip())


def match_column(column, columns, where, folder=None):
    """The metadata column of `columns` that `column` names (by the name rule); else an error naming `where` it was
    asked for, with the nearest column. `folder`: the index's, named in the error of an index without metadata."""
    from sevlm.names import emotion_key, match_emotion

    if not columns:
        target = display_path(folder) if folder is not None else "INDEX"
        raise ValueError(
            f"{where[0].upper() + where[1:]} needs the works' metadata, and this index holds none. Attach it without "
            f"rebuilding the index: sevlm-index --output_dir {target} --metadata works.csv (a CSV file with a row per "
            "work: its file or id, then columns such as artist, title, date)."
        )
    match = match_emotion(column, columns)
    if match is None:
        near = difflib.get_close_matches(emotion_key(column), [emotion_key(name) for name in columns], n=1, cutoff=0.6)
        hint = f" (did you mean {next(name for name in columns if emotion_key(name) == near[0])!r}?)" if near else ""
        raise ValueError(f"Unknown column {str(column).strip()!r} in {where}{hint}; the works' metadata has the columns {', '.join(columns)}.")
    return match
