"""Model cards and Hub folders of SEVLM models: what `sevlm-publish` and training both write.

- `write_model_card(folder, metrics=..., ...)`: README.md with huggingface_hub's `ModelCard` / `ModelCardData` /
  `EvalResult`, every number labelled with the protocol that produced it (`eval_sevlm.py`, or the training-time
  approximation), emotions, task and dataset read from the folder.
- `training_card_fields(model, dataset)`: what a training run knows for the card.
- `check_folder(folder)`, `push_folder(folder, repo_id)`: a complete Hub folder, and its upload.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pipeline_sevlm
from configuration_sevlm import ARTEMIS_EMOTIONS
from pipeline_sevlm import TASK, pipeline_config_entry
from sevlm.io import OUTPUT_RECORD, display_path, replace_file, staged_output, write_json_atomic, write_text_atomic
from sevlm.loading import CODE_FILES

REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    *CODE_FILES,
    "processor_config.json",
    "tokenizer_config.json",
    "README.md",
)
# The files a SEVLM model folder is made of (model, code, processor and tokenizer, the card): a Hub folder holds these
# and nothing else, and only these are uploaded. Weights may be sharded (model-00001-of-00002.safetensors + index).
HUB_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    *CODE_FILES,
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "README.md",
)
HUB_FILE_PATTERN = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
# Names that suggest a secret: warned about when found in a model folder (they are never copied or uploaded).
CREDENTIAL_NAME = re.compile(r"token|secret|passw|credential|api[_-]?key|\.env$|^\.netrc$|\.pem$|\.key$|id_rsa|id_ed25519", re.I)
HUB_OWNER = "Hub folder"
ARTEMIS = "ArtEmis"
DEMO_DATASET = "SEVLM demo corpus"
DATASET_NAMES = {"artemis": ARTEMIS, "sevlm-demo-corpus": DEMO_DATASET}  # card dataset ids -> names
MODEL_NAME = "SEVLM"
HUB_TASK = "image-to-text"

# The protocols a number can come from. "eval": eval_sevlm.py's metrics.json; "training": the periodic
# evaluation of train_sevlm.py (train_results.json and friends).
EVAL, TRAINING = "eval", "training"
PROTOCOLS = {
    EVAL: (
        "eval_sevlm.py",
        "`eval_sevlm.py` on the whole split (decoding as its eval_args.json records it; the paper's: greedy, at most 25 "
        "new tokens): the reference emotion of an image is its annotators' majority (images without one are left out of accuracy and emotional alignment), captions "
        "scored against all reference explanations of the image with the COCO caption toolkit (pycocoevalcap: PTB "
        "tokenizer, BLEU, METEOR 1.5, ROUGE-L, CIDEr).",
    ),
    TRAINING: (
        "training-time approximation",
        "`train_sevlm.py` during training (its periodic evaluation, greedy generation): emotion accuracy against the "
        "majority emotion and BLEU-4 with a light tokenisation (`bleu_4_fast`). A quick signal for choosing "
        "checkpoints, not comparable with eval_sevlm.py's numbers or published ones.",
    ),
}
# key: (name on the card, model-index metric type, what it measures)
METRICS = {
    "emotion_accuracy": ("Emotion accuracy", "accuracy", "share of images whose freely generated emotion (the text before the connector) is the majority emotion of its annotators (the SEVLM paper's ACC)"),
    "emotion_accuracy_scores": ("Emotion accuracy (scores)", "accuracy", "the same with the emotion of highest score (`model.emotion_scores`), the emotion the `art-emotion` pipeline shows"),
    "bleu_1": ("BLEU-1", "bleu", "unigram BLEU of the explanation against all reference explanations"),
    "bleu_2": ("BLEU-2", "bleu", "BLEU up to bigrams"),
    "bleu_3": ("BLEU-3", "bleu", "BLEU up to trigrams"),
    "bleu_4": ("BLEU-4", "bleu", "BLEU up to 4-grams"),
    "bleu_4_fast": ("BLEU-4 (light tokenisation)", "bleu", "corpus BLEU-4 on lower-cased word tokens instead of the PTB tokenizer, computed during training; it tracks the COCO protocol's BLEU-4 closely but is not it"),
    "meteor": ("METEOR", "meteor", "METEOR 1.5 of the explanation against the references"),
    "rouge_l": ("ROUGE-L", "rouge", "ROUGE-L F-measure against the references"),
    "cider": ("CIDEr", "cider", "CIDEr-D against the references"),
    "emotional_alignment": ("Emotional alignment", "emotional_alignment", "share of images with a majority emotion whose generated explanation a text-emotion classifier labels as that majority emotion (the papers' EA; comparable only between models judged by the same classifier)"),
    "emotion_explanation_consistency": ("Emotion-explanation consistency", "emotion_explanation_consistency", "share of explanations that the text-emotion classifier labels as the model's own predicted emotion"),
    "unique": ("Unique", "unique", "distinct generated explanations / all generated explanations"),
    "emotion_classifier_accuracy": ("EA classifier accuracy", "accuracy", "held-out accuracy of the text-emotion classifier that judges emotional alignment (near chance, its EA means little)"),
}
# Keys a training run wrote under other names before they were given their own.
NRC_VAD = (
    "the NRC Valence, Arousal, and Dominance Lexicon v1 (Saif M. Mohammad, \"Obtaining Reliable Human Ratings of "
    "Valence, Arousal, and Dominance for 20,000 English Words\", ACL 2018, https://saifmohammad.com/WebPages/nrc-vad.html). "
    "The lexicon is free for research use; commercial use needs a licence from its authors, and the `vad_table` "
    "weights hold values derived from it: read the lexicon's terms on its page before using this model outside research."
)
DEMO_VAD = (
    "the illustrative demo lexicon of the built-in demo corpus (`demo_vad_lexicon.txt`, written by "
    "`dataset_scripts/make_demo_corpus.py`). Its values were chosen by hand for the demo vocabulary; they are not "
    "NRC-VAD values."
)
ARTEMIS_TERMS = (
    "ArtEmis annotations and WikiArt images are for non-commercial research use under their own terms "
    "(https://www.artemisdataset.org/, https://www.wikiart.org/en/terms-of-use)."
)


# ---------------------------------------------------------------------------------------------- metrics
def load_metrics(source, protocol=None):
    """One metrics source for the card: a dict, a metrics.json written by eval_sevlm.py, or a training run's
    train_results.json (or all_results.json / eval_results.json).

    Returns a dict: `values`, `protocol` (`"eval"` or `"training"`: the argument, else a metrics.json or a file with
    eval_args.json beside it is eval_sevlm.py's, anything else, dicts included, training-time), `split`,
    `dataset_path` and `decoding` (from eval_args.json; None when unknown) and `path` (None for a dict).
    """
    if isinstance(source, dict):
        return {"values": source, "protocol": protocol or TRAINING, "split": None, "dataset_path": None, "decoding": None, "path": None}
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"Metrics file {display_path(path)} not found; run sevlm-eval first (it writes OUT/metrics.json)."
        )
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"Metrics file {display_path(path)} is not valid JSON: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"Metrics file {display_path(path)} holds a {type(values).__name__}, not a JSON object of metrics.")
    eval_args = path.with_name("eval_args.json")
    args = (_read_json(eval_args) if eval_args.is_file() else None) or {}
    if protocol is None:
        protocol = EVAL if eval_args.is_file() or path.name == "metrics.json" else TRAINING
    return {
        "values": values,
        "protocol": protocol,
        "split": args.get("split"),
        "dataset_path": args.get("dataset_path"),
        "decoding": decoding(args) if args else None,
        "path": path,
    }


def decoding(eval_args):
    """How eval_sevlm.py made the explanations, from its eval_args.json: `greedy, at most 25 new tokens`, ..."""
    if eval_args.get("predictions_file"):
        return f"scored from the predictions file {eval_args['predictions_file']}"
    if eval_args.get("do_sample"):
        how = f"sampling (temperature {eval_args.get('temperature')}, top_p {eval_args.get('top_p')}, top_k {eval_args.get('top_k')})"
    elif (eval_args.get("num_beams") or 1) > 1:
        how = f"beam search with {eval_args['num_beams']} beams"
    else:
        how = "greedy"
    tokens = eval_args.get("max_new_tokens")
    return f"{how}, at most {tokens} new tokens" if tokens else how


def find_metrics(folder, report=None):
    """The metrics of a folder, eval_sevlm.py's first: its default output (outputs/eval/<name>/test/metrics.json, from
    the working directory) and the training run's results (all_results.json as `trainer.save_metrics` writes it, else
    eval_results.json, else train_results.json). A list of paths, empty when there is none.

    A metrics file older than the folder's weights describes an earlier model (say one trained before into the same
    folder): it is left out, and `report(path, reason)` is told why.
    """
    folder = Path(folder)
    weights = [folder / name for name in ("model.safetensors", "model.safetensors.index.json") if (folder / name).is_file()]
    trained = max((path.stat().st_mtime for path in weights), default=None)
    candidates = [Path("outputs") / "eval" / folder.resolve().name / "test" / "metrics.json"]
    candidates += [next((folder / name for name in ("all_results.json", "eval_results.json", "train_results.json")
                         if (folder / name).is_file()), folder / "all_results.json")]
    found = []
    for path in candidates:
        if not path.is_file():
            continue
        if trained is not None and path.stat().st_mtime < trained:
            if report is not None:
                report(path, "older than the model's weights, so it describes an earlier model")
            continue
        found.append(path)
    return found


def _card_metrics(metrics, default_split="test", protocol=TRAINING):
    """`{"test_emotion_accuracy": .., "eval_bleu_4_fast": ..}` or plain keys -> rows (split, key, value, protocol):
    the metrics of `METRICS` that are finite numbers."""
    rows = []
    for key, value in (metrics or {}).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            continue
        prefix, _, rest = key.partition("_")
        split, name = ("validation" if prefix == "eval" else prefix, rest) if prefix in ("eval", "test") else (default_split, key)
        if name in METRICS:
            rows.append((split, name, float(value), protocol))
    return rows


def metric_rows(metrics, metrics_split=None, protocol=None):
    """Rows (split, key, value, protocol) of every source in `metrics` (a source or a list of them, see
    `load_metrics`), and the dataset folders they were evaluated on."""
    sources = metrics if isinstance(metrics, (list, tuple)) else [metrics]
    rows, evaluated_on = [], []
    for source in sources:
        if source is None:
            continue
        loaded = load_metrics(source, protocol)
        rows += _card_metrics(loaded["values"], metrics_split or loaded["split"] or "test", loaded["protocol"])
        if loaded["dataset_path"]:
            how = f" ({loaded['decoding']})" if loaded["decoding"] else ""
            evaluated_on.append(f"`{loaded['dataset_path']}`{how}")
    return rows, evaluated_on


# --------------------------------------------------------------------------------------------- model card
def vad_description(folder, config, vad_lexicon=None):
    """Where the VAD table came from, for the card: from `vad_lexicon` (a path or name) or the weights themselves."""
    if not (config.get("use_vad_embedding", True) or config.get("use_vad_loss", True)):
        return "This model was trained without VAD features (`use_vad_embedding` and `use_vad_loss` are off)."
    if vad_lexicon is not None:
        name = Path(str(vad_lexicon)).name
        if "nrc" in name.lower():
            return f"The VAD table inside the weights (`vad_table`, one (valence, arousal, dominance) triple per token) was filled from {NRC_VAD}"
        if "demo" in name.lower():
            return f"The VAD table inside the weights (`vad_table`) was filled from {DEMO_VAD}"
        return f"The VAD table inside the weights (`vad_table`, one (valence, arousal, dominance) triple per token) was filled from the lexicon `{name}`."
    if _vad_table_is_empty(folder):
        return "The VAD table inside the weights is all zeros: the model was trained without a VAD lexicon."
    return (
        "The VAD table inside the weights (`vad_table`, one (valence, arousal, dominance) triple per token) was filled "
        "from a VAD lexicon in the NRC-VAD format; which file was not recorded (publish with `--vad_lexicon FILE` to "
        f"name it). If it was NRC-VAD, note its terms: {NRC_VAD}"
    )


def _vad_table_is_empty(folder):
    """True when the saved `vad_table` is all zeros; False when it holds values or cannot be read."""
    try:
        from safetensors import safe_open

        index = Path(folder) / "model.safetensors.index.json"
        name = json.loads(index.read_text())["weight_map"]["vad_table"] if index.is_file() else "model.safetensors"
        with safe_open(str(Path(folder) / name), framework="pt") as weights:
            return not bool(weights.get_tensor("vad_table").abs().sum())
    except Exception:
        return False


def training_card_fields(model, hf_dataset=None, vad_lexicon=None):
    """The card fields a training run knows, for `write_model_card(folder, metrics=..., **fields)`:

    - `base_models`: the pretrained parts the model started from (the sub-configs' `name_or_path`; none when built
      from configs);
    - `dataset`: the corpus's name (`dataset_name` of its `DatasetInfo`; the demo corpus (demo_params.json); ArtEmis
      for a corpus prepared by prepare_artemis.py; else the corpus folder's name), when `hf_dataset` (a `Dataset` or
      `DatasetDict` loaded from disk) is given;
    - `vad_lexicon`: the lexicon file the VAD table was filled from (`vad_lexicon`; the demo lexicon for the demo).
    """
    names = (model.config.vision_config.name_or_path, model.config.text_config.name_or_path)
    fields = {"base_models": tuple(name for name in names if name)}
    dataset, corpus = dataset_facts(hf_dataset)
    if dataset:
        fields["dataset"] = dataset
    if vad_lexicon:
        fields["vad_lexicon"] = str(vad_lexicon)
    elif corpus is not None and (corpus / "demo_params.json").is_file():
        fields["vad_lexicon"] = str(corpus / "demo_vad_lexicon.txt")
    return fields


def dataset_facts(hf_dataset):
    """(name, corpus folder) of a corpus loaded from disk; (None, None) when they cannot be told."""
    if hf_dataset is None:
        return None, None
    split = next(iter(hf_dataset.values()), None) if hasattr(hf_dataset, "values") and not hasattr(hf_dataset, "features") else hf_dataset
    if split is None:
        return None, None
    info_name = getattr(getattr(split, "info", None), "dataset_name", None)
    files = getattr(split, "cache_files", None) or []
    corpus = Path(files[0]["filename"]).parent.parent if files else None
    if info_name:
        return info_name, corpus
    if corpus is None:
        return None, None
    params = _read_json(corpus / "demo_params.json")
    if params is not None:
        taxonomy = params.get("taxonomy") if isinstance(params, dict) else None
        return (DEMO_DATASET if taxonomy in (None, "artemis") else f"{DEMO_DATASET} ({taxonomy})"), corpus
    report = _read_json(corpus / "prepare_report.json")
    if isinstance(report, dict) and "artemis_csv" in (report.get("inputs") or {}):
        return ARTEMIS, corpus
    return corpus.name, corpus


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_card_fields(path):
    """`dataset` and `base_models` from the metadata of an existing model card (those it has)."""
    from huggingface_hub import ModelCard

    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = ModelCard(path.read_text(encoding="utf-8"), ignore_metadata_errors=True).data
    except Exception:  # no or broken metadata: nothing to carry over
        return {}
    fields = {}
    results = data.eval_results or []
    datasets = data.datasets if isinstance(data.datasets, list) else [data.datasets] if data.datasets else []
    if results and results[0].dataset_name:
        fields["dataset"] = results[0].dataset_name
    elif datasets:
        fields["dataset"] = DATASET_NAMES.get(datasets[0], datasets[0])
    base = data.base_model
    fields["base_models"] = tuple(base if isinstance(base, list) else [base] if base else [])
    return fields


def dataset_id(name):
    """The card's dataset id for a dataset name: `ArtEmis` -> `artemis`, `SEVLM demo corpus` -> `sevlm-demo-corpus`."""
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "dataset"


def is_artemis(dataset):
    return bool(dataset) and dataset_id(dataset).startswith("artemis")


def write_model_card(
    folder,
    metrics=None,
    dataset=None,
    base_models=None,
    vad_lexicon=None,
    metrics_split=None,
    repo_id=None,
    metrics_protocol=None,
):
    """Write `README.md` (a Hub model card, `huggingface_hub.ModelCard`) into a saved SEVLM folder; returns its path.

    The emotions, prompt, connector and pipeline task come from the folder's config.json; nothing about a dataset is
    assumed: ArtEmis's terms appear only for ArtEmis.

    Args:
        metrics: a source or a list of sources (see `load_metrics`): a dict (`train_sevlm` metrics with eval_/test_
            prefixes, counted as training-time numbers unless `metrics_protocol` says otherwise), or the path of a
            metrics.json written by eval_sevlm.py or of a run's train_results.json. Every number on the card says
            which protocol produced it.
        dataset: the training dataset's name (default: the folder's current card, else unrecorded).
        base_models: the pretrained vision tower and decoder the model started from; empty for none (default: the
            folder's current card, else none).
        vad_lexicon: the lexicon file (or its name) the VAD table was built from; the card states its source and
            terms. Default: the demo lexicon for the demo corpus, else a note (or that no lexicon was used, read from
            the weights).
        metrics_split: split of plain metric keys (default: the one in eval_args.json beside metrics.json, else test).
        repo_id: the Hub id used in the usage examples (default: a placeholder).
        metrics_protocol: `"eval"` or `"training"` for every source (default: told from each source).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    previous = read_card_fields(folder / "README.md")
    dataset = dataset or previous.get("dataset")
    base_models = tuple(base_models if base_models is not None else previous.get("base_models", ()))
    if vad_lexicon is None and dataset and dataset.startswith(DEMO_DATASET):
        vad_lexicon = "demo_vad_lexicon.txt"
    emotions = list(config.get("emotions") or ARTEMIS_EMOTIONS)
    task = next(iter(config.get("custom_pipelines") or {TASK: None}))
    rows, evaluated_on = metric_rows(metrics, metrics_split, metrics_protocol)
    task_name = f"Emotion ({len(emotions)} classes) and explanation"
    results = [
        EvalResult(
            task_type=HUB_TASK,
            task_name=task_name,
            dataset_type=dataset_id(dataset),
            dataset_name=dataset,
            dataset_split=split,
            metric_type=METRICS[key][1],
            metric_value=round(100 * value, 2),
            metric_name=f"{METRICS[key][0]} ({PROTOCOLS[protocol][0]}, %)",
            metric_config=protocol,
        )
        for split, key, value, protocol in rows
    ] if dataset else []  # a model-index entry needs its dataset
    art = emotions == list(ARTEMIS_EMOTIONS)
    data = ModelCardData(
        model_name=MODEL_NAME,
        library_name="transformers",
        pipeline_tag=HUB_TASK,
        tags=["custom_code", "emotion", "vision-language", "sevlm", task] + (["art"] if art else []),
        datasets=[dataset_id(dataset)] if dataset else None,
        base_model=list(base_models) or None,
        eval_results=results or None,
    )
    body = _card_body(folder, config, emotions, task, dataset, rows, evaluated_on, repo_id, vad_lexicon, art)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
    return write_text_atomic(folder / "README.md", str(card))


MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")


def markdown_text(text):
    """`text` as literal Markdown: class and dataset names are data, never markup or HTML."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def _card_body(folder, config, emotions, task, dataset, rows, evaluated_on, repo_id, vad_lexicon, art):
    where = repo_id or "REPO_ID_OR_FOLDER"
    prompt = config.get("prompt_text", " the emotion is").strip()
    connector = config.get("connector_text", " because")
    subject = "a painting" if art else "an image"
    table = "\n".join(
        f"| {split} | {METRICS[key][0]} | {100 * value:.1f} | {PROTOCOLS[protocol][0]} |" for split, key, value, protocol in rows
    )
    protocols = "".join(f"- **{PROTOCOLS[p][0]}**: {PROTOCOLS[p][1]}\n" for p in PROTOCOLS if any(row[3] == p for row in rows))
    measured = "".join(f"- **{METRICS[key][0]}** (`{key}`): {METRICS[key][2]}.\n" for key in METRICS if any(row[1] == key for row in rows))
    source = f" sevlm-eval evaluated it on {', '.join(evaluated_on)}." if evaluated_on else ""
    comparable = (
        "\nOnly eval_sevlm.py numbers on ArtEmis's official test split can be set beside the SEVLM paper's table; "
        "emotional alignment needs the same text-emotion classifier as well.\n"
        if is_artemis(dataset) and any(row[3] == EVAL for row in rows)
        else ""
    )
    if rows:
        metrics_text = (
            f"Scores in percent; the protocol column says how each was computed.{source}\n\n"
            f"| split | metric | value | protocol |\n| --- | --- | --- | --- |\n{table}\n\n"
            f"Protocols:\n\n{protocols}\nMetrics:\n\n{measured}{comparable}"
        )
    else:
        metrics_text = "Not evaluated yet: `sevlm-eval` writes the metrics, `sevlm-publish --metrics` puts them here.\n"
    example = {name: round(1 / len(emotions), 2) for name in emotions[:2]}
    shown = ", ".join(f"{json.dumps(name, ensure_ascii=False)}: {value}" for name, value in example.items())
    first, last = (json.dumps(name, ensure_ascii=False) for name in (emotions[0], emotions[-1]))
    where = json.dumps(where, ensure_ascii=False)
    if dataset:
        trained = f"Trained on {markdown_text(dataset)}." + (f" {ARTEMIS_TERMS}" if is_artemis(dataset) else "")
    else:
        trained = "The training data was not recorded with this folder (publish with `--dataset NAME` to name it)."
    return f"""
# SEVLM: small emotional vision-language model

Given {subject}, this model names the emotion it evokes, one of {len(emotions)} classes ({", ".join(map(markdown_text, emotions))}), and
explains why in one sentence. It is a SEVLM (Zhang, Zheng, Wang, Guo, "Training A Small Emotional Vision Language
Model for Visual Art Comprehension", ECCV 2024): a CLIP vision tower encodes the image; a GPT-2 decoder with
cross-attention writes `{prompt} {{emotion}}{connector} {{explanation}}`, with VAD (valence, arousal, dominance)
features fused into the explanation tokens.

The code is custom (`configuration_sevlm.py`, `modeling_sevlm.py`, `processing_sevlm.py`, `pipeline_sevlm.py`):
load it with `trust_remote_code=True` after reading it.

## Metrics

{metrics_text}
## Usage

The `{task}` pipeline:

```python
from transformers import pipeline

pipe = pipeline("{task}", model={where}, trust_remote_code=True)
pipe("image.jpg")
# {{"emotion": {first}, "score": ..., "scores": {{{shown}, ...}}, "explanation": "..."}}
pipe(["a.jpg", "b.png"], batch_size=8)     # a list of results
pipe("image.jpg", emotion={last})    # explain a given emotion
```

`emotion` is the class with the highest score, `scores` holds every class's probability, and the explanation is
generated for the emotion shown. With the model and processor:

```python
from transformers import AutoModel, AutoProcessor

model = AutoModel.from_pretrained({where}, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained({where}, trust_remote_code=True)
inputs = processor(images="image.jpg")
ids = model.generate(pixel_values=inputs["pixel_values"])
print(processor.post_process_generation(ids))           # [{{"emotion": ..., "explanation": ...}}]
print(model.emotion_scores(inputs["pixel_values"]))     # one probability per emotion, in config.emotions order
```

## VAD lexicon

{vad_description(folder, config, vad_lexicon)}

## Training data

{trained}
"""


# ------------------------------------------------------------------------------------------------- folders
def add_pipeline_to_folder(folder):
    """Make `pipeline("art-emotion", model=folder, trust_remote_code=True)` work for a saved SEVLM folder: register
    the pipeline in its config.json (`custom_pipelines`) and copy `pipeline_sevlm.py` beside the model code."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{display_path(folder)} has no config.json: save the model there first (model.save_pretrained).")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["custom_pipelines"] = pipeline_config_entry()
    write_json_atomic(config_path, config)
    source = Path(pipeline_sevlm.__file__).resolve()
    if source != (folder / source.name).resolve():
        with open(source, "rb") as stream:
            data = stream.read()
        with replace_file(folder / source.name, "wb") as stream:
            stream.write(data)
    return folder


def check_folder(folder):
    """Raise if a folder lacks a file the Hub copy needs to load with trust_remote_code."""
    folder = Path(folder)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not (folder / "model.safetensors").is_file() and not (folder / "model.safetensors.index.json").is_file():
        missing.append("model.safetensors")
    if missing:
        raise FileNotFoundError(
            f"{display_path(folder)} is not a complete SEVLM Hub folder: missing {missing}. Save the model with train_sevlm.py "
            "(or model.save_pretrained + processor.save_pretrained) and run publish_sevlm.py on it."
        )
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if TASK not in (config.get("custom_pipelines") or {}):
        raise ValueError(f"{display_path(folder)}/config.json has no {TASK!r} custom pipeline: run publish_sevlm.py (or add_pipeline_to_folder) on it.")
    if list(folder.glob("*.bin")):
        raise ValueError(f"{display_path(folder)} holds pickled *.bin files: Hub folders carry safetensors only; remove them.")


# ---------------------------------------------------------------------------------------------------- hub
def push_folder(folder, repo_id, private=False, token=None):
    """Upload a complete SEVLM folder to the Hub (checkpoints, run logs and pickles are left out)."""
    from huggingface_hub import HfApi

    if not repo_id:
        raise ValueError("Pushing needs --hub_model_id (e.g. your-name/sevlm-artemis).")
    check_folder(folder)
    files, _ = hub_files(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=bool(private), exist_ok=True)
    # Exactly the model folder's own files: a run's checkpoints, logs, notes or a stray token file never leave.
    return api.upload_folder(folder_path=str(folder), repo_id=repo_id, allow_patterns=[path.name for path in files])


# ------------------------------------------------------------------------------------------ publishing
def hub_files(folder):
    """The files of `folder` a Hub folder takes (`HUB_FILES`, sharded weights), and what is left out with why:
    anything else (run files, checkpoints, notes, best_* folders), symbolic links that lead out of the folder, and
    files whose name suggests a secret (said loudly). Returns `(paths, [(name, reason), ...])`."""
    folder = Path(folder)
    root = folder.resolve()
    taken, left_out = [], []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name not in HUB_FILES and not HUB_FILE_PATTERN.fullmatch(name):
            if CREDENTIAL_NAME.search(name):
                left_out.append((name, "its name suggests a credential; it is never copied or uploaded: keep it elsewhere"))
            elif name != OUTPUT_RECORD:
                left_out.append((name, "not a file of a model folder"))
            continue
        real = path.resolve()
        if path.is_symlink() and root not in real.parents:
            left_out.append((name, f"a symbolic link out of the folder (to {display_path(real)}); copy the file itself in"))
            continue
        if not real.is_file():
            left_out.append((name, "not a regular file"))
            continue
        taken.append(path)
    return taken, left_out


def copy_hub_files(folder, output_dir, report=None):
    """Copy the files of a model folder a Hub folder takes (see `hub_files`) into `output_dir`; `report(name,
    reason)` hears of each file left out."""
    files, left_out = hub_files(folder)
    for name, reason in left_out:
        if report is not None:
            report(name, reason)
    for path in files:
        if path.name != "README.md":  # the card is written anew
            shutil.copyfile(path, Path(output_dir) / path.name)
    return output_dir


def publish(
    folder,
    output_dir=None,
    metrics="auto",
    dataset=None,
    base_models=None,
    vad_lexicon=None,
    repo_id=None,
    overwrite=False,
    metrics_protocol=None,
    report=None,
):
    """Turn a saved SEVLM folder into a complete Hub folder and return its path.

    With `output_dir`, the model folder's own files (`hub_files`: never run files, notes, credentials or links out
    of the folder) are copied into a folder built beside it and moved in when complete; an earlier Hub folder there
    is replaced only with `overwrite`, and only its own files (a git repository's `.git/` and anything else stay).
    Without it the model folder itself is completed. `report(name, reason)` hears of every file left out. Either way the `art-emotion` pipeline is added (config.json
    `custom_pipelines` + pipeline_sevlm.py), the model card is written and the result is checked.
    `metrics`: a source or a list of sources (see `load_metrics`), None for no metrics, or "auto" (see
    `find_metrics`). `dataset` and `base_models` default to those of the folder's current card (train_sevlm.py
    writes one), see `write_model_card`.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{display_path(folder)} is not a saved SEVLM folder (no config.json); train one with train_sevlm.py.")
    if metrics == "auto":
        metrics = find_metrics(folder)
    metric_rows(metrics, protocol=metrics_protocol)  # a missing or broken metrics file stops us before any write
    previous = read_card_fields(folder / "README.md")
    card = dict(
        metrics=metrics,
        dataset=dataset or previous.get("dataset"),
        base_models=base_models if base_models is not None else previous.get("base_models"),
        vad_lexicon=vad_lexicon,
        repo_id=repo_id,
        metrics_protocol=metrics_protocol,
    )
    if output_dir is None:
        for name, reason in hub_files(folder)[1]:
            if report is not None:
                report(name, reason)
        add_pipeline_to_folder(folder)
        write_model_card(folder, **card)
        check_folder(folder)
        return folder
    output_dir = Path(output_dir)
    if folder.resolve() == output_dir.resolve():
        raise ValueError(f"--output_dir {display_path(output_dir)} is the model folder itself; leave it out to publish in place.")
    names = [path.name for path in hub_files(folder)[0]] + ["README.md"]
    with staged_output(output_dir, HUB_OWNER, names, overwrite, "--overwrite", "--output_dir") as staging:
        copy_hub_files(folder, staging, report)
        add_pipeline_to_folder(staging)
        write_model_card(staging, **card)
        check_folder(staging)
    return output_dir


VERIFY_SCRIPT = """
import json, os, sys
import numpy as np
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor, pipeline

folder, images = sys.argv[1], sys.argv[2:]
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
pixel_values = processor(images=images)["pixel_values"]
with torch.no_grad():
    ids = model.generate(pixel_values=pixel_values)
    scores = model.emotion_scores(pixel_values)
pipe = pipeline("art-emotion", model=folder, trust_remote_code=True, device="cpu")
print(json.dumps({
    "model": type(model).__name__,
    "processor": type(processor).__name__,
    "pipeline": type(pipe).__name__,
    "generated": processor.post_process_generation(ids),
    "ids": ids.tolist(),
    "scores": scores.tolist(),
    "pipeline_results": pipe(images, batch_size=len(images)),
    "environment": sorted(os.environ),
}))
"""


# Environment variables a child running a downloaded folder's code must not see: anything that looks like a
# credential, and the cloud SDKs' settings.
CREDENTIAL_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")
CREDENTIAL_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_", "SSH_")


def is_credential(name):
    """Whether an environment variable's name says it may hold a credential (HF_TOKEN, AWS_SECRET_ACCESS_KEY, ...)."""
    upper = name.upper()
    return any(word in upper for word in CREDENTIAL_WORDS) or upper.startswith(CREDENTIAL_PREFIXES)


def verify_environment(hf_home, environ=None):
    """The environment of `verify_folder`'s child: `environ` (default: this process's) without credentials and
    PYTHONPATH, offline, with an empty Hugging Face home (so no saved login token either)."""
    environ = os.environ if environ is None else environ
    env = {key: value for key, value in environ.items() if key != "PYTHONPATH" and not is_credential(key)}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(hf_home), TOKENIZERS_PARALLELISM="false")
    return env


def verify_folder(folder, images=None, timeout=600):
    """Load a Hub folder as the Hub would serve it and run it: copy it to a temporary directory, then, in a fresh
    Python process outside this repository (offline, empty HF cache, no credentials in its environment: see
    `verify_environment`), load it with `AutoModel`, `AutoProcessor` and `pipeline("art-emotion")` and predict
    `images` (file paths; default: one generated picture).

    Returns what the fresh process computed: `model`, `processor`, `pipeline` (class names), `generated`
    (post-processed `model.generate`), `ids`, `scores` (`model.emotion_scores`), `pipeline_results` and
    `environment` (the names of its environment variables).
    """
    check_folder(folder)
    with tempfile.TemporaryDirectory(prefix="sevlm-verify-") as workdir:
        workdir = Path(workdir)
        copy = workdir / "model"
        shutil.copytree(folder, copy)
        if images is None:
            images = [_test_picture(workdir / "picture.png")]
        env = verify_environment(workdir / "hf_home")
        result = subprocess.run(
            [sys.executable, "-c", VERIFY_SCRIPT, str(copy), *map(str, images)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{display_path(folder)} does not load in a fresh process:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _test_picture(path):
    """A small colourful picture (gradients), written to `path`."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:96, 0:128]
    picture = np.stack([x * 2, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(picture).save(path)
    return path
