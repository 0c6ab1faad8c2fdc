"""Model cards and Hub publishing for SEVLM folders.

    python publish_sevlm.py outputs/sevlm-demo --hub_model_id you/sevlm-artemis [--metrics outputs/eval/metrics.json]

writes the model card (YAML metadata, metrics, usage, VAD lexicon terms) into the folder, checks that the folder
is complete, and uploads it with `huggingface_hub`.
"""

import argparse
import json
from pathlib import Path

REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "configuration_sevlm.py",
    "modeling_sevlm.py",
    "processing_sevlm.py",
    "processor_config.json",
    "tokenizer_config.json",
)
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


def _card_metrics(metrics):
    """`{"test_emotion_accuracy": .., "eval_bleu_4": ..}` or plain keys -> rows (split, metric, value)."""
    rows = []
    for key, value in (metrics or {}).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        split, _, name = key.partition("_") if key.split("_", 1)[0] in ("eval", "test") else ("test", "", key)
        if name in METRIC_NAMES:
            rows.append((split, name, float(value)))
    return rows


def write_model_card(folder, metrics=None, dataset="ArtEmis", base_models=("openai/clip-vit-base-patch16", "distilgpt2")):
    """Write `README.md` (a Hub model card) into a saved SEVLM folder; returns its path."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    rows = _card_metrics(metrics)
    yaml_metrics = "".join(
        f"      - type: {name}\n        name: {METRIC_NAMES[name]} ({split})\n        value: {value:.4f}\n" for split, name, value in rows
    )
    model_index = (
        "model-index:\n- name: SEVLM\n  results:\n  - task:\n      type: image-to-text\n      name: Art emotion and explanation\n"
        f"    dataset:\n      name: {dataset}\n      type: {dataset.lower()}\n    metrics:\n{yaml_metrics}"
        if rows
        else ""
    )
    table = "\n".join(f"| {split} | {METRIC_NAMES[name]} | {value:.4f} |" for split, name, value in rows)
    emotions = ", ".join(config.get("emotions", []))
    card = f"""---
library_name: transformers
pipeline_tag: image-to-text
tags:
- custom_code
- art
- emotion
- vision-language
- sevlm
datasets:
- {dataset.lower()}
base_model:
{chr(10).join(f"- {name}" for name in base_models)}
{model_index}---

# SEVLM: small emotional vision-language model

Given a painting, SEVLM names the emotion it evokes ({emotions}) and explains why in one sentence
(Zhang, Zheng, Wang, Guo, "Training A Small Emotional Vision Language Model for Visual Art Comprehension", ECCV 2024).
A CLIP vision tower encodes the image; a GPT-2 decoder with cross-attention writes
`the emotion is {{emotion}} because {{explanation}}`, with VAD (valence, arousal, dominance) features fused into the
explanation tokens.

## Metrics

| split | metric | value |
| --- | --- | --- |
{table if table else "| - | not evaluated yet | - |"}

## Usage

```python
from transformers import AutoModel, AutoProcessor, pipeline

model = AutoModel.from_pretrained("REPO_OR_FOLDER", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("REPO_OR_FOLDER", trust_remote_code=True)
inputs = processor(images="painting.jpg")
ids = model.generate(pixel_values=inputs["pixel_values"])
print(processor.post_process_generation(ids))           # [{{"emotion": ..., "explanation": ...}}]
print(model.emotion_scores(inputs["pixel_values"]))     # one probability per emotion

pipe = pipeline("art-emotion", model="REPO_OR_FOLDER", trust_remote_code=True)
print(pipe("painting.jpg"))
```

## VAD lexicon

The VAD table inside the weights (`vad_table`, one (valence, arousal, dominance) triple per token) was filled from
the NRC Valence, Arousal, and Dominance Lexicon (Saif M. Mohammad, ACL 2018,
https://saifmohammad.com/WebPages/nrc-vad.html), free for research use; see its terms before commercial use.
Models trained on the built-in demo corpus use an illustrative lexicon written for it instead.
"""
    path = folder / "README.md"
    path.write_text(card)
    return path


def check_folder(folder):
    """Raise if a folder lacks a file the Hub copy needs to load with trust_remote_code."""
    missing = [name for name in REQUIRED_FILES if not (Path(folder) / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a complete SEVLM folder: missing {missing}. Save it with train_sevlm.py.")


def push_folder(folder, repo_id, private=False, token=None):
    """Upload a complete SEVLM folder to the Hub (checkpoints and run logs are left out)."""
    from huggingface_hub import HfApi

    if not repo_id:
        raise ValueError("Pushing needs --hub_model_id (e.g. your-name/sevlm-artemis).")
    check_folder(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=bool(private), exist_ok=True)
    return api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, ignore_patterns=["checkpoint-*", "runs/*", ".*", "*.incomplete/*"]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="A SEVLM model folder saved by train_sevlm.py.")
    parser.add_argument("--metrics", help="metrics.json from eval_sevlm.py to put in the model card.")
    parser.add_argument("--dataset", default="ArtEmis", help="Dataset name for the card's metadata.")
    parser.add_argument("--hub_model_id", help="Hub repository to upload to (omit to only write the card).")
    parser.add_argument("--private", action="store_true", help="Create the Hub repository as private.")
    args = parser.parse_args(argv)
    metrics = json.loads(Path(args.metrics).read_text()) if args.metrics else None
    check_folder(args.folder)
    print(f"Model card written to {write_model_card(args.folder, metrics=metrics, dataset=args.dataset)}")
    if args.hub_model_id:
        print(push_folder(args.folder, args.hub_model_id, private=args.private))


if __name__ == "__main__":
    main()
