"""An emotion index on disk, and search over it: `EmotionIndex` (see `sevlm.index` for the whole picture).

Layout of an index folder (`index_config.json` is written last and is the commit point: a build that stops
before it leaves the previous index as it was):

    index_config.json      model, its fingerprint, emotions, parts, FAISS files, generation settings, sizes
    parts/part-NNNNN/      Dataset.save_to_disk, one part per build / add (rewritten when files changed)
    faiss/<part>-NNNNN.faiss   one FAISS index per similarity part (emotion, visual, vad) over all rows; Flat, or IVF
                           past `APPROXIMATE_FROM` items
    vad-NNNNN/             the model's tokenizer and vad_table (for words queries without loading the model)
    metadata-NNNNN.parquet the works' metadata (artist, title, date, ...; `sevlm.index.metadata`), when given
    .pending/              batches of an unfinished build, with the settings of the command that started it
    .lock                  held (fcntl) by the build writing the folder: one writer at a time
    .sevlm-output.json     the folder's record of these entries (`sevlm.io`): no other command writes over them
"""

import io
import json
import os
import sys
from pathlib import Path

import numpy as np

from sevlm.index.faiss_indexes import ivf_probes, read_faiss
from sevlm.index.metadata import METADATA_FILE, MetadataView, find_works, left_out_note, read_metadata, text_order_note
from sevlm.index.query import (
    UnusableWords,
    known_words,
    parse_conditions,
    parse_emotion_filter,
    parse_emotion_mix,
    parse_min_scores,
    read_words,
)
from sevlm.index.similarity import (
    COMPONENTS,
    Query,
    blend_weights,
    component_distance,
    component_vectors,
    text_vad_profile,
)
from sevlm.io import display_path, read_record

INDEX_FORMAT = "sevlm-emotion-index"
INDEX_VERSION = 2  # 2: file size and modification time per row (changed files are predicted again)
CONFIG_NAME = "index_config.json"
PARTS_DIR = "parts"
FAISS_DIR = "faiss"
PENDING_DIR = ".pending"
LOCK_NAME = ".lock"
VAD_TABLE_FILE = "vad_table.safetensors"
OWNER = "emotion index"  # the kind of output an index folder's record names
THUMBNAIL_SIZE = 128
# Below this many rows allowed by the filters, search scores those rows exactly instead of asking FAISS.
BRUTE_FORCE_ROWS = 4096
BOUND_TOLERANCE = 1e-5  # float32 rounding of FAISS distances against the float64 re-scoring
REBUILD = "Rebuild the index (sevlm-index ... --overwrite)."


# ------------------------------------------------------------------------------------------------- storage
def index_features(emotions, embedding_dim):
    """The `datasets.Features` of an index with these emotions and embedding width."""
    from datasets import Features, Image, List, Value

    return Features(
        {
            "id": Value("string"),
            "file": Value("string"),
            "file_size": Value("int64"),
            "file_mtime_ns": Value("int64"),
            "emotion": Value("string"),
            "score": Value("float32"),
            "scores": List(Value("float32"), length=len(emotions)),
            "explanation": Value("string"),
            "vad": List(Value("float32"), length=3),
            "image_embeds": List(Value("float32"), length=int(embedding_dim)),
            "thumbnail": Image(),
        }
    )


CONFIG_TYPES = {
    "model": str,
    "model_fingerprint": str,
    "emotions": list,
    "embedding_dim": int,
    "num_items": int,
    "generation": int,
    "parts": list,
    "faiss": dict,
    "vad_dir": str,
}


def read_config(folder):
    """The folder's `index_config.json`, checked (None when there is none). A file that is not JSON, not of this
    format or version, or names files outside the folder is an error naming it and saying what to do."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        return None
    shown = display_path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{shown} is damaged (not JSON: {error}). {REBUILD}") from None
    if not isinstance(config, dict) or config.get("format") != INDEX_FORMAT:
        raise ValueError(f"{shown} is not an emotion index file (no \"format\": \"{INDEX_FORMAT}\").")
    if config.get("version") != INDEX_VERSION:
        raise ValueError(
            f"{shown} is an index of version {config.get('version')!r}; this SEVLM reads version {INDEX_VERSION}. "
            f"{REBUILD}"
        )
    for key, kind in CONFIG_TYPES.items():
        if not isinstance(config.get(key), kind) or isinstance(config.get(key), bool):
            raise ValueError(f"{shown} is damaged: {key!r} is {config.get(key)!r}. {REBUILD}")
    names = list(config["parts"]) + [config["faiss"].get(part) for part in COMPONENTS] + [config["vad_dir"]]
    for name in names:
        if not isinstance(name, str) or not name or name != os.path.basename(name) or name in (".", ".."):
            raise ValueError(f"{shown} is damaged: it names {name!r} where a file of the index belongs. {REBUILD}")
    if not all(isinstance(name, str) for name in config["emotions"]) or not config["emotions"]:
        raise ValueError(f"{shown} is damaged: 'emotions' is {config['emotions']!r}. {REBUILD}")
    metadata = config.get("metadata")
    if metadata is not None:
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("file"), str)
            or not METADATA_FILE.fullmatch(metadata["file"])
            or not isinstance(metadata.get("columns"), list)
            or not all(isinstance(name, str) and name and name != "id" for name in metadata["columns"])
        ):
            raise ValueError(f"{shown} is damaged: 'metadata' is {metadata!r}. {REBUILD}")
    return config


def load_parts(folder, parts):
    """The index's parts as one memory-mapped `datasets.Dataset`; a damaged part is an error naming it."""
    import datasets

    loaded = []
    with quiet_datasets():
        for name in parts:
            path = Path(folder) / PARTS_DIR / name
            try:
                loaded.append(datasets.load_from_disk(str(path)))
            except Exception as error:  # a part cut short: pyarrow's ArrowInvalid, OSError, datasets' own errors
                raise ValueError(f"{display_path(path)} cannot be read ({type(error).__name__}: {error}). {REBUILD}") from None
    return datasets.concatenate_datasets(loaded) if len(loaded) > 1 else loaded[0]


def index_entries(folder):
    """The entries of `folder` that belong to an index (by its record, or the names an index always uses)."""
    record = read_record(folder)
    return {name for name, owner in record.items() if owner == OWNER} | {CONFIG_NAME, PENDING_DIR, LOCK_NAME}


class quiet_datasets:
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


class Hits(list):
    """The hits of a search, best first (a list of dicts), with the `query` they answer, the blend `weights`, and
    `notes` for people (works a metadata condition could not compare)."""

    def __init__(self, hits=(), query=None, weights=None, notes=()):
        super().__init__(hits)
        self.query = query
        self.weights = weights or {}
        self.notes = list(notes)


# ------------------------------------------------------------------------------------------------ the index
class EmotionIndex:
    """An emotion index on disk: load it with `EmotionIndex.load(folder)`, make or extend it with
    `EmotionIndex.build(...)` / `index.add(...)`, and query it with `index.search(...)` (see `sevlm.index`)."""

    def __init__(self, folder, config, dataset, faiss_indexes, metadata=None):
        self.folder = Path(folder)
        self.config = config
        self.dataset = dataset
        self.faiss = faiss_indexes  # {part: FAISS index}, rows in the dataset's order
        self.emotions = list(config["emotions"])
        self.build_report = None
        self._model = None  # (model, processor) of the index's own model, for image queries
        self._checked_model = None  # the last model checked against the index (a fingerprint costs a pass over it)
        self._vad = None  # (tokenizer, vad_table, known words) for words queries
        self._embedding_chunks = self._embedding_starts = None  # numpy views of the embedding column, made on first use
        self._starts = None  # first row of every chunk of the table's columns
        self.table = dataset.data.table  # the pyarrow table under the Dataset (memory-mapped), for fast row access
        count = len(dataset)
        self.scores = matrix(self.table.column("scores"), len(self.emotions))
        self.vad = matrix(self.table.column("vad"), 3)
        positions = {name: number for number, name in enumerate(self.emotions)}
        self.emotion_positions = np.asarray([positions[name] for name in self.table.column("emotion").to_pylist()], dtype=np.int64).reshape(count)
        # the works' metadata in row order (`sevlm.index.metadata`), or None
        self.metadata = None if metadata is None else MetadataView(metadata, self.table.column("id"))

    @property
    def metadata_columns(self):
        """The columns of the works' metadata (artist, title, ...), empty when the index holds none."""
        return [] if self.metadata is None else list(self.metadata.columns)

    def __len__(self):
        return len(self.dataset)

    def __repr__(self):
        return f"EmotionIndex({display_path(self.folder)!r}, {len(self)} items, model={self.config['model']!r})"

    # ---------------------------------------------------------------------------------------------- load
    @classmethod
    def load(cls, folder):
        """Open an index folder written by `build` (memory-mapped: the stored rows are not read into memory). A
        missing or damaged file is an error naming it."""
        folder = Path(folder)
        config = read_config(folder)
        if config is None:
            pending = " (an unfinished build is in .pending/: run the same sevlm-index command again to finish it)" if (folder / PENDING_DIR).is_dir() else ""
            raise FileNotFoundError(f"{display_path(folder)} is not an emotion index: it has no {CONFIG_NAME}{pending}. Build one with sevlm-index.")
        dataset = load_parts(folder, config["parts"])
        if len(dataset) != config["num_items"]:
            raise ValueError(f"{display_path(folder)}: {CONFIG_NAME} says {config['num_items']} items, its parts hold {len(dataset)}; the index is damaged. {REBUILD}")
        dims = {"emotion": len(config["emotions"]), "visual": config["embedding_dim"], "vad": 3}
        faiss_indexes = {part: read_faiss(folder / FAISS_DIR / config["faiss"][part], dims[part], len(dataset)) for part in COMPONENTS}
        entry = config.get("metadata")
        metadata = None if entry is None else read_metadata(folder / entry["file"], entry["columns"])
        return cls(folder, config, dataset, faiss_indexes, metadata)

    # --------------------------------------------------------------------------------------------- build
    @classmethod
    def build(cls, inputs=None, output_dir=None, **kwargs):
        """Index image files / folders / globs or a corpus split into `output_dir` (see `sevlm.index.build.build_index`)."""
        from sevlm.index.build import build_index

        return build_index(inputs, output_dir, **kwargs)

    def add(self, inputs=None, *, model=None, processor=None, trust_index_model=False, **kwargs):
        """Index more images (same arguments as `build`); only new and changed files are computed. The model is
        `model` (with its `processor`), or, with `trust_index_model=True`, the model the index names (loading it runs
        that folder's code). Updates this object in place and returns it."""
        if model is None:
            if self._model is not None:
                model, processor = self._model
            elif trust_index_model:
                model = self.config["model"]
            else:
                raise ValueError(untrusted_model_message(self, "add(..., model=...)", "add(..., trust_index_model=True)"))
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
        where=None,
        visual_weight=0.0,
        vad_weight=None,
        model=None,
        processor=None,
        trust_index_model=False,
        generate_kwargs=None,
    ):
        """The `top_k` items closest to one query, best first, as `Hits` (a list with `.query` and `.weights`).

        Query (exactly one): `image` (a file or PIL image, run through `model`/`processor`, or with
        `trust_index_model=True` the index's own model), `id` (an indexed item; the item itself is left out of its
        hits), `emotions` (a mix: `"awe=0.6,sadness=0.4"` or a dict), `text` (words: their feeling and any emotion
        names among them; `hits.query.unused_words` lists the words that took no part), or `prediction` (a
        `predict_batch` result with `image_embeds`, e.g. the web app's current painting).

        Filters: `emotion` (a name or list of names: the hit's predicted emotion), `min_score` (a number: the hit's
        score for its predicted emotion; or `"awe=0.3,fear=0.1"` / a dict: those emotions' probabilities), `where`
        (conditions on the works' metadata, all of which a hit meets: `["artist=Claude Monet", "date>=1900"]`, see
        `sevlm.index.metadata`; `hits.notes` says how many works a condition could not compare).

        Weights: `visual_weight` (image embeddings, for image / id / prediction queries; default 0) and
        `vad_weight` (explanation VAD profiles; default 0.5 for words, else 0); the emotion distribution gets the
        rest (see `sevlm.index.similarity`).

        Each hit: `{"rank", "id", "file", "score", "emotion", "scores", "explanation", "distances"}` with `score`
        = 1 - the blended distance and `distances` the parts' distances, and `metadata` (`{column: value}`) when the
        index holds the works' metadata.
        """
        query = self.query(
            image=image, id=id, emotions=emotions, text=text, prediction=prediction, model=model, processor=processor,
            trust_index_model=trust_index_model, generate_kwargs=generate_kwargs,
        )  # fmt: skip
        top_k = check_top_k(top_k)
        weights = blend_weights(query, visual_weight, vad_weight)
        steps, notes = self.filter_steps(emotion, min_score, where)
        allowed = combined(steps)
        rows, distances, parts = self._rank(query, weights, allowed, top_k)
        if not rows:
            left_out = [] if query.exclude_row is None else [query.exclude_row]
            notes += [note for note in [self.no_hits_note(steps, left_out, "the work searched from, which is never among its own hits")] if note]
        return Hits(self.hits(rows, distances, parts), query, weights, notes)

    def recommend(self, like, dislike=(), *, top_k=10, visual_weight=0.0, dislike_weight=None, emotion=None, min_score=None, where=None):
        """Works that evoke what the `like`d works (ids) evoke, and not what the `dislike`d ones do, best first, as
        `Hits`; liked and disliked works are never among them. Each hit also says why: `because` (a sentence),
        `closest_liked` (the liked work it is closest to), `shared_emotions` (what both evoke) and `avoided_emotions`
        (what the disliked works evoke and it hardly does). Filters and `visual_weight` as in `search`;
        `dislike_weight` how strongly the disliked works' emotions are taken out (see `sevlm.index.recommend`)."""
        from sevlm.index.recommend import recommend

        return recommend(self, like, dislike, top_k=top_k, visual_weight=visual_weight, dislike_weight=dislike_weight, emotion=emotion, min_score=min_score, where=where)

    def hits(self, rows, distances, parts, rank_from=1):
        """Hit dicts of `rows` with their blended `distances` and each part's distances (`parts`)."""
        fields = self.records(rows, ("id", "file", "emotion", "explanation"))
        metadata = self.metadata.rows(rows) if self.metadata is not None and len(rows) else [None] * len(rows)
        hits = []
        for number, (row, distance, record, values) in enumerate(zip(rows, distances, fields, metadata)):
            hit = {
                "rank": rank_from + number,
                "id": record["id"],
                "file": record["file"],
                "score": round(1.0 - float(distance), 6),
                "emotion": record["emotion"],
                "scores": {name: round(value, 6) for name, value in zip(self.emotions, self.scores[row].tolist())},
                "explanation": record["explanation"],
                "distances": {name: round(float(part[number]), 6) for name, part in parts.items()},
            }
            if values is not None:
                hit["metadata"] = values
            hits.append(hit)
        return hits

    def metadata_of(self, item_id):
        """The work's metadata (`{column: value}`; empty when the index holds none)."""
        return {} if self.metadata is None else self.metadata.row(self.row_of(item_id))

    def records(self, rows, columns):
        """`[{column: value}]` of `rows` (row numbers), read from the memory-mapped table."""
        if self._starts is None:  # every column of the table has the same chunks
            self._starts = chunk_starts(self.table.column("id"))
        fields = {name: take_rows(self.table.column(name), rows, self._starts).to_pylist() for name in columns}
        return [dict(zip(fields, values)) for values in zip(*fields.values())]

    def query(self, *, image=None, id=None, emotions=None, text=None, prediction=None, model=None, processor=None, trust_index_model=False, generate_kwargs=None):
        """The `Query` of one of the search inputs (see `search`)."""
        given = [name for name, value in (("image", image), ("id", id), ("emotions", emotions), ("text", text), ("prediction", prediction)) if value is not None]
        if len(given) != 1:
            raise ValueError(f"Search with exactly one of image, id, emotions, text, prediction; got {given or 'none'}.")
        if emotions is not None:
            return Query(scores=parse_emotion_mix(emotions, self.emotions), description=f"emotions {emotions}", kind="emotions")
        if id is not None:
            row = self.row_of(id)
            return Query(
                scores=self.scores[row],
                embedding=self._embeddings([row])[0],
                vad=None if np.isnan(self.vad[row]).any() else self.vad[row],
                exclude_row=row,
                description=f"id {id}",
                kind="id",
                source_id=self.records([row], ("id",))[0]["id"],
            )
        if text is not None:
            return self.words_query(text)
        if image is not None:
            prediction = self.predict_image(image, model=model, processor=processor, trust_index_model=trust_index_model, generate_kwargs=generate_kwargs)
            query = self.prediction_query(prediction)
            query.kind = "image"
            return query
        return self.prediction_query(prediction)

    def words_query(self, text):
        """The `Query` of words: the emotions they name (equal parts) and the feeling of the words that have one.
        Words that take no part are listed in `unused_words` with the nearest known words; when none can be used,
        `UnusableWords`."""
        tokenizer, table, vocabulary = self.vad_lookup()
        named, felt, unused = read_words(text, self.emotions, tokenizer, table, vocabulary)
        if not named and not felt:
            raise UnusableWords(text, unused, self.emotions)
        scores = parse_emotion_mix(dict.fromkeys(named, 1), self.emotions) if named else None
        profile = text_vad_profile(" ".join(felt), tokenizer, table) if felt else None
        return Query(scores=scores, vad=profile, description=f"words {text!r}", kind="words", default_vad_weight=0.5, unused_words=unused)

    def prediction_query(self, prediction):
        """The query of a `predict_batch` result (with `image_embeds`): its scores, embedding and VAD profile."""
        from sevlm.names import check_distinct, match_emotion

        missing = [key for key in ("scores", "image_embeds", "explanation") if key not in prediction]
        if missing:
            raise ValueError(f"A prediction query needs a predict_batch result with return_image_embeds=True; missing {missing}.")
        names = list(prediction["scores"])
        check_distinct(names, "The prediction's scores")
        matched = {match_emotion(name, self.emotions): name for name in names}
        if len(names) != len(self.emotions) or None in matched:
            raise ValueError(f"The prediction's emotions {names} differ from this index's {self.emotions}: use the model the index was built with.")
        tokenizer, table, _ = self.vad_lookup()
        embedding = prediction["image_embeds"]
        embedding = embedding.detach().float().cpu().numpy() if hasattr(embedding, "detach") else np.asarray(embedding, np.float32)
        if embedding.shape != (self.config["embedding_dim"],):
            raise ValueError(f"The prediction's image_embeds have shape {embedding.shape}; this index holds {self.config['embedding_dim']}-wide embeddings of model {self.config['model']}.")
        return Query(
            scores=np.asarray([prediction["scores"][matched[name]] for name in self.emotions], dtype=np.float32),
            embedding=embedding,
            vad=text_vad_profile(prediction["explanation"], tokenizer, table),
            description="an image",
            kind="prediction",
        )

    def predict_image(self, image, model=None, processor=None, trust_index_model=False, generate_kwargs=None):
        """`predict_batch` result (with `image_embeds`) of one image (a path or PIL image), read at a bounded size,
        by `model` or the index's own model; explanations are generated with the index's settings unless
        `generate_kwargs` says otherwise."""
        import torch

        from processing_sevlm import load_image
        from sevlm.loading import predict_function

        model, processor = self.model(model, processor, trust_index_model=trust_index_model)
        pixel_values = processor.preprocess_images([load_image(image)])
        settings = generate_kwargs if generate_kwargs is not None else self.config.get("generate_kwargs") or {}
        with torch.inference_mode():
            return predict_function(model)(model, processor, pixel_values=pixel_values, return_image_embeds=True, generate_kwargs=dict(settings))[0]

    def model(self, model=None, processor=None, device=None, trust_index_model=False):
        """(model, processor) for image queries: the given ones (checked against the index), else, only with
        `trust_index_model=True`, the model the index names (its folder's code runs), loaded once."""
        if model is None:
            if self._model is None:
                if not trust_index_model:
                    raise ValueError(untrusted_model_message(self, "model=", "trust_index_model=True"))
                from sevlm.loading import load_model_and_processor, pick_device

                self._model = load_model_and_processor(self.config["model"], pick_device(device))
                self.check_model(self._model[0])
            return self._model
        if processor is None:
            raise ValueError("Pass the model's processor with it.")
        self.check_model(model)
        return model, processor

    def check_model(self, model):
        """Refuse a model whose emotions differ from the index's (its scores would mean other things); warn on stderr
        when its weights differ from the index's model (emotion scores stay comparable, image embeddings and
        explanations may not). Returns the warning, or None."""
        if self._checked_model is not None and self._checked_model[0] is model:
            return self._checked_model[1]
        from sevlm.index.build import model_fingerprint

        emotions = list(model.config.emotions)
        if emotions != self.emotions:
            raise ValueError(
                f"This index ({display_path(self.folder)}) was built with a model whose emotions are {self.emotions}; the "
                f"model given has {emotions}. Search it with the model it was built with ({self.config['model']}), or "
                "build an index with this model (sevlm-index)."
            )
        warning = None
        if model_fingerprint(model) != self.config["model_fingerprint"]:
            name = getattr(model, "name_or_path", "") or "the model given"
            warning = (
                f"warning: {display_path(name)} is not the model this index was built with ({self.config['model']}): its "
                "weights differ, so an image is compared with works another model described; the emotion scores stay "
                "comparable, the looks and explanations may not. Use the index's model, or rebuild the index with this "
                "one (sevlm-index --overwrite) to compare like with like."
            )
            print(warning, file=sys.stderr)
        self._checked_model = (model, warning)
        return warning

    def vad_lookup(self):
        """(tokenizer, vad_table, known words) of the index's model, saved in the index: words queries need no model
        (and run no code: the tokenizer is loaded without remote code)."""
        if self._vad is None:
            from safetensors.numpy import load_file
            from transformers import AutoTokenizer

            folder = self.folder / self.config["vad_dir"]
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
                table = load_file(str(folder / VAD_TABLE_FILE))["vad_table"]
            except Exception as error:
                raise ValueError(f"{display_path(folder)} cannot be read ({type(error).__name__}: {error}). {REBUILD}") from None
            self._vad = (tokenizer, table, known_words(tokenizer, table))
        return self._vad

    def row_of(self, item_id):
        """Row of an item id; a file path is also found by its absolute form, and by its name (with or without its
        extension) when only one work has it."""
        import pyarrow.compute as pc

        column = self.table.column("id")
        for candidate in dict.fromkeys([str(item_id), display_path(os.path.abspath(str(item_id)))]):
            row = pc.index(column, candidate).as_py()
            if row >= 0:
                return row
        found = find_works([str(item_id)], column.to_pylist())[str(item_id)]  # a file name only one work has
        if found.work is not None:
            return pc.index(column, found.work).as_py()
        if found.candidates:
            raise KeyError(
                f"{item_id!r} names {len(found.candidates)} works of the index {display_path(self.folder)} by their file "
                f"name: {', '.join(map(display_path, found.candidates))}; give the one meant by its path."
            )
        raise KeyError(f"No item with id {item_id!r} in the index {display_path(self.folder)} ({len(self)} items); ids are file paths or painting_id values.")

    def filter_mask(self, emotion=None, min_score=None, where=None):
        """Boolean mask of the rows the filters allow, or None when there are no filters."""
        return self.filters(emotion, min_score, where)[0]

    def filters(self, emotion=None, min_score=None, where=None):
        """`(mask or None, notes)`: the rows the filters allow, and what people should know about them (works whose
        value a condition could not compare, text compared in alphabetical order)."""
        steps, notes = self.filter_steps(emotion, min_score, where)
        return combined(steps), notes

    def filter_steps(self, emotion=None, min_score=None, where=None):
        """`([(filter, mask)], notes)`: each filter (in words, e.g. `date>=1900`) with the rows it allows, and the
        notes of `filters`."""
        steps, notes = [], []
        for condition in parse_conditions(where, self.metadata_columns, self.folder):
            passed, (count, examples) = self.metadata.mask(condition)
            steps.append((str(condition), passed))
            notes += [note for note in (text_order_note(condition), left_out_note(condition, count, examples)) if note]
        if emotion:
            positions = parse_emotion_filter(emotion, self.emotions)
            steps.append((f"emotion {', '.join(self.emotions[position] for position in positions)}", np.isin(self.emotion_positions, positions)))
        own_minimum, minimums = parse_min_scores(min_score, self.emotions)
        if own_minimum is not None:
            own = self.scores[np.arange(len(self)), self.emotion_positions]
            steps.append((f"min_score {own_minimum:g}", own >= own_minimum))
        for position, minimum in minimums.items():
            steps.append((f"min_score {self.emotions[position]}={minimum:g}", self.scores[:, position] >= minimum))
        return steps, notes

    def no_hits_note(self, steps, left_out=(), what=""):
        """Why a search found nothing: no work meets every filter (with how many works each keeps), or the only works
        the filters keep are `left_out` (row numbers: `what` they are, e.g. the liked works)."""
        count = len(self)
        allowed = combined(steps)
        allowed = np.ones(count, dtype=bool) if allowed is None else allowed
        kept = ", ".join(f"{name} keeps {int(mask.sum())}" for name, mask in steps)
        if not allowed.any():
            single = len(steps) == 1
            return f"No hits: no work of the {count} meets {'the filter' if single else 'every filter at once'} ({kept})."
        remaining = allowed.copy()
        remaining[list(left_out)] = False
        if not remaining.any():
            by = f" the filters keep ({kept})" if steps else " of the index"
            return f"No hits: the only work(s){by} are {what}."
        return ""

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
        vectors = {name: component_vectors(name, value) for name, value in (("emotion", query.scores), ("visual", query.embedding), ("vad", query.vad)) if name in weights}
        depth, widen = min(count, max(64, 4 * top_k)), 1
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # one query: threads only add start-up cost (measured, bench/bench_index.py)
        try:
            while True:
                seen, bound = set(), 0.0
                for name, weight in weights.items():
                    index = self.faiss[name]
                    squared, found = index.search(vectors[name], depth, **ivf_probes(index, widen))
                    squared, found = squared[0], found[0]
                    kept = found >= 0
                    seen.update(found[kept].tolist())
                    if kept.any():
                        bound += weight * float(component_distance(name, squared[kept][-1]))
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
        """The item's picture as a PIL image (its stored thumbnail, else its file read at a bounded size), or None
        when neither can be read."""
        from PIL import Image

        row = self.row_of(item_id)
        record = self.table.select(["thumbnail", "file"]).slice(row, 1).to_pylist()[0]
        if record["thumbnail"] and record["thumbnail"].get("bytes"):
            with Image.open(io.BytesIO(record["thumbnail"]["bytes"])) as opened:
                return opened.convert("RGB")
        if record["file"] and os.path.isfile(record["file"]):
            try:
                from processing_sevlm import load_image

                picture = load_image(record["file"], draft_size=(size, size))
                picture.thumbnail((size, size))
                return picture
            except Exception:
                return None
        return None

    def picture(self, item_id, size=640):
        """The work's picture for a large view: its file read at a bounded size (longest side `size`) when the file is
        there, else its stored thumbnail; None when neither can be read."""
        row = self.row_of(item_id)
        record = self.records([row], ("id", "file"))[0]
        if record["file"] and os.path.isfile(record["file"]):
            try:
                from processing_sevlm import load_image

                picture = load_image(record["file"], draft_size=(size, size))
                picture.thumbnail((size, size))
                return picture
            except Exception:  # unreadable now: the thumbnail stands in
                pass
        return self.thumbnail(record["id"])

    def example_files(self, count):
        """Up to `count` files of the collection that still exist (for the app's examples), in index order."""
        found = []
        for batch in self.table.select(["file"]).to_batches(max_chunksize=1024):
            for name in batch.column(0).to_pylist():
                if name and os.path.isfile(name):
                    found.append(name)
                    if len(found) == count:
                        return found
        return found


def untrusted_model_message(index, explicit, trusting):
    """Why the index's own model is not loaded without being asked, and how to ask."""
    return (
        f"Image queries need a model. The index {display_path(index.folder)} was built with {index.config['model']}; "
        f"loading it would run the Python code in that folder (trust_remote_code), and a data file is not a safe place "
        f"to take that decision from. Name the model yourself ({explicit}) after checking it, or allow the index's own "
        f"model ({trusting})."
    )


def check_top_k(top_k):
    """`top_k` as an int; anything but a whole number of at least 1 (2.5, True, "3") is a ValueError."""
    import numbers

    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or int(top_k) < 1:
        raise ValueError(f"top_k must be a whole number of at least 1, got {top_k!r}.")
    return int(top_k)


def combined(steps):
    """The rows every filter of `steps` (`[(filter, mask)]`) allows, or None when there are none."""
    mask = None
    for _, passed in steps:
        mask = passed if mask is None else mask & passed
    return mask


# -------------------------------------------------------------------------------------------- Arrow helpers
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


def matrix(column, width):
    """A fixed-size-list Arrow column as a float32 [rows, width] numpy array."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if len(column) == 0:
        return np.zeros((0, width), np.float32)
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return values.reshape(len(column), width)


__all__ = ["EmotionIndex", "Hits", "UnusableWords", "index_features", "load_parts", "read_config"]
