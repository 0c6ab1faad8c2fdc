"""Complete Hub folders, model cards and Hub uploads for SEVLM models.

    python publish_sevlm.py outputs/sevlm-demo --output_dir outputs/hub/sevlm-demo \\
        --metrics outputs/eval/sevlm-demo/test/metrics.json --verify
    python publish_sevlm.py outputs/sevlm-artemis --hub_model_id you/sevlm-artemis --vad_lexicon NRC-VAD-Lexicon.txt

A Hub folder holds the weights (safetensors), config.json (auto_map and the `art-emotion` pipeline), the code files,
the processor, the generation config and a model card (README.md: YAML metadata, metrics of the last evaluation,
usage, the VAD lexicon's source and terms). `--verify` copies the folder to a temporary directory and loads it
there in a fresh Python process, offline, the way the Hub would serve it. `--hub_model_id` uploads it with
`huggingface_hub` (log in first: `hf auth login`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline_sevlm import TASK, add_pipeline_to_folder

CODE_FILES = ("configuration_sevlm.py", "modeling_sevlm.py", "processing_sevlm.py", "pipeline_sevlm.py")
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    *CODE_FILES,
    "processor_config.json",
    "tokenizer_config.json",
    "README.md",
)
# Files of a training run that do not belong in a Hub folder.
RUN_FILES = {"training_args.bin", "trainer_state.json", "train_results.json", "all_results.json", "eval_results.json"}
HUB_SUFFIXES = {".json", ".safetensors", ".py", ".txt", ".model", ".jinja", ".png"}
UPLOAD_IGNORE = ["checkpoint-*", "checkpoint-*/*", "runs/*", ".*", "*.incomplete/*", "*.bin", "*.tmp"]
BASE_MODELS = ("openai/clip-vit-base-patch16", "distilgpt2")
DEFAULT_DATASET = "ArtEmis"
DEMO_DATASET = "SEVLM demo corpus"
DATASET_NAMES = {"artemis": DEFAULT_DATASET, "sevlm-demo-corpus": DEMO_DATASET}  # card dataset ids -> names
METRIC_NAMES = {
    "emotion_accuracy": "Emotion accuracy",
    "bleu_1": "BLEU-1",
    "bleu_2": "BLEU-2",
    "bleu_3": "BLEU-3",
    "bleu_4": "BLEU-4",
    "meteor": "METEOR",
    "rouge_l": "ROUGE-L",
    "cider": "CIDEr",
    "emotional_alignment": "Emotional alignment",
    "unique": "Unique",
}
# model-index metric types (Hub metric ids where one exists).
METRIC_TYPES = {"emotion_accuracy": "accuracy", "rouge_l": "rouge", **{f"bleu_{n}": "bleu" for n in range(1, 5)}}
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


# ---------------------------------------------------------------------------------------------- metrics
def load_metrics(source):
    """Metrics for the card from a dict, a metrics.json written by eval_sevlm.py, or train_results.json.

    A metrics.json next to an eval_args.json (what eval_sevlm.py writes) takes its split and dataset from there.
    Returns `(metrics, split, dataset)`; split and dataset are None when unknown.
    """
    if source is None:
        return {}, None, None
    if isinstance(source, dict):
        return source, None, None
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"Metrics file {path} not found; run eval_sevlm.py first (it writes OUT/metrics.json).")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    split = dataset = None
    eval_args = path.with_name("eval_args.json")
    if eval_args.is_file():
        args = json.loads(eval_args.read_text(encoding="utf-8"))
        split, dataset = args.get("split"), args.get("dataset_path")
    return metrics, split, dataset


def find_metrics(folder):
    """The last evaluation of a folder: eval_sevlm.py's default output (outputs/eval/<name>/test/metrics.json, from
    the working directory), else the folder's train_results.json; None when neither exists."""
    folder = Path(folder)
    for candidate in (Path("outputs") / "eval" / folder.resolve().name / "test" / "metrics.json", folder / "train_results.json"):
        if candidate.is_file():
            return candidate
    return None


def _card_metrics(metrics, default_split="test"):
    """`{"test_emotion_accuracy": .., "eval_bleu_4": ..}` or plain keys -> rows (split, metric, value)."""
    rows = []
    for key, value in (metrics or {}).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:  # numbers, not NaN
            continue
        prefix, _, rest = key.partition("_")
        split, name = ("validation" if prefix == "eval" else prefix, rest) if prefix in ("eval", "test") else (default_split, key)
        if name in METRIC_NAMES:
            rows.append((split, name, float(value)))
    return rows


# --------------------------------------------------------------------------------------------- model card
def vad_description(folder, config, vad_lexicon=None):
    """Where the VAD table came from, for the card: from `vad_lexicon` (a path or name) or the weights themselves."""
    if not (config.get("use_vad_embedding", True) or config.get("use_vad_loss", True)):
        return "This model was trained without VAD features (`use_vad_embedding` and `use_vad_loss` are off)."
    if vad_lexicon is not None:
        name = Path(str(vad_lexicon)).name.lower()
        if "nrc" in name:
            return f"The VAD table inside the weights (`vad_table`, one (valence, arousal, dominance) triple per token) was filled from {NRC_VAD}"
        if "demo" in name:
            return f"The VAD table inside the weights (`vad_table`) was filled from {DEMO_VAD}"
        return f"The VAD table inside the weights (`vad_table`) was filled from the lexicon `{Path(str(vad_lexicon)).name}`."
    if _vad_table_is_empty(folder):
        return "The VAD table inside the weights is all zeros: the model was trained without a VAD lexicon."
    return (
        "The VAD table inside the weights (`vad_table`, one (valence, arousal, dominance) triple per token) was filled "
        f"from a VAD lexicon: for models trained on ArtEmis, {NRC_VAD}\n\nModels trained on the built-in demo corpus "
        f"use {DEMO_VAD}"
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


def training_card_fields(model, hf_dataset=None):
    """Card fields a training run knows: the pretrained parts the model started from (the sub-configs'
    `name_or_path`; none when built from configs) and, for a corpus made by `make_demo_corpus` (its folder holds
    demo_params.json), the demo dataset and its lexicon."""
    names = (model.config.vision_config.name_or_path, model.config.text_config.name_or_path)
    fields = {"base_models": tuple(name for name in names if name)}
    files = getattr(hf_dataset, "cache_files", None) or []
    if files:
        corpus = Path(files[0]["filename"]).parent.parent
        if (corpus / "demo_params.json").is_file():
            fields.update(dataset=DEMO_DATASET, vad_lexicon=str(corpus / "demo_vad_lexicon.txt"))
    return fields


def read_card_fields(path):
    """`dataset` and `base_models` from the YAML metadata of an existing model card (those it has)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return {}
    parts = path.read_text(encoding="utf-8").split("---\n")
    try:
        metadata = yaml.safe_load(parts[1]) if len(parts) > 2 and not parts[0].strip() else None
    except yaml.YAMLError:
        return {}
    fields = {}
    if isinstance(metadata, dict):
        if metadata.get("datasets"):
            fields["dataset"] = DATASET_NAMES.get(metadata["datasets"][0], metadata["datasets"][0])
        fields["base_models"] = tuple(metadata.get("base_model") or ())
    return fields


def write_model_card(
    folder, metrics=None, dataset=None, base_models=None, vad_lexicon=None, metrics_split=None, repo_id=None
):
    """Write `README.md` (a Hub model card) into a saved SEVLM folder; returns its path.

    Args:
        metrics: a dict (`train_sevlm` metrics with eval_/test_ prefixes, or eval_sevlm.py's plain keys) or the path
            of a metrics.json written by eval_sevlm.py.
        dataset: the training dataset's name (default: the folder's current card, else ArtEmis).
        base_models: the pretrained vision tower and decoder the model started from; empty for none, as in the
            demo (default: the folder's current card, else CLIP ViT-B/16 and distilGPT-2).
        vad_lexicon: the lexicon file (or its name) the VAD table was built from; the card states its source and
            terms. Default: the demo lexicon for the demo corpus, else a note covering NRC-VAD and the demo lexicon
            (or that no lexicon was used, read from the weights).
        metrics_split: split of plain metric keys (default: the one in eval_args.json beside metrics.json, else test).
        repo_id: the Hub id used in the usage examples (default: a placeholder).
    """
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    previous = read_card_fields(folder / "README.md")
    dataset = dataset or previous.get("dataset") or DEFAULT_DATASET
    base_models = tuple(base_models if base_models is not None else previous.get("base_models", BASE_MODELS))
    if vad_lexicon is None and dataset == DEMO_DATASET:
        vad_lexicon = "demo_vad_lexicon.txt"
    dataset_id = "-".join(dataset.lower().split())
    values, split, evaluated_on = load_metrics(metrics)
    rows = _card_metrics(values, metrics_split or split or "test")
    where = repo_id or "REPO_ID_OR_FOLDER"
    yaml_metrics = "".join(
        f"      - type: {METRIC_TYPES.get(name, name)}\n        name: {METRIC_NAMES[name]} ({split_name}, %)\n"
        f"        value: {100 * value:.2f}\n"
        for split_name, name, value in rows
    )
    model_index = (
        "model-index:\n- name: SEVLM\n  results:\n  - task:\n      type: image-to-text\n      name: Art emotion and explanation\n"
        f"    dataset:\n      name: {dataset}\n      type: {dataset_id}\n    metrics:\n{yaml_metrics}"
        if rows
        else ""
    )
    table = "\n".join(f"| {split_name} | {METRIC_NAMES[name]} | {100 * value:.1f} |" for split_name, name, value in rows)
    source = f" Evaluated on `{evaluated_on}`." if evaluated_on else ""
    emotions = config.get("emotions", [])
    base = "".join(f"- {name}\n" for name in base_models)
    terms = (
        " ArtEmis annotations and WikiArt images are for non-commercial research use under their own\nterms "
        "(https://www.artemisdataset.org/, https://www.wikiart.org/en/terms-of-use)."
        if "artemis" in dataset_id
        else ""
    )
    card = f"""---
library_name: transformers
pipeline_tag: image-to-text
tags:
- custom_code
- art
- emotion
- vision-language
- sevlm
- {TASK}
datasets:
- {dataset_id}
{"base_model:" + chr(10) + base if base else ""}{model_index}---

# SEVLM: small emotional vision-language model

Given a painting, SEVLM names the emotion it evokes (one of: {", ".join(emotions)}) and explains why in one
sentence (Zhang, Zheng, Wang, Guo, "Training A Small Emotional Vision Language Model for Visual Art Comprehension",
ECCV 2024). A CLIP vision tower encodes the image; a GPT-2 decoder with cross-attention writes
`the emotion is {{emotion}} because {{explanation}}`, with VAD (valence, arousal, dominance) features fused into the
explanation tokens.

The code is custom (`configuration_sevlm.py`, `modeling_sevlm.py`, `processing_sevlm.py`, `pipeline_sevlm.py`):
load it with `trust_remote_code=True` after reading it.

## Metrics

Scores in percent (the protocol of the SEVLM paper, computed by `eval_sevlm.py`).{source}

| split | metric | value |
| --- | --- | --- |
{table if table else "| - | not evaluated yet | - |"}

## Usage

The `{TASK}` pipeline:

```python
from transformers import pipeline

pipe = pipeline("{TASK}", model="{where}", trust_remote_code=True)
pipe("painting.jpg")
# {{"emotion": "awe", "score": 0.71, "scores": {{"amusement": 0.02, "awe": 0.71, ...}}, "explanation": "..."}}
pipe(["a.jpg", "b.png"], batch_size=8)     # a list of results
pipe("painting.jpg", emotion="sadness")    # explain a given emotion
```

`emotion` is the class with the highest score, `scores` holds every class's probability, and the explanation is
generated for the emotion shown. With the model and processor:

```python
from transformers import AutoModel, AutoProcessor

model = AutoModel.from_pretrained("{where}", trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained("{where}", trust_remote_code=True)
inputs = processor(images="painting.jpg")
ids = model.generate(pixel_values=inputs["pixel_values"])
print(processor.post_process_generation(ids))           # [{{"emotion": ..., "explanation": ...}}]
print(model.emotion_scores(inputs["pixel_values"]))     # one probability per emotion, in config.emotions order
```

## VAD lexicon

{vad_description(folder, config, vad_lexicon)}

## Training data

Trained on {dataset}.{terms}
"""
    path = folder / "README.md"
    path.write_text(card, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- folders
def check_folder(folder):
    """Raise if a folder lacks a file the Hub copy needs to load with trust_remote_code."""
    folder = Path(folder)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not (folder / "model.safetensors").is_file() and not (folder / "model.safetensors.index.json").is_file():
        missing.append("model.safetensors")
    if missing:
        raise FileNotFoundError(
            f"{folder} is not a complete SEVLM Hub folder: missing {missing}. Save the model with train_sevlm.py "
            "(or model.save_pretrained + processor.save_pretrained) and run publish_sevlm.py on it."
        )
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if TASK not in (config.get("custom_pipelines") or {}):
        raise ValueError(f"{folder}/config.json has no {TASK!r} custom pipeline: run publish_sevlm.py (or add_pipeline_to_folder) on it.")
    if list(folder.glob("*.bin")):
        raise ValueError(f"{folder} holds pickled *.bin files: Hub folders carry safetensors only; remove them.")


def copy_hub_files(folder, output_dir):
    """Copy the files a Hub folder needs (weights, config, code, processor, tokenizer) from a model folder;
    checkpoints, TensorBoard runs, training-state files and the old card stay behind."""
    folder, output_dir = Path(folder), Path(output_dir)
    if folder.resolve() == output_dir.resolve():
        raise ValueError(f"--output_dir {output_dir} is the model folder itself; leave it out to publish in place.")
    if output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"--output_dir {output_dir} exists and is not empty; remove it or pick another one.")
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in HUB_SUFFIXES and path.name not in RUN_FILES and not path.name.startswith("."):
            shutil.copyfile(path, output_dir / path.name)
    return output_dir


def publish(folder, output_dir=None, metrics="auto", dataset=None, base_models=None, vad_lexicon=None, repo_id=None):
    """Turn a saved SEVLM folder into a complete Hub folder and return its path.

    Copies the Hub files into `output_dir` (or works in `folder` itself when it is None), adds the `art-emotion`
    pipeline (config.json `custom_pipelines` + pipeline_sevlm.py), writes the model card and checks the result.
    `metrics`: a dict, a metrics.json path, None for no metrics, or "auto" (see `find_metrics`). `dataset` and
    `base_models` default to those of the folder's current card (train_sevlm.py writes one), see `write_model_card`.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a saved SEVLM folder (no config.json); train one with train_sevlm.py.")
    if metrics == "auto":
        metrics = find_metrics(folder)
    previous = read_card_fields(folder / "README.md")
    dataset = dataset or previous.get("dataset")
    base_models = base_models if base_models is not None else previous.get("base_models")
    target = copy_hub_files(folder, output_dir) if output_dir else folder
    add_pipeline_to_folder(target)
    write_model_card(target, metrics=metrics, dataset=dataset, base_models=base_models, vad_lexicon=vad_lexicon, repo_id=repo_id)
    check_folder(target)
    return target


VERIFY_SCRIPT = """
import json, sys
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
}))
"""


def verify_folder(folder, images=None, timeout=600):
    """Load a Hub folder as the Hub would serve it and run it: copy it to a temporary directory, then, in a fresh
    Python process outside this repository (offline, empty HF cache), load it with `AutoModel`, `AutoProcessor` and
    `pipeline("art-emotion")` and predict `images` (file paths; default: one generated picture).

    Returns what the fresh process computed: `model`, `processor`, `pipeline` (class names), `generated`
    (post-processed `model.generate`), `ids`, `scores` (`model.emotion_scores`) and `pipeline_results`.
    """
    check_folder(folder)
    with tempfile.TemporaryDirectory(prefix="sevlm-verify-") as workdir:
        workdir = Path(workdir)
        copy = workdir / "model"
        shutil.copytree(folder, copy)
        if images is None:
            images = [_test_picture(workdir / "picture.png")]
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.update(HF_HUB_OFFLINE="1", HF_HOME=str(workdir / "hf_home"), TOKENIZERS_PARALLELISM="false")
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
        raise RuntimeError(f"{folder} does not load in a fresh process:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _test_picture(path):
    """A small colourful picture (gradients), written to `path`."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:96, 0:128]
    picture = np.stack([x * 2, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(picture).save(path)
    return path


# ---------------------------------------------------------------------------------------------------- hub
def push_folder(folder, repo_id, private=False, token=None):
    """Upload a complete SEVLM folder to the Hub (checkpoints, run logs and pickles are left out)."""
    from huggingface_hub import HfApi

    if not repo_id:
        raise ValueError("Pushing needs --hub_model_id (e.g. your-name/sevlm-artemis).")
    check_folder(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=bool(private), exist_ok=True)
    return api.upload_folder(folder_path=str(folder), repo_id=repo_id, ignore_patterns=UPLOAD_IGNORE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="A SEVLM model folder saved by train_sevlm.py.")
    parser.add_argument(
        "--output_dir",
        help="Write the Hub folder here (a new or empty folder) instead of completing the model folder in place.",
    )
    parser.add_argument(
        "--metrics",
        help="metrics.json from eval_sevlm.py for the card. Default: outputs/eval/<folder name>/test/metrics.json when "
        "it exists, else the folder's train_results.json.",
    )
    parser.add_argument("--no_metrics", action="store_true", help="Write the card without metrics.")
    parser.add_argument(
        "--dataset",
        help=f"Training dataset name for the card (default: the folder's current card, else {DEFAULT_DATASET}; "
        f"'{DEMO_DATASET}' for the demo).",
    )
    parser.add_argument(
        "--base_models",
        nargs="*",
        metavar="NAME",
        help="The pretrained parts the model started from, for the card; give the flag alone for none (default: the "
        f"folder's current card, else {' '.join(BASE_MODELS)}).",
    )
    parser.add_argument(
        "--vad_lexicon",
        help="The lexicon file the VAD table was built from (e.g. NRC-VAD-Lexicon.txt or demo_vad_lexicon.txt): the "
        "card names its source and terms. Default: a note covering NRC-VAD and the demo lexicon.",
    )
    parser.add_argument("--verify", action="store_true", help="Load the finished folder in a fresh offline process and predict once.")
    parser.add_argument("--hub_model_id", help="Hub repository to upload to, e.g. you/sevlm-artemis (omit to only write the folder).")
    parser.add_argument("--private", action="store_true", help="Create the Hub repository as private.")
    args = parser.parse_args(argv)

    metrics = None if args.no_metrics else (args.metrics or "auto")
    if metrics == "auto" and (found := find_metrics(args.folder)) is not None:
        print(f"Metrics for the card: {found}")
    folder = publish(
        args.folder,
        output_dir=args.output_dir,
        metrics=metrics,
        dataset=args.dataset,
        base_models=None if args.base_models is None else tuple(args.base_models),
        vad_lexicon=args.vad_lexicon,
        repo_id=args.hub_model_id,
    )
    print(f"Hub folder ready: {folder} (model card: {folder / 'README.md'})")
    if args.verify:
        outputs = verify_folder(folder)
        print(f"Verified in a fresh process: {outputs['pipeline_results'][0]}")
    if args.hub_model_id:
        print(push_folder(folder, args.hub_model_id, private=args.private))
    return 0


if __name__ == "__main__":
    sys.exit(main())
