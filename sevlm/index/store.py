"""An emotion index of a collection, and search over it: what a SEVLM model says about every image, searchable.

    from sevlm.index.store import EmotionIndex, write_gallery

    index = EmotionIndex.build(["paintings/"], "index/", model="outputs/sevlm-demo")    # or dataset_path=, split=
    index = EmotionIndex.load("index/")
    hits = index.search(emotions={"awe": 0.6, "sadness": 0.4}, top_k=10)  # an emotion mix
    hits = index.search(id="paintings/storm.jpg")                          # works that feel like this one
    hits = index.search(image="query.jpg", visual_weight=0.3)              # a new image, encoded on the fly
    hits = index.search(text="calm, melancholic", emotion="sadness")       # words, with a filter
    index.add(["new-paintings/"])                                          # only the new images are computed
    write_gallery(index, hits, "gallery/")                                 # index.html + contact_sheet.png

Per image the index stores (a `datasets.Dataset` on disk): `id` (the file's absolute path, or the dataset's
`painting_id`), `file`, `emotion`, `score`, `scores` (one probability per `config.emotions`), `explanation`, `vad`
(the explanation's VAD profile: the mean of the non-zero rows of the model's `vad_table` over its tokens; NaN when
no token has one), `image_embeds` (the pooled image features the contrastive head uses) and a small JPEG
`thumbnail`. Every prediction comes from `pipeline_sevlm.predict_batch`, the project's one prediction path.

Similarity. A query has up to three parts, each a distance in [0, 1]:

- emotion: the Hellinger distance between emotion distributions, H(p, q) = ||sqrt(p) - sqrt(q)|| / sqrt(2). The
  FAISS index holds sqrt(scores), so its L2 order is exactly the Hellinger order.
- visual: (1 - cos) / 2 between image embeddings (the FAISS index holds unit vectors: L2^2 = 2 - 2 cos).
- vad: the Euclidean distance between VAD profiles / (2 sqrt 3), the diagonal of the [-1, 1]^3 cube (1 for an
  item whose explanation has no VAD profile).

    distance = w_emotion * emotion + visual_weight * visual + vad_weight * vad,  w_emotion = 1 - visual_weight - vad_weight

and a hit's `score` is 1 - distance. Parts the query does not have get no weight and the others are scaled to sum
to 1. The candidates come from one FAISS index per part and are re-scored exactly; the candidate lists grow until
the threshold algorithm proves that no unseen item can beat the k-th hit (exact with exact indexes).

Layout of an index folder (`index_config.json` is written last and is the commit point: a build that stops
before it leaves the previous index as it was):

    index_config.json      model, its fingerprint, emotions, parts, FAISS files, generation settings, sizes
    parts/part-NNNNN/      Dataset.save_to_disk, one part per build / add
    faiss/<part>-NNNNN.faiss   one FAISS index per similarity part (emotion, visual, vad) over all rows, attached
                           to the Dataset (`index.dataset.search`); Flat, or IVF past APPROXIMATE_FROM items
    vad-NNNNN/             the model's tokenizer and vad_table (for text queries without loading the model)
    .pending/              batches of an unfinished build (resumed by the next build with the same model)

Data-parallel builds: under `torchrun` / `accelerate launch` each process predicts every n-th batch into
`.pending/`, and the main process merges them when all are done.
"""

import functools
import hashlib
import html
import io
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sevlm.images import IMAGE_EXTENSIONS, find_images
from sevlm.io import display_path, json_safe, replace_file, write_json_atomic

INDEX_FORMAT = "sevlm-emotion-index"
INDEX_VERSION = 1
CONFIG_NAME = "index_config.json"
PARTS_DIR = "parts"
FAISS_DIR = "faiss"
PENDING_DIR = ".pending"
PENDING_NAME = "pending.json"
VAD_TABLE_FILE = "vad_table.safetensors"
COMPONENTS = ("emotion", "visual", "vad")
# Exact (flat) FAISS indexes below these sizes, approximate ones (IVF) from them on. Measured with
# bench/bench_index.py on a 2-core CPU (docs/BENCHMARKS.md), one query: a flat scan of 100,000 768-wide image
# embeddings takes about 40 ms and of 1,000,000 about 0.5 s, IVF a few ms; the emotion and VAD parts (9 and 3
# numbers per item) scan 1,000,000 items in about 10 ms, so they stay exact (no recall lost) up to 2,000,000.
APPROXIMATE_FROM = 100_000
APPROXIMATE_FROM_LOW_DIM = 2_000_000  # for vectors of at most LOW_DIM numbers
LOW_DIM = 32
VAD_SCALE = 2.0 * math.sqrt(3.0)  # the longest distance in the [-1, 1]^3 VAD cube
THUMBNAIL_SIZE = 128
# Below this many rows allowed by the filters, search scores those rows exactly instead of asking FAISS.
BRUTE_FORCE_ROWS = 4096
BOUND_TOLERANCE = 1e-5  # float32 rounding of FAISS distances against the float64 re-scoring
DEMO_MODEL = "outputs/sevlm-demo"


# ------------------------------------------------------------------------------------------------- storage
def index_features(emotions, embedding_dim):
    """The `datasets.Features` of an index with these emotions and embedding width."""
    from datasets import Features, Image, List, Value

    return Features(
        {
            "id": Value("string"),
            "file": Value("string"),
            "emotion": Value("string"),
            "score": Value("float32"),
            "scores": List(Value("float32"), length=len(emotions)),
            "explanation": Value("string"),
            "vad": List(Value("float32"), length=3),
            "image_embeds": List(Value("float32"), length=int(embedding_dim)),
            "thumbnail": Image(),
        }
    )


def vad_profile(text, tokenizer, vad_table):
    """The VAD profile of `text`: the mean (valence, arousal, dominance) of the non-zero rows of `vad_table` over
    its tokens, tokenised as the processor tokenises explanations (a leading space, no special tokens).

    Tokens without a lexicon entry have all-zero rows and carry no emotion, so they are left out rather than
    pulling the mean to neutral. Returns None when no token has a VAD value.
    """
    text = (text or "").strip()
    if not text:
        return None
    ids = tokenizer(" " + text, add_special_tokens=False)["input_ids"]
    rows = np.asarray(vad_table, dtype=np.float32)[np.asarray(ids, dtype=np.int64)].reshape(-1, 3)
    rows = rows[np.any(rows != 0, axis=1)]
    return rows.mean(axis=0) if len(rows) else None


def model_fingerprint(model):
    """sha256 over the model's state dict (names, dtypes, shapes, bytes): two models give the same fingerprint
    only when they compute the same thing. Recorded in the index so that an index is never extended or queried
    by image with another model's numbers."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ vectors, distances
def component_vectors(component, values):
    """Rows as FAISS vectors of one similarity part (`values`: scores, embeddings or VAD profiles)."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        values = values[None]
    if component == "emotion":
        return np.sqrt(np.clip(values, 0.0, None))
    if component == "visual":
        norms = np.linalg.norm(values, axis=1, keepdims=True)
        return np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)
    if component == "vad":
        return np.nan_to_num(values, nan=0.0)
    raise ValueError(f"Unknown similarity part {component!r}; expected one of {COMPONENTS}.")


def component_distance(component, squared_l2):
    """Distances in [0, 1] of one similarity part from squared L2 distances between its FAISS vectors."""
    squared = np.maximum(np.asarray(squared_l2, dtype=np.float64), 0.0)
    if component == "emotion":
        distance = np.sqrt(squared / 2.0)  # Hellinger
    elif component == "visual":
        distance = squared / 4.0  # (1 - cos) / 2
    elif component == "vad":
        distance = np.sqrt(squared) / VAD_SCALE
    else:
        raise ValueError(f"Unknown similarity part {component!r}; expected one of {COMPONENTS}.")
    return np.clip(distance, 0.0, 1.0)


def hellinger(p, q):
    """Hellinger distance between two distributions (each normalised to sum 1), in [0, 1]."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum() / 2.0))


def index_factory(count, dim):
    """The FAISS factory string for `count` vectors of `dim` numbers: exact `Flat` below `APPROXIMATE_FROM` items
    (`APPROXIMATE_FROM_LOW_DIM` for at most `LOW_DIM` numbers), else `IVF{n},Flat` with n about sqrt(count) lists
    (k-means on a sample; each query scans `nprobe` of them).

    IVF rather than HNSW: on the 2-core CPU measured, IVF over 1M emotion vectors builds in about 2 s, an HNSW graph
    in about 5 minutes, for the same ~1 ms queries.
    """
    if count < (APPROXIMATE_FROM_LOW_DIM if dim <= LOW_DIM else APPROXIMATE_FROM):
        return "Flat"
    return f"IVF{ivf_lists(count)},Flat"


def ivf_lists(count):
    return int(min(65536, max(64, 2 ** round(math.log2(math.sqrt(count))))))


def empty_faiss_index(dim, factory, sample):
    """A FAISS index (L2) of `factory` type for `dim`-wide vectors, trained when the type needs it (IVF: k-means on
    64 vectors per list, `sample(rows)` returning that many random rows' vectors)."""
    import faiss

    index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
    if not index.is_trained:
        index.train(sample(64 * faiss.extract_index_ivf(index).nlist))
    return index


def tune_faiss_index(index):
    """Search settings (not all are kept in the file): IVF scans 1/32 of its lists, at least 16."""
    import faiss

    if index.__class__.__name__.startswith("IndexIVF"):
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = max(16, ivf.nlist // 32)
    return index


def ivf_probes(index, widen):
    """Search parameters that scan `widen` times the IVF index's usual lists (nothing for other indexes)."""
    import faiss

    if widen == 1 or not index.__class__.__name__.startswith("IndexIVF"):
        return {}
    ivf = faiss.extract_index_ivf(index)
    return {"params": faiss.SearchParametersIVF(nprobe=min(ivf.nlist, ivf.nprobe * widen))}


def faiss_type(index):
    """The factory string of a FAISS index read back from disk."""
    import faiss

    if index.__class__.__name__.startswith("IndexIVF"):
        return f"IVF{faiss.extract_index_ivf(index).nlist},Flat"
    return "Flat"


# ------------------------------------------------------------------------------------------------- queries
def parse_emotion_mix(text_or_mapping, emotions):
    """`"awe=0.6,sadness=0.4"` (or `"awe,sadness"`: equal parts, or a mapping) -> a distribution over `emotions`.

    Names are matched without regard to case; weights must be non-negative numbers, and are normalised to sum 1.
    """
    if isinstance(text_or_mapping, dict):
        pairs = list(text_or_mapping.items())
    else:
        pairs = []
        for part in str(text_or_mapping).split(","):
            if not part.strip():
                continue
            name, _, value = part.partition("=")
            pairs.append((name, value.strip() if value.strip() else "1"))
    if not pairs:
        raise ValueError(f"Empty emotion mix {text_or_mapping!r}: write it like 'awe=0.6,sadness=0.4'.")
    lookup = {name.lower(): position for position, name in enumerate(emotions)}
    mix = np.zeros(len(emotions), dtype=np.float64)
    for name, value in pairs:
        key = str(name).strip().lower()
        if key not in lookup:
            raise ValueError(f"Unknown emotion {str(name).strip()!r} in the emotion mix; this index's emotions are {list(emotions)}.")
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Emotion mix: the weight of {str(name).strip()!r} is {value!r}, not a number.") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"Emotion mix: the weight of {str(name).strip()!r} must be a number >= 0, got {value!r}.")
        mix[lookup[key]] += weight
    if mix.sum() <= 0:
        raise ValueError(f"Emotion mix {text_or_mapping!r} has no positive weight.")
    return (mix / mix.sum()).astype(np.float32)


def parse_min_scores(value, emotions):
    """`0.3` (the hit's own score: the probability of its predicted emotion) or `"awe=0.3,fear=0.1"` (those
    emotions' probabilities) -> `(float or None, {emotion position: minimum})`."""
    if value is None or value == "":
        return None, {}
    if isinstance(value, (int, float)):
        return _check_probability(float(value), "min_score"), {}
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        text = str(value).strip()
        try:
            return _check_probability(float(text), "min_score"), {}
        except ValueError as error:
            if "=" not in text:
                raise ValueError(f"min_score {value!r}: write a number (e.g. 0.3) or emotion=number pairs (awe=0.3,fear=0.1).") from error
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    lookup = {name.lower(): position for position, name in enumerate(emotions)}
    minimums = {}
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"min_score {value!r}: write emotion=number pairs (awe=0.3,fear=0.1).")
        name, number = pair
        key = str(name).strip().lower()
        if key not in lookup:
            raise ValueError(f"Unknown emotion {str(name).strip()!r} in min_score; this index's emotions are {list(emotions)}.")
        try:
            minimums[lookup[key]] = _check_probability(float(number), f"min_score {str(name).strip()}")
        except (TypeError, ValueError) as error:
            raise ValueError(f"min_score {value!r}: {error}") from None
    return None, minimums


def _check_probability(value, what):
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be between 0 and 1, got {value}.")
    return value


def emotion_names_in(text, emotions):
    """The emotions named in `text` (whole words, any case, multi-word names as phrases), in the text's order."""
    found = []
    lowered = str(text).lower()
    for name in emotions:
        match = re.search(r"(?<!\w)" + r"\s+".join(map(re.escape, name.lower().split())) + r"(?!\w)", lowered)
        if match:
            found.append((match.start(), name))
    return [name for _, name in sorted(found)]


@dataclass
class Query:
    """What a search compares items with: any of an emotion distribution, an image embedding and a VAD profile."""

    scores: np.ndarray = None
    embedding: np.ndarray = None
    vad: np.ndarray = None
    exclude_row: int = None
    description: str = ""
    default_vad_weight: float = 0.0


def blend_weights(query, visual_weight=0.0, vad_weight=None):
    """{part: weight} for the parts the query has; the weights sum to 1 (see the module docstring)."""
    visual_weight = float(visual_weight or 0.0)
    vad_weight = query.default_vad_weight if vad_weight is None else float(vad_weight)
    for name, value in (("visual_weight", visual_weight), ("vad_weight", vad_weight)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}.")
    if visual_weight + vad_weight > 1.0 + 1e-9:
        raise ValueError(f"visual_weight + vad_weight must be at most 1, got {visual_weight} + {vad_weight}.")
    if visual_weight > 0 and query.embedding is None:
        raise ValueError("visual_weight needs a query with an image (image=, id= or prediction=); emotion mixes and words have no image.")
    weights = {
        "emotion": (1.0 - visual_weight - vad_weight) if query.scores is not None else 0.0,
        "visual": visual_weight if query.embedding is not None else 0.0,
        "vad": vad_weight if query.vad is not None else 0.0,
    }
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"Nothing to compare for the query {query.description}: every part it has got weight 0.")
    return {name: weight / total for name, weight in weights.items() if weight > 0}


# ------------------------------------------------------------------------------------------------- sources
@dataclass
class Item:
    """One image to index: its id, its file (None for dataset rows), and where to read it from."""

    id: str
    file: str
    path: Path = None
    dataset: object = None
    row: int = None


def file_items(inputs, extensions=IMAGE_EXTENSIONS):
    """Items for image files, folders and glob patterns (as in sevlm-predict); id = file = the absolute path."""
    paths, problems = find_images(inputs, extensions)
    items = []
    for path in paths:
        name = display_path(os.path.abspath(path))
        items.append(Item(id=name, file=name, path=Path(path)))
    return items, problems


def dataset_items(dataset_path=None, split=None, dataset=None, id_column="painting_id"):
    """Items for the rows of a prepared corpus split (`datasets.load_from_disk(dataset_path)[split]`, or a
    `datasets.Dataset`): id = the row's `id_column`, images read from its `image` column."""
    import datasets
    from datasets import Image

    if dataset is None:
        if not dataset_path:
            raise ValueError("Pass dataset_path (a folder written by save_to_disk) or dataset.")
        if not os.path.isdir(dataset_path):
            raise FileNotFoundError(f"--dataset_path {dataset_path}: no such folder. Prepare a corpus first (sevlm-prepare or python train_sevlm.py for the demo).")
        loaded = datasets.load_from_disk(dataset_path)
        if isinstance(loaded, datasets.DatasetDict):
            if split is None or split not in loaded:
                raise ValueError(f"--split {split!r}: {dataset_path} has the splits {sorted(loaded)}; pick one with --split.")
            dataset = loaded[split]
        else:
            dataset = loaded
    for column in (id_column, "image"):
        if column not in dataset.column_names:
            raise ValueError(f"The dataset has the columns {dataset.column_names}, not {column!r}; index a prepared corpus (painting_id, image) or pass --id_column.")
    dataset = dataset.select_columns([id_column, "image"]).cast_column("image", Image(decode=False))
    ids = [str(value) for value in dataset.select_columns([id_column]).with_format(None)[:][id_column]]
    repeated = sorted({value for value in ids if ids.count(value) > 1}) if len(set(ids)) != len(ids) else []
    if repeated:
        raise ValueError(f"The dataset's {id_column!r} values must be unique; repeated: {repeated[:5]}.")
    return [Item(id=value, file=None, dataset=dataset, row=row) for row, value in enumerate(ids)], []


def read_item_image(item):
    """The item's image as an RGB PIL image (`processing_sevlm.load_image`, the project's one image loader)."""
    from processing_sevlm import load_image

    if item.dataset is None:
        return load_image(item.path)
    value = item.dataset[item.row]["image"]
    if value.get("bytes") is not None:
        return load_image(value["bytes"])
    if value.get("path"):
        return load_image(value["path"])
    raise ValueError(f"row {item.row} ({item.id}) has no image")


def thumbnail_bytes(image, size):
    """A JPEG thumbnail (longest side `size` pixels) of an RGB PIL image."""
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((size, size))
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------- the model
def load_model(model_name_or_path, device=None):
    """(model, processor) of a SEVLM folder or Hub id, in eval mode on `device` (see `sevlm.loading.pick_device`)."""
    from transformers import AutoModel, AutoProcessor

    from sevlm.loading import pick_device

    if str(model_name_or_path) == DEMO_MODEL and not os.path.exists(DEMO_MODEL):
        raise FileNotFoundError(f"No model at {DEMO_MODEL}. Train the demo model first (python train_sevlm.py) or pass --model_name_or_path.")
    model = AutoModel.from_pretrained(model_name_or_path, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=True)
    return model.to(pick_device(device)), processor


def model_name(model, given=None):
    """How the index records the model: a local folder as its absolute path (the index works from any working
    directory), a Hub id as given."""
    name = str(given if given is not None else getattr(model, "name_or_path", "") or "")
    return os.path.abspath(name) if name and os.path.isdir(name) else name


def predict_rows(model, processor, images, generate_kwargs=None):
    """`predict_batch` results (with `image_embeds`) for a list of images."""
    predict_batch = predict_function(model)
    return predict_batch(model, processor, images, return_image_embeds=True, generate_kwargs=dict(generate_kwargs or {}))


def predict_function(model):
    """`pipeline_sevlm.predict_batch` from the same code as the model: this repository's for a model built from its
    classes; the folder's own `pipeline_sevlm.py` for a model loaded with trust_remote_code (its processor comes
    from that folder too, and the two must be of one version)."""
    module = type(model).__module__
    if module.split(".")[0] != "transformers_modules":
        from pipeline_sevlm import predict_batch

        return predict_batch
    return _remote_predict_function(module, str(model.name_or_path))


@functools.lru_cache(maxsize=8)
def _remote_predict_function(module, name_or_path):
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    try:
        return get_class_from_dynamic_module("pipeline_sevlm.predict_batch", name_or_path)
    except (OSError, AttributeError, ImportError) as error:
        raise ValueError(
            f"The model {display_path(name_or_path)} has no pipeline_sevlm.predict_batch in its code: it was saved by an "
            "earlier version of SEVLM. Save it again with this version (train_sevlm.py writes the current code files "
            "into its output folder)."
        ) from error


def distributed_state(device=None):
    """accelerate's `PartialState` for this process. Under `torchrun` / `accelerate launch` on CPUs (no CUDA, or
    `device="cpu"`) it must be created with `cpu=True` to join the gloo process group; created first, it is the
    state `sevlm.loading.pick_device` then finds."""
    import torch
    from accelerate import PartialState

    cpu = not torch.cuda.is_available() or (device is not None and torch.device(device).type == "cpu")
    return PartialState(cpu=cpu)


# ------------------------------------------------------------------------------------------------ building
class EmotionIndex:
    """An emotion index on disk: load it with `EmotionIndex.load(folder)`, make or extend it with
    `EmotionIndex.build(...)` / `index.add(...)`, and query it with `index.search(...)` (see the module docstring)."""

    def __init__(self, folder, config, dataset):
        self.folder = Path(folder)
        self.config = config
        self.dataset = dataset
        self.emotions = list(config["emotions"])
        self.build_report = None
        self._model = None  # (model, processor), loaded for image queries
        self._vad = None  # (tokenizer, vad_table) for text queries
        self._embedding_chunks = self._embedding_starts = None  # numpy views of the embedding column, made on first use
        self._starts = None  # first row of every chunk of the table's columns
        self.table = dataset.data.table  # the pyarrow table under the Dataset (memory-mapped), for fast row access
        columns = self.table
        count = len(dataset)
        self.scores = _matrix(columns.column("scores"), len(self.emotions))
        self.vad = _matrix(columns.column("vad"), 3)
        self.emotion_positions = np.asarray(
            [self.emotions.index(name) for name in columns.column("emotion").to_pylist()], dtype=np.int64
        ).reshape(count)

    def __len__(self):
        return len(self.dataset)

    def __repr__(self):
        return f"EmotionIndex({display_path(self.folder)!r}, {len(self)} items, model={self.config['model']!r})"

    # ---------------------------------------------------------------------------------------------- load
    @classmethod
    def load(cls, folder):
        """Open an index folder written by `build` (memory-mapped: the stored rows are not read into memory)."""
        folder = Path(folder)
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            pending = " (an unfinished build is in .pending/: run the same sevlm-index command again to finish it)" if (folder / PENDING_DIR).is_dir() else ""
            raise FileNotFoundError(f"{display_path(folder)} is not an emotion index: it has no {CONFIG_NAME}{pending}. Build one with sevlm-index.")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("format") != INDEX_FORMAT or config.get("version") != INDEX_VERSION:
            raise ValueError(f"{display_path(config_path)} is not a {INDEX_FORMAT} version {INDEX_VERSION} file; rebuild the index with this version of sevlm-index.")
        dataset = _load_parts(folder, config["parts"])
        for component in COMPONENTS:
            dataset.load_faiss_index(component, str(folder / FAISS_DIR / config["faiss"][component]))
            tune_faiss_index(dataset.get_index(component).faiss_index)
        if len(dataset) != config["num_items"]:
            raise ValueError(f"{display_path(folder)}: {CONFIG_NAME} says {config['num_items']} items, its parts hold {len(dataset)}; the index is damaged, rebuild it.")
        return cls(folder, config, dataset)

    # --------------------------------------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        inputs=None,
        output_dir=None,
        *,
        model=DEMO_MODEL,
        processor=None,
        dataset_path=None,
        split=None,
        dataset=None,
        id_column="painting_id",
        batch_size=8,
        device=None,
        generate_kwargs=None,
        thumbnail_size=THUMBNAIL_SIZE,
        extensions=IMAGE_EXTENSIONS,
        overwrite=False,
        progress=True,
        report=None,
    ):
        """Index image files / folders / globs (`inputs`) or a corpus split into `output_dir`, and return the index.

        - `model`: a SEVLM folder or Hub id, or a loaded model (then pass its `processor`).
        - An existing index in `output_dir` built with the same model is extended: images whose id is already in
          it are not computed again. With another model it is an error unless `overwrite=True`, which builds a new
          index and replaces the old one only when the new one is complete.
        - An interrupted build leaves its finished batches in `output_dir/.pending/`; the next build with the same
          model continues from there.
        - Unreadable images go to `report(id, message)` (default: stderr) and are skipped.
        - Under `torchrun` / `accelerate launch` every process takes every n-th batch; the main process merges.

        The returned index has `build_report`: `{"items", "computed", "resumed" (rows taken from `.pending/`),
        "already_indexed", "failed": [ids], "unmatched": [inputs that matched no file]}`.
        """
        if output_dir is None:
            raise ValueError("build needs output_dir, the index folder.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        if (inputs is None) == (dataset_path is None and dataset is None):
            raise ValueError("Index either image inputs (files, folders, globs) or a dataset split (dataset_path + split), not both.")
        report = report or _report_to_stderr
        folder = Path(output_dir)
        state = distributed_state(device)

        if inputs is not None:
            items, problems = file_items(inputs, extensions)
        else:
            items, problems = dataset_items(dataset_path, split, dataset, id_column)
        if state.is_main_process:
            for item, reason in problems:
                report(item, reason)
        if not items and _read_config(folder) is None and not _shard_files(folder):
            raise ValueError("No images to index: pass image files, folders or glob patterns, or a dataset split with rows.")

        if isinstance(model, (str, os.PathLike)):
            given_name = os.fspath(model)
            model, processor = load_model(given_name, device)
        else:
            given_name = None
            if processor is None:
                raise ValueError("A loaded model needs its processor: build(..., model=model, processor=processor).")
        emotions = list(model.config.emotions)
        if list(processor.emotions) != emotions:
            raise ValueError(f"The processor's emotions {list(processor.emotions)} differ from the model's {emotions}: load both from the same folder.")
        predict_function(model)  # a folder whose code predates predict_batch: one clear error now, not one per image
        identity = {"model": model_name(model, given_name), "model_fingerprint": model_fingerprint(model), "emotions": emotions}

        existing = _read_config(folder)
        _check_target(folder, existing, identity, overwrite)
        with state.main_process_first():
            if state.is_main_process:
                pending = _open_pending(folder, identity, overwrite or _pending_replaces(folder), existing)
            else:
                pending = json.loads((folder / PENDING_DIR / PENDING_NAME).read_text(encoding="utf-8"))
        replace = pending["replace"]

        indexed = set() if replace or existing is None else _indexed_ids(folder, existing)
        done = _pending_ids(folder)
        todo = [item for item in items if item.id not in indexed and item.id not in done]
        state.wait_for_everyone()  # every process has read the same finished batches before any writes new ones
        batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        mine = batches[state.process_index :: state.num_processes]
        failed = _predict_into_pending(
            folder, mine, model, processor, generate_kwargs, thumbnail_size, report, progress and state.is_local_main_process
        )
        failed = _gather_lists(state, failed)
        state.wait_for_everyone()

        if state.is_main_process:
            settings = {"generate_kwargs": json_safe(dict(generate_kwargs or {})), "thumbnail_size": int(thumbnail_size or 0)}
            _commit(folder, existing, pending, identity, processor, model, [item.id for item in items], settings, progress)
        state.wait_for_everyone()
        index = cls.load(folder)
        index.build_report = {
            "items": len(items),
            "computed": len(todo) - len(failed),
            "resumed": len(done),
            "already_indexed": sum(item.id in indexed for item in items),
            "failed": failed,
            "unmatched": [display_path(item) for item, _ in problems],
        }
        return index

    def add(self, inputs=None, *, model=None, processor=None, **kwargs):
        """Index more images (same arguments as `build`) with the index's model; only new ids are computed.
        Updates this object in place and returns it."""
        if model is None:
            if self._model is not None:
                model, processor = self._model
            else:
                model = self.config["model"]
        updated = type(self).build(inputs, self.folder, model=model, processor=processor, **kwargs)
        cached = self._model
        self.__dict__.update(updated.__dict__)
        self._model = cached
        return self

    # -------------------------------------------------------------------------------------------- search
    def search(
        self,
        *,
        image=None,
        id=None,
        emotions=None,
        text=None,
        prediction=None,
        top_k=10,
        emotion=None,
        min_score=None,
        visual_weight=0.0,
        vad_weight=None,
        model=None,
        processor=None,
        generate_kwargs=None,
    ):
        """The `top_k` items closest to one query, best first.

        Query (exactly one): `image` (a file or PIL image, run through the index's model, or `model`/`processor`),
        `id` (an indexed item; the item itself is left out of its hits), `emotions` (a mix: `"awe=0.6,sadness=0.4"`
        or a dict), `text` (words: their VAD profile and any emotion names in them), or `prediction` (a
        `predict_batch` result with `image_embeds`, e.g. the web app's current painting).

        Filters: `emotion` (a name or list of names: the hit's predicted emotion), `min_score` (a number: the hit's
        score for its predicted emotion; or `"awe=0.3,fear=0.1"` / a dict: those emotions' probabilities).

        Weights: `visual_weight` (image embeddings, for image / id / prediction queries; default 0) and
        `vad_weight` (explanation VAD profiles; default 0.5 for text queries, else 0); the emotion distribution
        gets the rest (see the module docstring).

        Each hit: `{"rank", "id", "file", "score", "emotion", "scores", "explanation", "distances"}` with `score`
        = 1 - the blended distance and `distances` the parts' distances.
        """
        query = self.query(
            image=image, id=id, emotions=emotions, text=text, prediction=prediction, model=model, processor=processor,
            generate_kwargs=generate_kwargs,
        )
        if int(top_k) < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}.")
        weights = blend_weights(query, visual_weight, vad_weight)
        allowed = self.filter_mask(emotion, min_score)
        rows, distances, parts = self._rank(query, weights, allowed, int(top_k))
        if self._starts is None:  # every column of the table has the same chunks
            self._starts = chunk_starts(self.table.column("id"))
        fields = {name: take_rows(self.table.column(name), rows, self._starts).to_pylist() for name in ("id", "file", "emotion", "explanation")}
        records = [dict(zip(fields, values)) for values in zip(*fields.values())]
        return [
            {
                "rank": rank,
                "id": record["id"],
                "file": record["file"],
                "score": round(1.0 - float(distance), 6),
                "emotion": record["emotion"],
                "scores": {name: round(value, 6) for name, value in zip(self.emotions, self.scores[row].tolist())},
                "explanation": record["explanation"],
                "distances": {name: round(float(values[rank - 1]), 6) for name, values in parts.items()},
            }
            for rank, (row, distance, record) in enumerate(zip(rows, distances, records), start=1)
        ]

    def query(self, *, image=None, id=None, emotions=None, text=None, prediction=None, model=None, processor=None, generate_kwargs=None):
        """The `Query` of one of the search inputs (see `search`)."""
        given = [name for name, value in (("image", image), ("id", id), ("emotions", emotions), ("text", text), ("prediction", prediction)) if value is not None]
        if len(given) != 1:
            raise ValueError(f"Search with exactly one of image, id, emotions, text, prediction; got {given or 'none'}.")
        if emotions is not None:
            return Query(scores=parse_emotion_mix(emotions, self.emotions), description=f"emotions {emotions}")
        if id is not None:
            row = self.row_of(id)
            return Query(
                scores=self.scores[row],
                embedding=np.asarray(self.table.column("image_embeds")[row].values, dtype=np.float32),
                vad=None if np.isnan(self.vad[row]).any() else self.vad[row],
                exclude_row=row,
                description=f"id {id}",
            )
        if text is not None:
            named = emotion_names_in(text, self.emotions)
            tokenizer, table = self.vad_lookup()
            profile = vad_profile(text, tokenizer, table)
            if not named and profile is None:
                raise ValueError(
                    f"--text {text!r}: none of its words has a VAD value in the model's lexicon and it names none of the "
                    f"emotions {self.emotions}; use other words or --emotions."
                )
            scores = parse_emotion_mix(",".join(named), self.emotions) if named else None
            return Query(scores=scores, vad=profile, description=f"text {text!r}", default_vad_weight=0.5)
        if image is not None:
            prediction = self.predict_image(image, model=model, processor=processor, generate_kwargs=generate_kwargs)
        return self.prediction_query(prediction)

    def prediction_query(self, prediction):
        """The query of a `predict_batch` result (with `image_embeds`): its scores, embedding and VAD profile."""
        missing = [key for key in ("scores", "image_embeds", "explanation") if key not in prediction]
        if missing:
            raise ValueError(f"A prediction query needs a predict_batch result with return_image_embeds=True; missing {missing}.")
        if list(prediction["scores"]) != self.emotions:
            raise ValueError(f"The prediction's emotions {list(prediction['scores'])} differ from this index's {self.emotions}: use the model the index was built with.")
        tokenizer, table = self.vad_lookup()
        embedding = prediction["image_embeds"]
        embedding = embedding.detach().float().cpu().numpy() if hasattr(embedding, "detach") else np.asarray(embedding, np.float32)
        if embedding.shape != (self.config["embedding_dim"],):
            raise ValueError(f"The prediction's image_embeds have shape {embedding.shape}; this index holds {self.config['embedding_dim']}-wide embeddings of model {self.config['model']}.")
        return Query(
            scores=np.asarray([prediction["scores"][name] for name in self.emotions], dtype=np.float32),
            embedding=embedding,
            vad=vad_profile(prediction["explanation"], tokenizer, table),
            description="an image",
        )

    def predict_image(self, image, model=None, processor=None, generate_kwargs=None):
        """`predict_batch` result (with `image_embeds`) of one image (a path or PIL image) by the index's model."""
        from processing_sevlm import load_image

        model, processor = self.model(model, processor)
        picture = load_image(image)
        return predict_rows(model, processor, [picture], generate_kwargs)[0]

    def model(self, model=None, processor=None, device=None):
        """(model, processor) for image queries: the given ones (checked against the index), else the index's
        model, loaded once."""
        if model is None:
            if self._model is None:
                self._model = load_model(self.config["model"], device)
                self.check_model(self._model[0], fingerprint=True)
            return self._model
        if processor is None:
            raise ValueError("Pass the model's processor with it.")
        self.check_model(model)
        return model, processor

    def check_model(self, model, fingerprint=False):
        """Refuse a model whose emotions differ from the index's (its scores would mean other things); warn when
        its weights differ (emotion scores stay comparable, image embeddings and explanations may not)."""
        emotions = list(model.config.emotions)
        if emotions != self.emotions:
            raise ValueError(
                f"This index ({display_path(self.folder)}) was built with a model whose emotions are {self.emotions}; the "
                f"model given has {emotions}. Search it with the model it was built with ({self.config['model']}), or "
                "build an index with this model (sevlm-index)."
            )
        if fingerprint and model_fingerprint(model) != self.config["model_fingerprint"]:
            print(
                f"warning: the model at {self.config['model']} has changed since this index was built; image queries "
                "are encoded by the new weights. Rebuild the index (sevlm-index --overwrite) to compare like with like.",
                file=sys.stderr,
            )

    def vad_lookup(self):
        """(tokenizer, vad_table) of the index's model, saved in the index (text queries need no model)."""
        if self._vad is None:
            from safetensors.numpy import load_file
            from transformers import AutoTokenizer

            folder = self.folder / self.config["vad_dir"]
            self._vad = (AutoTokenizer.from_pretrained(str(folder)), load_file(str(folder / VAD_TABLE_FILE))["vad_table"])
        return self._vad

    def row_of(self, item_id):
        """Row of an item id; a file path is also found by its absolute form."""
        import pyarrow.compute as pc

        column = self.table.column("id")
        for candidate in dict.fromkeys([str(item_id), display_path(os.path.abspath(str(item_id)))]):
            row = pc.index(column, candidate).as_py()
            if row >= 0:
                return row
        raise KeyError(f"No item with id {item_id!r} in the index {display_path(self.folder)} ({len(self)} items); ids are file paths or painting_id values.")

    def filter_mask(self, emotion=None, min_score=None):
        """Boolean mask of the rows the filters allow, or None when there are no filters."""
        mask = None
        if emotion:
            names = [emotion] if isinstance(emotion, str) else list(emotion)
            names = [part.strip() for name in names for part in str(name).split(",") if part.strip()]
            positions = []
            for name in names:
                matches = [position for position, known in enumerate(self.emotions) if known.lower() == name.lower()]
                if not matches:
                    raise ValueError(f"Unknown emotion filter {name!r}; this index's emotions are {self.emotions}.")
                positions.extend(matches)
            mask = np.isin(self.emotion_positions, positions)
        own_minimum, minimums = parse_min_scores(min_score, self.emotions)
        if own_minimum is not None:
            own = self.scores[np.arange(len(self)), self.emotion_positions]
            mask = (own >= own_minimum) if mask is None else mask & (own >= own_minimum)
        for position, minimum in minimums.items():
            passed = self.scores[:, position] >= minimum
            mask = passed if mask is None else mask & passed
        return mask

    def exact_distances(self, query, weights, rows):
        """Blended distance and each part's distance for `rows` (array of row numbers)."""
        rows = np.asarray(rows, dtype=np.int64)
        parts = {}
        if "emotion" in weights:
            stored = component_vectors("emotion", self.scores[rows])
            parts["emotion"] = component_distance("emotion", ((stored - component_vectors("emotion", query.scores)) ** 2).sum(1))
        if "visual" in weights:
            embeds = self._embeddings(rows)
            parts["visual"] = component_distance("visual", ((component_vectors("visual", embeds) - component_vectors("visual", query.embedding)) ** 2).sum(1))
        if "vad" in weights:
            stored = self.vad[rows]
            distance = component_distance("vad", ((np.nan_to_num(stored) - query.vad[None]) ** 2).sum(1))
            parts["vad"] = np.where(np.isnan(stored).any(1), 1.0, distance)
        blended = sum(weights[name] * parts[name] for name in parts)
        return blended, parts

    def _embeddings(self, rows):
        """Stored image embeddings of `rows`, gathered from zero-copy numpy views of the memory-mapped chunks."""
        if self._embedding_chunks is None:
            column = self.table.column("image_embeds")
            width = self.config["embedding_dim"]
            self._embedding_chunks = [chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, width) for chunk in column.chunks]
            self._embedding_starts = np.cumsum([0] + [len(chunk) for chunk in column.chunks])
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.config["embedding_dim"]), dtype=np.float32)
        which = np.searchsorted(self._embedding_starts, rows, side="right") - 1
        for chunk in np.unique(which):
            selected = which == chunk
            out[selected] = self._embedding_chunks[chunk][rows[selected] - self._embedding_starts[chunk]]
        return out

    def _rank(self, query, weights, allowed, top_k):
        """Row numbers, blended distances and part distances of the best `top_k` rows.

        Few eligible rows are scored directly. Otherwise each weighted part's FAISS index gives its `depth` nearest
        rows; their union is scored exactly, and the threshold algorithm stops once the k-th blended distance is at
        most the blend of each list's last distance (no unseen row can be closer), else the lists get deeper. An
        approximate index that runs out of candidates under filters falls back to scoring every eligible row.
        """
        import faiss

        count = len(self)
        eligible = np.ones(count, dtype=bool) if allowed is None else allowed.copy()
        if query.exclude_row is not None:
            eligible[query.exclude_row] = False
        wanted = min(top_k, int(eligible.sum()))
        if eligible.sum() <= max(BRUTE_FORCE_ROWS, top_k) or count <= BRUTE_FORCE_ROWS:
            return self._best(query, weights, np.flatnonzero(eligible), top_k)
        vectors = {name: component_vectors(name, value)[0] for name, value in (("emotion", query.scores), ("visual", query.embedding), ("vad", query.vad)) if name in weights}
        depth, widen = min(count, max(64, 4 * top_k)), 1
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # one query: threads only add start-up cost (measured, bench/bench_index.py)
        try:
            while True:
                seen, bound = set(), 0.0
                for name, weight in weights.items():
                    squared, found = self.dataset.search(name, vectors[name], k=depth, **ivf_probes(self.dataset.get_index(name).faiss_index, widen))
                    found = np.asarray(found)
                    kept = found >= 0
                    seen.update(found[kept].tolist())
                    if kept.any():
                        bound += weight * float(component_distance(name, np.asarray(squared)[kept][-1]))
                candidates = np.asarray(sorted(row for row in seen if eligible[row]), dtype=np.int64)
                rows, distances, parts = self._best(query, weights, candidates, top_k)
                # FAISS computes in float32: a tie with the bound can come out a hair above it (1e-6)
                if len(rows) == wanted and (not rows or distances[-1] <= bound + BOUND_TOLERANCE):
                    return rows, distances, parts
                if depth >= count:
                    return self._best(query, weights, np.flatnonzero(eligible), top_k) if len(rows) < wanted else (rows, distances, parts)
                depth, widen = min(count, depth * 4), widen * 4  # an IVF index also scans 4 times as many lists
        finally:
            faiss.omp_set_num_threads(threads)

    def _best(self, query, weights, rows, top_k):
        if len(rows) == 0:
            return [], [], {name: [] for name in weights}
        distances, parts = self.exact_distances(query, weights, rows)
        order = np.lexsort((rows, distances))[:top_k]  # ties by row: a stable order
        return rows[order].tolist(), distances[order].tolist(), {name: values[order].tolist() for name, values in parts.items()}

    # ------------------------------------------------------------------------------------------ pictures
    def thumbnail(self, item_id, size=THUMBNAIL_SIZE):
        """The item's picture as a PIL image (its stored thumbnail, else its file), or None when neither exists."""
        from PIL import Image

        row = self.row_of(item_id)
        record = self.table.select(["thumbnail", "file"]).slice(row, 1).to_pylist()[0]
        if record["thumbnail"] and record["thumbnail"].get("bytes"):
            with Image.open(io.BytesIO(record["thumbnail"]["bytes"])) as opened:
                return opened.convert("RGB")
        if record["file"] and os.path.isfile(record["file"]):
            try:
                from processing_sevlm import load_image

                picture = load_image(record["file"])
                picture.thumbnail((size, size))
                return picture
            except Exception:
                return None
        return None


# ------------------------------------------------------------------------------------- building internals
def _read_config(folder):
    path = Path(folder) / CONFIG_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _check_target(folder, existing, identity, overwrite):
    """Refuse an output folder that holds something else, or an index of another model (without overwrite)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"--output_dir {display_path(folder)} is a file, not a folder; choose another path.")
    if existing is None:
        if folder.is_dir() and any(entry.name != PENDING_DIR for entry in folder.iterdir()):
            raise FileExistsError(
                f"--output_dir {display_path(folder)} is not empty and holds no emotion index; refusing to write into it. "
                "Choose a new or empty folder."
            )
        return
    if existing.get("format") != INDEX_FORMAT:
        raise FileExistsError(f"{display_path(folder / CONFIG_NAME)} is not an emotion index file; choose another --output_dir.")
    if not overwrite and existing["model_fingerprint"] != identity["model_fingerprint"]:
        other = "emotions" if existing["emotions"] != identity["emotions"] else "weights"
        raise ValueError(
            f"The index in {display_path(folder)} was built with model {existing['model']}, which has other {other} than "
            f"{identity['model']}; adding images computed by another model would mix incomparable results. Pass "
            "--overwrite (overwrite=True) to rebuild it with this model (the old index stays until the new one is "
            "complete), or choose another --output_dir."
        )


def _pending_replaces(folder):
    path = Path(folder) / PENDING_DIR / PENDING_NAME
    return path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("replace", False)


def _open_pending(folder, identity, replace, existing):
    """Create or reopen `.pending/` for this model; unfinished work of another model is an error (or, with
    overwrite, discarded)."""
    pending_dir = Path(folder) / PENDING_DIR
    path = pending_dir / PENDING_NAME
    if path.is_file():
        pending = json.loads(path.read_text(encoding="utf-8"))
        if pending["model_fingerprint"] == identity["model_fingerprint"]:
            if pending["replace"] != replace and replace:
                pending["replace"] = True
                write_json_atomic(path, pending)
            print(f"Resuming the unfinished build in {display_path(pending_dir)} ({len(_shard_files(folder))} batch file(s) done).", file=sys.stderr)
            return pending
        if not replace:
            raise ValueError(
                f"{display_path(pending_dir)} holds an unfinished build with model {pending['model']}. Run the same command "
                "with that model to finish it, or pass --overwrite to discard it."
            )
        shutil.rmtree(pending_dir)
    pending_dir.mkdir(parents=True, exist_ok=True)
    pending = {**identity, "replace": bool(replace or existing is None), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json_atomic(path, pending)
    return pending


def _shard_files(folder):
    return sorted((Path(folder) / PENDING_DIR).glob("*.parquet"))


def _pending_ids(folder):
    import pyarrow.parquet as pq

    ids = set()
    for path in _shard_files(folder):
        ids.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return ids


def _indexed_ids(folder, config):
    return set(_load_parts(folder, config["parts"]).data.column("id").to_pylist())


def _predict_into_pending(folder, batches, model, processor, generate_kwargs, thumbnail_size, report, progress):
    """Predict batches and write each finished batch as a Parquet file in `.pending/`. Returns the failed ids."""
    import torch
    from tqdm.auto import tqdm

    failed = []

    def fail(item, message):
        failed.append(item.id)
        report(item.id, message)

    emotions = list(model.config.emotions)
    bar = tqdm(total=sum(map(len, batches)), unit="image", desc="Indexing", disable=not progress, file=sys.stderr)
    try:
        for number, batch in enumerate(batches):
            loaded = []
            for item in batch:
                try:
                    loaded.append((item, read_item_image(item)))
                except Exception as error:  # corrupt, truncated, not an image, missing
                    fail(item, f"cannot be read ({error.__cause__ or error})")
            rows = []
            with torch.inference_mode():
                for item, image, result in _predict_batch_safely(model, processor, loaded, generate_kwargs, fail):
                    rows.append(_row(item, image, result, emotions, processor, model, thumbnail_size))
            if rows:
                _write_shard(folder, rows, emotions, len(rows[0]["image_embeds"]), number)
            bar.update(len(batch))
    finally:
        bar.close()
    return failed


def _predict_batch_safely(model, processor, loaded, generate_kwargs, fail):
    """Results for a batch; when the batch fails, image by image, so that one bad image costs only itself."""
    if not loaded:
        return []
    try:
        results = predict_rows(model, processor, [image for _, image in loaded], generate_kwargs)
        return [(item, image, result) for (item, image), result in zip(loaded, results)]
    except Exception as error:
        if len(loaded) == 1:
            fail(loaded[0][0], f"prediction failed: {error}")
            return []
    outputs = []
    for pair in loaded:
        outputs.extend(_predict_batch_safely(model, processor, [pair], generate_kwargs, fail))
    return outputs


def _row(item, image, result, emotions, processor, model, thumbnail_size):
    profile = vad_profile(result["explanation"], processor.tokenizer, model.vad_table.detach().float().cpu().numpy())
    embeds = result["image_embeds"]
    return {
        "id": item.id,
        "file": item.file,
        "emotion": result["emotion"],
        "score": float(result["score"]),
        "scores": [float(result["scores"][name]) for name in emotions],
        "explanation": result["explanation"],
        "vad": [float("nan")] * 3 if profile is None else [float(value) for value in profile],
        "image_embeds": (embeds.detach().float().cpu().numpy() if hasattr(embeds, "detach") else np.asarray(embeds, np.float32)).tolist(),
        "thumbnail": {"bytes": thumbnail_bytes(image, thumbnail_size), "path": None} if thumbnail_size else None,
    }


def _write_shard(folder, rows, emotions, embedding_dim, number):
    """One finished batch as `.pending/<time>-r<rank>-<n>.parquet`, written whole or not at all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = index_features(emotions, embedding_dim).arrow_schema
    table = pa.Table.from_pylist(rows, schema=schema)
    rank = int(os.environ.get("RANK", 0))
    path = Path(folder) / PENDING_DIR / f"{time.time_ns():020d}-r{rank:03d}-{number:06d}.parquet"
    with replace_file(path, "wb") as stream:
        pq.write_table(table, stream)
    return path


def _gather_lists(state, values):
    """Concatenate a list from every process (one process: the list itself)."""
    if state.num_processes == 1:
        return list(values)
    from accelerate.utils import gather_object

    return list(gather_object(list(values)))


def _commit(folder, existing, pending, identity, processor, model, order, settings, progress):
    """Merge `.pending/` into the index: a new part, updated FAISS files, then `index_config.json` (the commit
    point); then remove what the new config no longer names."""
    import datasets
    import pyarrow.parquet as pq

    folder = Path(folder)
    replace = pending["replace"] or existing is None
    base = None if replace else existing
    shards = _shard_files(folder)
    emotions = identity["emotions"]
    if not shards:
        if base is not None:
            shutil.rmtree(folder / PENDING_DIR, ignore_errors=True)
            return base
        raise RuntimeError(f"No image could be indexed into {display_path(folder)}: every input was unreadable or failed (see the messages above).")

    embedding_dim = pq.read_schema(shards[0]).field("image_embeds").type.list_size
    if base is not None and base.get("generate_kwargs") != settings["generate_kwargs"]:
        print(
            f"note: the index's explanations were generated with {base.get('generate_kwargs')}, the new ones with "
            f"{settings['generate_kwargs']}.",
            file=sys.stderr,
        )
    if base is not None and base["embedding_dim"] != embedding_dim:
        raise ValueError(f"New embeddings are {embedding_dim} wide, the index holds {base['embedding_dim']}: the model changed; rebuild with --overwrite.")
    generation = (existing or {}).get("generation", 0) + 1
    features = index_features(emotions, embedding_dim)
    part = f"part-{generation:05d}"
    part_dir = folder / PARTS_DIR / part
    shutil.rmtree(part_dir, ignore_errors=True)  # left by a commit that stopped half-way
    merged = folder / PENDING_DIR / f"merged-{generation:05d}.arrow"
    added = _merge_shards(shards, order, features.arrow_schema, merged)
    with _quiet_datasets():
        datasets.Dataset.from_file(str(merged), info=datasets.DatasetInfo(features=features)).save_to_disk(str(part_dir))

    parts = ([] if base is None else list(base["parts"])) + [part]
    count = (0 if base is None else base["num_items"]) + added
    faiss_files, faiss_types = {}, {}
    (folder / FAISS_DIR).mkdir(parents=True, exist_ok=True)
    for component in COMPONENTS:
        faiss_files[component] = f"{component}-{generation:05d}.faiss"
        index = _updated_faiss_index(folder, base, parts, component, count, embedding_dim, len(emotions))
        faiss_types[component] = faiss_type(index)
        _write_faiss(index, folder / FAISS_DIR / faiss_files[component])
        del index

    if base is None:
        vad_dir = f"vad-{generation:05d}"
        _write_vad_lookup(folder / vad_dir, processor, model)
    else:
        vad_dir = base["vad_dir"]
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    config = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        **identity,
        "embedding_dim": embedding_dim,
        "num_items": count,
        "generation": generation,
        "parts": parts,
        "faiss": faiss_files,
        "faiss_types": faiss_types,
        "approximate_from": {"low_dim": APPROXIMATE_FROM_LOW_DIM, "other": APPROXIMATE_FROM},
        "vad_dir": vad_dir,
        "similarity": {
            "emotion": "Hellinger distance between emotion distributions (FAISS L2 over sqrt(scores))",
            "visual": "(1 - cosine) / 2 between image_embeds (FAISS L2 over unit vectors)",
            "vad": "Euclidean distance between explanation VAD profiles / (2 sqrt 3)",
        },
        **settings,
        "created": now if base is None else base["created"],
        "updated": now,
    }
    write_json_atomic(folder / CONFIG_NAME, config)
    _remove_unreferenced(folder, config)
    return config


def _merge_shards(shards, order, schema, target):
    """Write the rows of the batch files into one Arrow file, once per id, in the order of `order` (this run's
    inputs; rows of earlier runs' other inputs after them), a batch at a time: a million rows of embeddings are
    gigabytes. Each batch file holds consecutive inputs, so ordering the files by their first row orders the rows.
    Returns the number of rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    position = {item_id: number for number, item_id in enumerate(order)}
    first_ids = [pq.read_table(path, columns=["id"]).column("id")[0].as_py() for path in shards]
    ordered = sorted(range(len(shards)), key=lambda n: (position.get(first_ids[n], len(position)), n))
    seen, written = set(), 0
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for number in ordered:
            table = pq.read_table(shards[number]).cast(schema)
            ids = table.column("id").to_pylist()
            keep = [row for row, item_id in enumerate(ids) if item_id not in seen]
            seen.update(ids)
            if len(keep) < len(ids):
                table = table.take(pa.array(keep, type=pa.int64()))
            writer.write_table(table)
            written += table.num_rows
    return written


def _updated_faiss_index(folder, base, parts, component, count, embedding_dim, classes):
    """The previous FAISS index with the last part's vectors added while its type still fits the size (an IVF
    index keeps its trained lists); else a new index over every stored vector. Vectors stream from the memory-mapped
    parts a chunk at a time: a million 768-wide embeddings are 3 GB, held once, in the index."""
    import faiss

    dim = {"emotion": classes, "visual": embedding_dim, "vad": 3}[component]
    factory = index_factory(count, dim)
    if base is not None and base["faiss_types"].get(component) == factory:
        index = faiss.read_index(str(Path(folder) / FAISS_DIR / base["faiss"][component]))
        sources = parts[-1:]
    else:
        index = empty_faiss_index(dim, factory, lambda rows: _vector_sample(folder, parts, component, dim, rows))
        sources = parts
    for vectors in _vector_chunks(folder, sources, component, dim):
        index.add(vectors)
    return tune_faiss_index(index)


VECTOR_COLUMNS = {"emotion": "scores", "visual": "image_embeds", "vad": "vad"}


def _vector_chunks(folder, parts, component, dim, rows=65536):
    """FAISS vectors of one similarity part for every row of `parts`, in row order, `rows` at a time."""
    table = _load_parts(folder, parts).data.table
    for start in range(0, table.num_rows, rows):
        yield component_vectors(component, _matrix(table.column(VECTOR_COLUMNS[component]).slice(start, rows), dim))


def _vector_sample(folder, parts, component, dim, size):
    """FAISS vectors of `size` random rows (a fixed seed): the training set of an IVF index."""
    table = _load_parts(folder, parts).data.table
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(table.num_rows, min(size, table.num_rows), replace=False))
    return component_vectors(component, _matrix(take_rows(table.column(VECTOR_COLUMNS[component]), rows), dim))


def _load_parts(folder, parts):
    """The index's parts as one memory-mapped `datasets.Dataset`."""
    import datasets

    with _quiet_datasets():
        loaded = [datasets.load_from_disk(str(Path(folder) / PARTS_DIR / name)) for name in parts]
    return datasets.concatenate_datasets(loaded) if len(loaded) > 1 else loaded[0]


def _write_faiss(index, path):
    """Write a FAISS index to `path` through a temporary file beside it (straight to disk: serialising in memory
    would hold two more copies of a 3 GB index)."""
    import faiss

    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        faiss.write_index(index, str(temporary))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_vad_lookup(target, processor, model):
    from safetensors.numpy import save_file

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    processor.tokenizer.save_pretrained(str(target))
    save_file({"vad_table": model.vad_table.detach().float().cpu().numpy()}, str(target / VAD_TABLE_FILE))


def _remove_unreferenced(folder, config):
    """Delete parts, FAISS files and VAD folders the config does not name, and `.pending/`."""
    folder = Path(folder)
    for path in (folder / PARTS_DIR).iterdir():
        if path.name not in config["parts"]:
            shutil.rmtree(path, ignore_errors=True)
    for path in (folder / FAISS_DIR).iterdir():
        if path.name not in config["faiss"].values():
            path.unlink(missing_ok=True)
    for path in folder.glob("vad-*"):
        if path.is_dir() and path.name != config["vad_dir"]:
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(folder / PENDING_DIR, ignore_errors=True)


def take_rows(column, rows, starts=None):
    """`column.take(rows)` for a chunked Arrow column, chunk by chunk, in the order of `rows`. (pyarrow's
    ChunkedArray.take first concatenates every chunk: the whole embedding column, hundreds of MB, per query.)
    `starts`: the first row of every chunk (`chunk_starts(column)`), when known."""
    import pyarrow as pa

    rows = np.asarray(rows, dtype=np.int64)
    if not isinstance(column, pa.ChunkedArray):
        return column.take(pa.array(rows))
    starts = chunk_starts(column) if starts is None else starts
    which = np.searchsorted(starts, rows, side="right") - 1
    grouped = np.argsort(which, kind="stable")  # by chunk, the order of `rows` within each
    pieces = [column.chunk(int(chunk)).take(pa.array(rows[which == chunk] - starts[chunk])) for chunk in np.unique(which)]
    if not pieces:
        return pa.array([], type=column.type)
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[grouped] = np.arange(len(rows))
    return pa.concat_arrays(pieces).take(pa.array(inverse))


def chunk_starts(column):
    """First row of every chunk of a chunked Arrow column, and the row count at the end."""
    return np.cumsum([0] + [len(chunk) for chunk in column.chunks])


def _matrix(column, width):
    """A fixed-size-list Arrow column as a float32 [rows, width] numpy array."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if len(column) == 0:
        return np.zeros((0, width), np.float32)
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return values.reshape(len(column), width)


class _quiet_datasets:
    """Hide `datasets`' progress bars inside the block (when `quiet`)."""

    def __init__(self, quiet=True):
        self.quiet = quiet

    def __enter__(self):
        import datasets

        self.was_enabled = not datasets.are_progress_bars_disabled()
        if self.quiet and self.was_enabled:
            datasets.disable_progress_bars()

    def __exit__(self, *exc):
        import datasets

        if self.quiet and self.was_enabled:
            datasets.enable_progress_bars()


def _report_to_stderr(item_id, message):
    from tqdm.auto import tqdm

    tqdm.write(f"skipped {display_path(item_id)}: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------- output
def hit_row(hit, emotions):
    """A hit as one flat CSV row: `rank, id, file, score, emotion, explanation, score_<emotion>..., distance_<part>...`."""
    row = {key: hit[key] for key in ("rank", "id", "file", "score", "emotion", "explanation")}
    row.update({score_column(name): hit["scores"][name] for name in emotions})
    row.update({f"distance_{name}": value for name, value in hit["distances"].items()})
    return row


def score_column(emotion):
    """CSV column of an emotion's probability: `score_something_else`."""
    return "score_" + emotion.replace(" ", "_")


GALLERY_MARK = '<meta name="generator" content="sevlm-search gallery">'
CONTACT_SHEET = "contact_sheet.png"
# Class names carry a `sevlm-` prefix so that the cards can sit inside other pages (the web app) unchanged.
GALLERY_CSS = """
.sevlm-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 14px; clear: both; }
.sevlm-hit { margin: 0; background: #fff; color: #222; border: 1px solid #ddd; border-radius: 6px; padding: 10px; }
.sevlm-hit img { display: block; max-width: 100%; max-height: 170px; margin: 0 auto 8px; }
.sevlm-missing { height: 120px; background: #eee; color: #888; text-align: center; line-height: 120px; }
.sevlm-head { display: flex; justify-content: space-between; font-size: 12px; color: #666; }
.sevlm-id { font-size: 12px; color: #444; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.sevlm-emotion { font-size: 17px; font-weight: 600; margin: 4px 0; } .sevlm-prob { font-weight: 400; color: #666; font-size: 13px; }
.sevlm-bar { display: flex; align-items: center; font-size: 11px; color: #555; } .sevlm-bar .sevlm-name { width: 92px; }
.sevlm-track { flex: 1; height: 7px; background: #eee; margin: 0 6px; } .sevlm-fill { display: block; height: 100%; background: #9aa7b5; }
.sevlm-bar.sevlm-top { color: #222; font-weight: 600; } .sevlm-bar.sevlm-top .sevlm-fill { background: #3a6ea5; }
.sevlm-value { width: 32px; text-align: right; } .sevlm-explanation { font-size: 13px; font-style: italic; margin: 8px 0 0; }
"""


def jpeg_data_uri(picture, size=None):
    """A PIL image as an inline `data:image/jpeg;base64,...` URI (pages that fetch nothing)."""
    import base64

    picture = picture.convert("RGB")
    if size:
        picture.thumbnail((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def hit_cards_html(hits, pictures):
    """The hits as HTML cards (styled by `GALLERY_CSS`): thumbnail, rank, match score, id, predicted emotion with
    its probability, a bar per emotion and the explanation. Each card carries `data-id` and `data-rank`."""
    cards = []
    for hit, picture in zip(hits, pictures):
        image_html = '<div class="sevlm-missing">no image</div>'
        if picture is not None:
            image_html = f'<img alt="{html.escape(hit["id"])}" src="{jpeg_data_uri(picture)}">'
        bars = "".join(
            f'<div class="sevlm-bar{" sevlm-top" if name == hit["emotion"] else ""}"><span class="sevlm-name">{html.escape(name)}</span>'
            f'<span class="sevlm-track"><span class="sevlm-fill" style="width:{100 * value:.1f}%"></span></span>'
            f'<span class="sevlm-value">{100 * value:.0f}%</span></div>'
            for name, value in hit["scores"].items()
        )
        name = os.path.basename(hit["file"]) if hit["file"] else hit["id"]
        cards.append(
            f'<figure class="sevlm-hit" data-id="{html.escape(hit["id"])}" data-rank="{hit["rank"]}">{image_html}<figcaption>'
            f'<div class="sevlm-head"><span>#{hit["rank"]}</span><span>match {hit["score"]:.3f}</span></div>'
            f'<div class="sevlm-id" title="{html.escape(hit["id"])}">{html.escape(name)}</div>'
            f'<div class="sevlm-emotion">{html.escape(hit["emotion"])} <span class="sevlm-prob">{100 * hit["scores"][hit["emotion"]]:.0f}%</span></div>'
            f'<div class="sevlm-bars">{bars}</div><p class="sevlm-explanation">because {html.escape(hit["explanation"] or "(no explanation)")}</p>'
            "</figcaption></figure>"
        )
    return f'<div class="sevlm-grid">{"".join(cards)}</div>'


def write_gallery(index, hits, folder, title="SEVLM search", query_image=None):
    """Write `folder/index.html` (self-contained: thumbnails inlined, no external URL) and `folder/contact_sheet.png`
    for search hits: per hit its thumbnail, rank and match score, predicted emotion, a bar per emotion and the
    explanation. Returns the HTML path. A folder whose index.html was not written by this function is refused."""
    folder = Path(folder)
    page = folder / "index.html"
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"--gallery {display_path(folder)} is a file; choose a folder.")
    if page.is_file() and GALLERY_MARK not in page.read_text(encoding="utf-8", errors="replace"):
        raise FileExistsError(f"{display_path(page)} exists and is not a gallery written by sevlm-search; choose another --gallery folder.")
    folder.mkdir(parents=True, exist_ok=True)
    pictures = [index.thumbnail(hit["id"]) for hit in hits]
    query_html = ""
    if query_image is not None:
        query_html = f'<img style="float:right;max-height:96px" alt="query" src="{jpeg_data_uri(query_image, THUMBNAIL_SIZE)}">'
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{GALLERY_MARK}
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; background: #fafafa; }}
h1 {{ font-size: 20px; }} .sub {{ color: #666; font-size: 13px; }}
{GALLERY_CSS}</style></head>
<body>{query_html}<h1>{html.escape(title)}</h1>
<p class="sub">{len(hits)} hit(s) from {html.escape(display_path(index.folder))} ({len(index)} items, model {html.escape(str(index.config["model"]))}).
Match = 1 - distance (Hellinger distance between emotion distributions, blended as the search asked).</p>
{hit_cards_html(hits, pictures)}
</body></html>
"""
    with replace_file(page) as stream:
        stream.write(document)
    contact_sheet(hits, pictures, folder / CONTACT_SHEET)
    return page


def contact_sheet(hits, pictures, path, columns=5, cell=(240, 330)):
    """A PNG grid: per hit its thumbnail, rank, emotion with its probability, match score, mini bars, explanation."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    columns = max(1, min(columns, len(hits)))
    rows = max(1, math.ceil(len(hits) / columns))
    width, height = cell
    sheet = Image.new("RGB", (columns * width, rows * height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    bold = ImageFont.load_default(size=16)
    for number, (hit, picture) in enumerate(zip(hits, pictures)):
        left, top = (number % columns) * width, (number // columns) * height
        if picture is not None:
            scale = min((width - 20) / picture.width, 150 / picture.height)  # small thumbnails are enlarged too
            small = picture.convert("RGB").resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
            sheet.paste(small, (left + (width - small.width) // 2, top + 10))
        else:
            draw.rectangle((left + 10, top + 10, left + width - 10, top + 160), fill="#eeeeee")
        y = top + 166
        draw.text((left + 10, y), f"#{hit['rank']}  match {hit['score']:.3f}", fill="#666666", font=font)
        y += 18
        draw.text((left + 10, y), f"{hit['emotion']} {100 * hit['scores'][hit['emotion']]:.0f}%", fill="#222222", font=bold)
        y += 22
        bar_width = (width - 20) / max(1, len(hit["scores"]))
        for position, (name, value) in enumerate(hit["scores"].items()):
            x = left + 10 + position * bar_width
            draw.rectangle((x + 1, y + 40 - 40 * value, x + bar_width - 2, y + 40), fill="#3a6ea5" if name == hit["emotion"] else "#9aa7b5")
        y += 46
        for line in textwrap.wrap(hit["explanation"] or "(no explanation)", width=34, max_lines=4, placeholder=" ..."):
            draw.text((left + 10, y), line, fill="#333333", font=font)
            y += 16
    with replace_file(path, "wb") as stream:
        sheet.save(stream, format="PNG")
    return Path(path)


__all__ = [
    "APPROXIMATE_FROM",
    "EmotionIndex",
    "Query",
    "blend_weights",
    "component_distance",
    "component_vectors",
    "emotion_names_in",
    "hellinger",
    "hit_cards_html",
    "hit_row",
    "index_factory",
    "index_features",
    "load_model",
    "model_fingerprint",
    "parse_emotion_mix",
    "parse_min_scores",
    "vad_profile",
    "write_gallery",
]
