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

`corpus_emotions(dataset)` reads the emotion list back. Corpora saved before the list was recorded (string
`emotions` and a 9-share histogram) are ArtEmis corpora: their list is `ARTEMIS_EMOTIONS`.
"""

from datasets import ClassLabel, DatasetDict, Features, Image, List, Value

from configuration_sevlm import ARTEMIS_EMOTIONS


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


def corpus_emotions(dataset):
    """The emotion list (class order) of a prepared corpus: a `Dataset`, a `DatasetDict` or a `Features`."""
    if isinstance(dataset, DatasetDict):
        lists = {tuple(corpus_emotions(split)) for split in dataset.values()}
        if len(lists) != 1:
            raise ValueError(f"The splits of this corpus have different emotion lists: {sorted(lists)}.")
        return list(lists.pop())
    features = dataset if isinstance(dataset, Features) else dataset.features
    if "emotions" not in features:
        raise ValueError(
            f"The dataset has columns {list(features)}, not `emotions`; build it with dataset_scripts/prepare_corpus.py, "
            "prepare_artemis.py or make_demo_corpus.py."
        )
    feature = getattr(features["emotions"], "feature", None)
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    histogram = features.get("emotion_histogram")
    if getattr(histogram, "length", None) == len(ARTEMIS_EMOTIONS):
        return list(ARTEMIS_EMOTIONS)  # an ArtEmis corpus saved before the emotion list was recorded
    raise ValueError(
        "This corpus does not record its emotion list (its `emotions` column is not a list of ClassLabel); prepare it "
        "again with dataset_scripts/prepare_corpus.py."
    )


def emotion_names(dataset, column_values):
    """`emotions` column values (class ids, or names in old corpora) as names."""
    names = corpus_emotions(dataset)
    return [[names[value] if isinstance(value, int) else value for value in row] for row in column_values]


__all__ = ["corpus_emotions", "corpus_features", "emotion_names"]
