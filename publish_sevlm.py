"""Complete Hub folders, model cards and Hub uploads for SEVLM models.

    python publish_sevlm.py outputs/sevlm-demo --output_dir outputs/hub/sevlm-demo \\
        --metrics outputs/eval/sevlm-demo/test/metrics.json --verify
    python publish_sevlm.py outputs/sevlm-artemis --hub_model_id you/sevlm-artemis --vad_lexicon NRC-VAD-Lexicon.txt

A Hub folder holds the weights (safetensors), config.json (auto_map and the `art-emotion` pipeline), the code files,
the processor, the generation config and a model card (README.md, written with huggingface_hub's ModelCard: YAML
metadata with a model-index, the metrics with the protocol that produced each, usage, the training data and the VAD
lexicon's source and terms). The card's emotions, task and dataset come from the folder (config.json, the earlier
card) and the flags, never from a fixed taxonomy. `--verify` copies the folder to a temporary directory and loads
it there in a fresh Python process, offline and without credentials in its environment, the way the Hub would
serve it. `--hub_model_id` uploads it with `huggingface_hub` (log in first: `hf auth login`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from model_card_sevlm import (
    DEMO_DATASET,
    HUB_SUFFIXES,
    RUN_FILES,
    check_folder,
    find_metrics,
    metric_rows,
    push_folder,
    read_card_fields,
    write_model_card,
)
from pipeline_sevlm import add_pipeline_to_folder
from utils_sevlm import display_path, staged_directory

def copy_hub_files(folder, output_dir):
    """Copy the files a Hub folder needs (weights, config, code, processor, tokenizer) from a model folder into
    `output_dir`; checkpoints, TensorBoard runs, training-state files and the old card stay behind."""
    folder, output_dir = Path(folder), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in HUB_SUFFIXES and path.name not in RUN_FILES and not path.name.startswith("."):
            shutil.copyfile(path, output_dir / path.name)
    return output_dir


def is_hub_folder(folder):
    """An earlier result of this tool (so `--overwrite` may replace it): a config.json and a model card."""
    return (Path(folder) / "config.json").is_file() and (Path(folder) / "README.md").is_file()


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
):
    """Turn a saved SEVLM folder into a complete Hub folder and return its path.

    With `output_dir`, the Hub files are copied into a folder built beside it and swapped in when complete (a
    non-empty `output_dir` is an error unless `overwrite` is set and it holds an earlier Hub folder); without it
    the model folder itself is completed. Either way the `art-emotion` pipeline is added (config.json
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
        add_pipeline_to_folder(folder)
        write_model_card(folder, **card)
        check_folder(folder)
        return folder
    output_dir = Path(output_dir)
    if folder.resolve() == output_dir.resolve():
        raise ValueError(f"--output_dir {display_path(output_dir)} is the model folder itself; leave it out to publish in place.")
    with staged_directory(output_dir, overwrite=overwrite, is_replaceable=is_hub_folder, what="--output_dir") as staging:
        copy_hub_files(folder, staging)
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


def build_parser():
    parser = argparse.ArgumentParser(prog="sevlm-publish", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="A SEVLM model folder saved by train_sevlm.py.")
    parser.add_argument(
        "--output_dir",
        help="Write the Hub folder here (built beside it, moved into place when complete) instead of completing the "
        "model folder in place. Must be new or empty unless --overwrite is given.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace an earlier Hub folder at --output_dir (only once the new one is complete; a folder that is not a "
        "Hub folder is never replaced).",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        metavar="FILE",
        help="Metrics for the card: eval_sevlm.py's metrics.json (the evaluation protocol) and/or a training run's "
        "train_results.json (training-time approximations); the card says which protocol produced each number. "
        "Default: outputs/eval/<folder name>/test/metrics.json when it exists, and the folder's train_results.json.",
    )
    parser.add_argument("--no_metrics", action="store_true", help="Write the card without metrics.")
    parser.add_argument(
        "--dataset",
        help="Training dataset name for the card, e.g. ArtEmis (its terms are then cited) or your corpus's name "
        f"(default: the folder's current card, which train_sevlm.py writes; '{DEMO_DATASET}' for the demo).",
    )
    parser.add_argument(
        "--base_models",
        nargs="*",
        metavar="NAME",
        help="The pretrained parts the model started from, e.g. openai/clip-vit-base-patch16 distilgpt2; give the flag "
        "alone for none (default: the folder's current card).",
    )
    parser.add_argument(
        "--vad_lexicon",
        help="The lexicon file the VAD table was built from (e.g. NRC-VAD-Lexicon.txt or demo_vad_lexicon.txt): the "
        "card names its source and terms. Default: a note that asks for it (and NRC-VAD's terms, should it be that).",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="Load the finished folder in a fresh process (offline, outside this repository, without HF_TOKEN or other "
        "credentials in its environment) with AutoModel, AutoProcessor and the pipeline, and predict once.",
    )
    parser.add_argument("--hub_model_id", help="Hub repository to upload to, e.g. you/sevlm-artemis (omit to only write the folder).")
    parser.add_argument("--private", action="store_true", help="Create the Hub repository as private.")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    metrics = None if args.no_metrics else (args.metrics or "auto")
    if metrics == "auto":
        metrics = find_metrics(args.folder)
        for found in metrics:
            print(f"Metrics for the card: {display_path(found)}")
    try:
        folder = publish(
            args.folder,
            output_dir=args.output_dir,
            metrics=metrics,
            dataset=args.dataset,
            base_models=None if args.base_models is None else tuple(args.base_models),
            vad_lexicon=args.vad_lexicon,
            repo_id=args.hub_model_id,
            overwrite=args.overwrite,
        )
        print(f"Hub folder ready: {display_path(folder)} (model card: {display_path(folder / 'README.md')})")
        if args.verify:
            outputs = verify_folder(folder)
            print(f"Verified in a fresh process: {outputs['pipeline_results'][0]}")
    except (OSError, ValueError, RuntimeError) as error:
        print(f"sevlm-publish: {display_path(str(error))}", file=sys.stderr)
        return 1
    if args.hub_model_id:
        print(push_folder(folder, args.hub_model_id, private=args.private))
    return 0


if __name__ == "__main__":
    sys.exit(main())
