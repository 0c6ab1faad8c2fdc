"""Emotion names: the one rule by which two names are the same class, matching labels from files and users to a
model's or a corpus's classes, and lists of names written on a command line.

The rule itself, `emotion_key`, lives in `configuration_sevlm.py` (the model files travel with every model folder
and use it too); this module imports it only when a name is first compared, so that commands answer `--help`
without loading transformers.
"""

import csv
import unicodedata


def emotion_key(name):
    """NFC, case folded, `_` read as a space, surrounding and repeated spaces ignored (`configuration_sevlm.emotion_key`)."""
    from configuration_sevlm import emotion_key as key

    return key(name)


def clean_name(name):
    """A class name as it is stored: NFC, surrounding and repeated spaces removed (case and `_` kept)."""
    return " ".join(unicodedata.normalize("NFC", str(name)).split())


def match_emotion(name, classes):
    """The class of `classes` that `name` means (by `emotion_key`), or None."""
    key = emotion_key(name)
    return next((candidate for candidate in classes if emotion_key(candidate) == key), None)


def check_distinct(names, what="The emotion list"):
    """Raise when two names of `names` are one class by `emotion_key` (e.g. "Awe" and "awe")."""
    seen = {}
    for name in names:
        key = emotion_key(name)
        if key in seen:
            raise ValueError(
                f"{what} names one class twice: {seen[key]!r} and {name!r} (names are compared ignoring case, Unicode "
                "form, '_' vs ' ' and extra spaces)."
            )
        seen[key] = name
    return names


class EmotionVocabulary:
    """The emotion classes of a corpus, and the matching of raw labels ("Something_Else ") to class names.

    With `names`, the classes are fixed (their order is the class order) and other labels are unknown; without,
    every new label becomes a class, in order of first appearance.
    """

    def __init__(self, names=None):
        self.fixed = names is not None
        self.names, self.index, self.cache = [], {}, {}
        for name in names or ():
            canonical = clean_name(name)
            key = emotion_key(canonical)
            if not key:
                raise ValueError(f"The emotion list {list(names)} holds an empty name.")
            if key in self.index:
                raise ValueError(
                    f"The emotion list names one class twice: {self.names[self.index[key]]!r} and {canonical!r} "
                    "(labels are matched ignoring case, Unicode form, '_' vs ' ' and extra spaces)."
                )
            self.index[key] = len(self.names)
            self.names.append(canonical)
        if self.fixed and not self.names:
            raise ValueError("The emotion list is empty; give at least one class.")

    def match(self, label):
        """The class name of a raw label, or None (empty, or not a class of a fixed list)."""
        hit = self.cache.get(label)
        if hit is not None or label in self.cache:
            return hit
        key = emotion_key(label)
        position = self.index.get(key) if key else None
        if position is None and key and not self.fixed:
            position = self.index[key] = len(self.names)
            self.names.append(clean_name(label))
        name = None if position is None else self.names[position]
        self.cache[label] = name
        return name


# ------------------------------------------------------------------------------------------ command lines
def split_names(text, flag="--emotions"):
    """`a,b c,"d, e"` -> ["a", "b c", "d, e"]: commas separate, double quotes keep a name that holds a comma (CSV
    quoting, `""` for a quote inside)."""
    try:
        (fields,) = list(csv.reader([text], skipinitialspace=True)) or [[]]
    except (csv.Error, ValueError) as error:
        raise ValueError(f"{flag} {text!r}: {error}.") from error
    return [field.strip() for field in fields]


def parse_emotion_list(text, flag="--emotions"):
    """`--emotions "a,b c,d"` -> ["a", "b c", "d"] (see `split_names`)."""
    names = split_names(text, flag)
    if not any(names) or not all(names):
        raise ValueError(
            f"{flag} {text!r}: give class names separated by commas, e.g. {flag} \"joy,calm,anger\" (quote a name that "
            "holds a comma: '\"mixed, feelings\",joy')."
        )
    return names


def parse_weighted_names(text, flag="--emotions"):
    """`awe=0.6,sadness=0.4` -> [("awe", "0.6"), ("sadness", "0.4")]; a name alone gets weight None. The weight
    follows the LAST `=` of an item, so names may hold `=`; quote a name that holds a comma."""
    pairs = []
    for item in split_names(text, flag):
        name, sep, weight = item.rpartition("=")
        if not sep or not _is_number(weight):
            name, weight = item, None
        pairs.append((name.strip(), weight if weight is None else weight.strip()))
    return pairs


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
