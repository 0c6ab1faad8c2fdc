"""The schema of a prepared SEVLM corpus, for any emotion taxonomy: one row per item (a painting, a photo, ...).

    painting_id        string             the item's id (ArtEmis: "art_style/painting", NFC)
    art_style          string             ArtEmis: the WikiArt style folder; other corpora: the image's folder
    painting           string             ArtEmis: the WikiArt file name without .jpg; other corpora: the image's stem
    image              Image()            the picture
    emotions           list[ClassLabel]   one class per annotation; the ClassLabel's `names` IS the corpus's emotion
                                          list, in class order
    explanations       list[string]       one per annotation, aligned with `emotions`
    emotion_histogram  list[float32] (K)  share of each class among the item's annotations, in class order, sum 1
    source             list[string]       per annotation: where it came from ("v1", "contrastive", a file name)

A prepared corpus is a `DatasetDict` (train / validation / test) saved with `save_to_disk`: `load_corpus(path)` reads
one back with errors that name the path and what it holds instead; `corpus_emotions(dataset)` reads its emotion list.
"""

from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, List, Value

from sevlm.io import display_path, listed

PREPARE_HINT = "prepare it with sevlm-prepare, sevlm-prepare-artemis or sevlm-demo-corpus"


def corpus_features(emotions, with_image=True):
    """`Features` of a corpus whose classes are `emotions` (names in class order)."""
    emotions = list(emotions)
    features = {
        "painting_id": Value("string"),
        "art_style": Value("string"),
        "painting": Value("string"),
        "image": Image(),
        "emotions": List(ClassLabel(names=emotions)),
        "explanations": List(Value("string")),
        "emotion_histogram": List(Value("float32"), length=len(emotions)),
        "source": List(Value("string")),
    }
    if not with_image:
        del features["image"]
    return Features(features)


# ------------------------------------------------------------------------------------------ what was given
def describe(value):
    """A short description of any object, for errors: never its rows (a `Dataset`'s repr lists them)."""
    if isinstance(value, Dataset):
        return f"a Dataset ({value.num_rows} rows, columns {listed(value.column_names)})"
    if isinstance(value, DatasetDict):
        return f"a DatasetDict (splits {listed(list(value))})"
    if isinstance(value, Features):
        return f"Features (columns {listed(list(value))})"
    return f"a {type(value).__name__}"


def check_corpus(corpus, what="The corpus is"):
    """`corpus` itself when it is a `DatasetDict` of splits; otherwise a short error naming what it is instead."""
    if isinstance(corpus, DatasetDict):
        return corpus
    raise ValueError(
        f"{what} {describe(corpus)}, not a corpus of splits (a DatasetDict with train / validation / test): "
        f"{PREPARE_HINT}, or wrap a single split as DatasetDict({{'train': dataset, ...}})."
    )


def load_corpus(path, splits=(), flag="--dataset_path"):
    """The prepared corpus saved at `path` (a `DatasetDict`), holding every split of `splits`.

    Errors name `flag`, the path and what it holds instead (a missing folder, a single saved `Dataset`, a folder that
    is no saved dataset, a missing split), never the rows.
    """
    path = Path(path)
    shown = f"{flag} {display_path(path)}"
    if not path.is_dir():
        raise FileNotFoundError(f"{shown} is not a folder; {PREPARE_HINT}.")
    if not (path / "dataset_dict.json").is_file() and not (path / "state.json").is_file():
        raise FileNotFoundError(f"{shown} holds no saved corpus (no dataset_dict.json); {PREPARE_HINT}.")
    corpus = check_corpus(read_saved(path, shown), f"{shown} holds")
    missing = [split for split in splits if split and split not in corpus]
    if missing:
        raise ValueError(f"{shown} has the splits {listed(list(corpus))}, not {listed(missing)}.")
    return corpus


def read_saved(path, shown):
    """`datasets.load_from_disk(path)`; a damaged save (a file cut short) is an error naming `shown` and the files
    that cannot be read."""
    from datasets import load_from_disk

    try:
        return load_from_disk(str(path))
    except Exception as error:  # a file cut short or damaged: pyarrow's ArrowInvalid, OSError, JSON or datasets' errors
        damaged = damaged_corpus_files(path)
        where = f": {listed(damaged)} cannot be read" if damaged else ""
        raise ValueError(
            f"{shown} cannot be read{where} ({type(error).__name__}: {error}); the corpus is damaged (a copy cut short?). "
            f"{PREPARE_HINT[0].upper()}{PREPARE_HINT[1:]} again, or copy it again."
        ) from None


def damaged_corpus_files(path):
    """The files of a saved corpus at `path` that cannot be read: its JSON files and its Arrow files, each opened
    whole (as `load_from_disk` memory-maps them)."""
    import json

    import pyarrow as pa

    damaged = []
    for file in sorted(Path(path).rglob("*")):
        try:
            if file.suffix == ".json":
                json.loads(file.read_text(encoding="utf-8"))
            elif file.suffix == ".arrow":
                with pa.memory_map(str(file)) as source:
                    pa.ipc.open_stream(source).read_all()
        except Exception:  # noqa: BLE001 - any failure to read it makes it a damaged file
            damaged.append(display_path(file))
    return damaged


# ------------------------------------------------------------------------------------------ emotion list
def corpus_emotions(dataset):
    """The emotion list (class order) of a prepared corpus: a `Dataset`, a `DatasetDict` or a `Features`."""
    if isinstance(dataset, DatasetDict):
        lists = {tuple(corpus_emotions(split)) for split in dataset.values()}
        if len(lists) != 1:
            raise ValueError(f"The splits of this corpus have different emotion lists: {sorted(lists)}.")
        return list(lists.pop())
    if not isinstance(dataset, (Dataset, Features)):
        raise TypeError(f"Expected a prepared corpus (a Dataset, a DatasetDict or its Features), got {describe(dataset)}.")
    features = dataset if isinstance(dataset, Features) else dataset.features
    if "emotions" not in features:
        raise ValueError(f"The dataset has columns {listed(list(features))}, not `emotions`; {PREPARE_HINT}.")
    feature = getattr(features["emotions"], "feature", None)
    if not isinstance(feature, ClassLabel):
        raise ValueError(
            "This corpus does not record its emotion list (its `emotions` column is not a list of ClassLabel, as in "
            f"corpora of versions before the emotion list was recorded); {PREPARE_HINT} again."
        )
    return list(feature.names)


def emotion_names(dataset, column_values):
    """`emotions` column values (class ids) as class names."""
    names = corpus_emotions(dataset)
    return [[names[value] for value in row] for row in column_values]


__all__ = ["check_corpus", "corpus_emotions", "corpus_features", "emotion_names", "load_corpus"]
