"""A small text-to-emotion classifier for the emotional-alignment (EA) metric.

ArtEmis judged EA with an LSTM trained on ArtEmis utterances; that model is not downloadable here, so this module
trains a fastText-style classifier (mean of unigram + bigram embeddings -> linear layer) on the training split's
explanations, for whatever emotion list the corpus records. It needs only torch and trains in seconds to minutes on
a CPU. Its held-out accuracy is saved with it: EA from a classifier near chance means nothing.

EA numbers are only comparable between models judged by the same classifier (same weights). The command is
`sevlm-emotion-classifier --dataset_path data/demo` (-> data/demo/emotion_classifier).
"""

import json
import logging
import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from configuration_sevlm import ARTEMIS_EMOTIONS
from sevlm.data.settings import CORPUS_OWNER
from sevlm.io import check_output_folder, record_entries, staged_output, write_json_atomic
from sevlm.names import emotion_key

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "classifier_config.json"
RESULTS_NAME = "training_results.json"
OUTPUT_FILES = (WEIGHTS_NAME, CONFIG_NAME, RESULTS_NAME)
OUTPUT_OWNER = "emotion classifier"
DEFAULT_FOLDER = "emotion_classifier"  # inside the corpus folder
# A classifier whose held-out accuracy is within this of the majority-class rate is too weak for EA to mean much.
NEAR_CHANCE_MARGIN = 0.05
FEW_HELD_OUT = 30  # held-out annotations below which an accuracy says little either way
WORD_PATTERN = re.compile(r"[\w']+")


def text_features(text):
    """Lower-cased words and adjacent word pairs: bigrams catch negations ("not happy") that words alone miss."""
    words = WORD_PATTERN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


class TextEmotionClassifier:
    """fastText-style emotion classifier: `fit(texts, labels)`, `predict(texts)`, `save(dir)`, `load(dir)`.

    Args:
        labels: class names in index order (default: the 9 ArtEmis emotions).
        embedding_dim: width of the feature embeddings.
        min_count: features seen fewer times in the training texts are dropped.
        max_features: keep at most this many features (the most frequent).
    """

    def __init__(self, labels=ARTEMIS_EMOTIONS, embedding_dim=64, min_count=2, max_features=100_000):
        self.labels = list(labels)
        self.embedding_dim = embedding_dim
        self.min_count = min_count
        self.max_features = max_features
        self.vocab = {}
        self.model = None

    # ------------------------------------------------------------------------------------------- training
    def fit(self, texts, labels, epochs=5, batch_size=256, learning_rate=5e-3, seed=0, progress=False):
        """Train on `texts` and their emotion `labels` (names from `self.labels`); returns self."""
        texts, targets = list(texts), self._label_ids(labels)
        if len(texts) != len(targets) or not texts:
            raise ValueError(f"Need as many texts as labels (and at least one): got {len(texts)} and {len(targets)}.")
        self._build_vocab(texts)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.model = _BagOfFeatures(len(self.vocab), self.embedding_dim, len(self.labels))
        optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        encoded = [self._encode(text) for text in texts]
        targets = torch.tensor(targets)
        self.model.train()
        for epoch in range(epochs):
            order = torch.randperm(len(texts), generator=generator).tolist()
            total = 0.0
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                ids, offsets = _pack([encoded[i] for i in batch])
                loss = nn.functional.cross_entropy(self.model(ids, offsets), targets[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            if progress:
                logger.info("epoch %d/%d: training loss %.4f", epoch + 1, epochs, total / len(texts))
        self.model.eval()
        return self

    train = fit  # both names are common

    def _build_vocab(self, texts):
        counts = {}
        for text in texts:
            for feature in text_features(text):
                counts[feature] = counts.get(feature, 0) + 1
        kept = [item for item in counts.items() if item[1] >= self.min_count]
        kept.sort(key=lambda item: (-item[1], item[0]))  # most frequent first; ties by name, so runs are repeatable
        self.vocab = {feature: index for index, (feature, _) in enumerate(kept[: self.max_features])}

    def _label_ids(self, labels):
        index = {emotion_key(name): i for i, name in enumerate(self.labels)}
        ids = []
        for row, label in enumerate(labels):
            key = emotion_key(label)
            if key not in index:
                raise ValueError(f"Label {label!r} (row {row}) is not one of {self.labels}.")
            ids.append(index[key])
        return ids

    def _encode(self, text):
        return [self.vocab[feature] for feature in text_features(text) if feature in self.vocab]

    # ------------------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_proba(self, texts, batch_size=1024):
        """Class probabilities, `[len(texts), len(labels)]`. A text without known features gets the prior the
        model learnt (its bias)."""
        if self.model is None:
            raise RuntimeError("The classifier is not trained: call fit(texts, labels) or load(directory) first.")
        texts = list(texts)
        chunks = []
        for start in range(0, len(texts), batch_size):
            ids, offsets = _pack([self._encode(text) for text in texts[start : start + batch_size]])
            chunks.append(self.model(ids, offsets).softmax(-1))
        return torch.cat(chunks) if chunks else torch.zeros(0, len(self.labels))

    def predict(self, texts):
        """The most likely emotion name per text."""
        return [self.labels[i] for i in self.predict_proba(texts).argmax(-1).tolist()]

    def accuracy(self, texts, labels):
        targets = self._label_ids(labels)
        predicted = self.predict_proba(texts).argmax(-1).tolist()
        return sum(p == t for p, t in zip(predicted, targets)) / len(targets) if targets else float("nan")

    # ---------------------------------------------------------------------------------------- persistence
    def save(self, directory):
        """Weights in safetensors, labels/vocabulary/sizes in JSON."""
        if self.model is None:
            raise RuntimeError("Nothing to save: the classifier is not trained.")
        os.makedirs(directory, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, os.path.join(directory, WEIGHTS_NAME))
        vocab = sorted(self.vocab, key=self.vocab.get)
        config = {
            "labels": self.labels,
            "embedding_dim": self.embedding_dim,
            "min_count": self.min_count,
            "max_features": self.max_features,
            "features": "lower-cased words and word bigrams, regex [\\w']+",
            "vocab": vocab,
        }
        write_json_atomic(os.path.join(directory, CONFIG_NAME), config, indent=None)

    @classmethod
    def load(cls, directory):
        config_path = os.path.join(directory, CONFIG_NAME)
        if not os.path.isfile(config_path):
            raise FileNotFoundError(f"No emotion classifier in {directory} (missing {CONFIG_NAME}).")
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        classifier = cls(config["labels"], config["embedding_dim"], config["min_count"], config["max_features"])
        classifier.vocab = {feature: index for index, feature in enumerate(config["vocab"])}
        classifier.model = _BagOfFeatures(len(classifier.vocab), classifier.embedding_dim, len(classifier.labels))
        classifier.model.load_state_dict(load_file(os.path.join(directory, WEIGHTS_NAME)))
        classifier.model.eval()
        return classifier


class _BagOfFeatures(nn.Module):
    def __init__(self, num_features, embedding_dim, num_labels):
        super().__init__()
        # One extra row so an empty vocabulary still makes a valid (if useless) table.
        self.embedding = nn.EmbeddingBag(num_features + 1, embedding_dim, mode="mean")
        self.classifier = nn.Linear(embedding_dim, num_labels)

    def forward(self, ids, offsets):
        return self.classifier(self.embedding(ids, offsets))


def _pack(encoded):
    """Flat ids + start offsets, the EmbeddingBag input format (an empty text yields a zero vector)."""
    lengths = [len(ids) for ids in encoded]
    offsets = torch.tensor([0] + lengths[:-1]).cumsum(0)
    ids = torch.tensor([i for ids in encoded for i in ids], dtype=torch.long)
    return ids, offsets


# ----------------------------------------------------------------------------------------- dataset training
def annotation_pairs(split):
    """(explanations, emotion names) of every annotation in a prepared split, without decoding images."""
    from sevlm.data.schema import emotion_names

    columns = split.select_columns(["explanations", "emotions"]).with_format(None)[:]
    texts, labels = [], []
    for explanations, emotions in zip(columns["explanations"], emotion_names(split, columns["emotions"])):
        texts.extend(explanations)
        labels.extend(emotions)
    return texts, labels


def chance_accuracy(labels):
    """Accuracy of always answering the most frequent label: the bar a useful classifier must clear."""
    if not labels:
        return float("nan")
    counts = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return max(counts.values()) / len(labels)


def is_near_chance(results):
    """True when the saved held-out accuracy does not clear the majority-class rate by NEAR_CHANCE_MARGIN."""
    accuracy, chance = results.get("validation_accuracy"), results.get("validation_chance_accuracy")
    return accuracy is not None and chance is not None and accuracy < chance + NEAR_CHANCE_MARGIN


def chance_words(results):
    """How the held-out accuracy stands to chance, for a warning: "is near chance (0.310)" or "is below chance
    (1.000)", with the number of held-out annotations when they are too few to judge a classifier by."""
    accuracy, chance = results.get("validation_accuracy"), results.get("validation_chance_accuracy")
    where = "below" if accuracy < chance - NEAR_CHANCE_MARGIN else "near"
    words = f"is {where} chance ({chance:.3f}, always the most frequent emotion)"
    count = results.get("num_validation_annotations")
    if isinstance(count, int) and count < FEW_HELD_OUT:
        words += f", on only {count} held-out annotation{'' if count == 1 else 's'} (too few to judge it)"
    return words


def read_results(directory):
    """The training results saved beside a classifier ({} when absent)."""
    path = os.path.join(directory, RESULTS_NAME)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def train_from_dataset(dataset_path, output_dir=None, embedding_dim=64, min_count=2, max_features=100_000, epochs=5,
                       batch_size=256, learning_rate=5e-3, seed=0, overwrite=False):
    """Train on the `train` split of a prepared dataset (its own emotion list), score the `validation` split, save
    both to `output_dir` (default `<dataset_path>/emotion_classifier`). Returns (classifier, results dict).

    Results: annotation counts, `validation_accuracy` and `validation_chance_accuracy` (the majority-class rate of
    the validation annotations). A classifier near chance is saved but logged as a warning.
    """
    from sevlm.data.schema import corpus_emotions, load_corpus

    output_dir = output_dir or os.path.join(dataset_path, DEFAULT_FOLDER)
    check_output_folder(output_dir, OUTPUT_OWNER, OUTPUT_FILES, overwrite, "--overwrite", "--output_dir")
    dataset = load_corpus(dataset_path, ["train"])  # the classifier trains on the train split
    texts, labels = annotation_pairs(dataset["train"])
    classifier = TextEmotionClassifier(corpus_emotions(dataset["train"]), embedding_dim, min_count, max_features)
    classifier.fit(texts, labels, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed, progress=True)
    results = {"labels": classifier.labels, "num_train_annotations": len(texts), "vocab_size": len(classifier.vocab)}
    if "validation" in dataset:
        held_out_texts, held_out_labels = annotation_pairs(dataset["validation"])
        results["validation_accuracy"] = classifier.accuracy(held_out_texts, held_out_labels)
        results["validation_chance_accuracy"] = chance_accuracy(held_out_labels)
        results["num_validation_annotations"] = len(held_out_texts)
        if is_near_chance(results):
            logger.warning(
                "The emotion classifier's validation accuracy (%.3f) %s: emotional alignment judged by it says little.",
                results["validation_accuracy"], chance_words(results),
            )
    else:
        logger.warning("%s has no validation split: no held-out accuracy.", dataset_path)
    with staged_output(output_dir, OUTPUT_OWNER, OUTPUT_FILES, overwrite, "--overwrite", "--output_dir") as staging:
        classifier.save(staging)
        write_json_atomic(os.path.join(staging, RESULTS_NAME), results)
    if Path(output_dir).resolve().parent == Path(dataset_path).resolve():
        # A classifier inside a corpus folder belongs to that corpus: preparing it again replaces it too.
        record_entries(dataset_path, [Path(output_dir).name], CORPUS_OWNER)
    return classifier, results


