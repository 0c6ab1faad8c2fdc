"""Complete Hub folders, model cards and Hub uploads for SEVLM models.

    sevlm-publish outputs/sevlm-demo --output_dir outputs/hub/sevlm-demo \\
        --metrics outputs/eval/sevlm-demo/test/metrics.json --verify
    sevlm-publish outputs/sevlm-artemis --hub_model_id you/sevlm-artemis --vad_lexicon NRC-VAD-Lexicon.txt
    sevlm-publish --space outputs/space --model outputs/sevlm-demo --index outputs/index-demo

A Hub folder holds the weights (safetensors), config.json (auto_map and the `art-emotion` pipeline), the code files,
the processor, the generation config and a model card (README.md, written with huggingface_hub's ModelCard: YAML
metadata with a model-index, the metrics with the protocol that produced each, usage, the training data and the VAD
lexicon's source and terms). The card's emotions, task and dataset come from the folder (config.json, the earlier
card) and the flags, never from a fixed taxonomy. `--verify` copies the folder to a temporary directory and loads
it there in a fresh Python process, offline and without credentials in its environment, the way the Hub would
serve it. `--hub_model_id` uploads it with `huggingface_hub` (log in first: `hf auth login`).

`--space DIR` writes a Hugging Face Space of the web app instead: app.py, requirements.txt, a README with the Space's
metadata, a copy of SEVLM's package, the model folder (or a Hub id the Space loads) and the collection's index, a
folder that starts on its own (`cd DIR && python app.py`) and uploads as it is (`hf upload you/space DIR --repo-type
space`).
"""

import argparse
import sys

from sevlm.io import display_path

DEMO_DATASET = "SEVLM demo corpus"
SPACE_FLAGS = "--model, --index, --title, --torch_cpu and --overwrite"


def build_parser():
    parser = argparse.ArgumentParser(prog="sevlm-publish", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="A SEVLM model folder saved by train_sevlm.py (with --space, the same as --model).")
    parser.add_argument(
        "--output_dir",
        help="Write the Hub folder here (built beside it, moved into place when complete) instead of completing the "
        "model folder in place. Only the files a model folder is made of are copied (config, weights, code, "
        "processor, tokenizer, card): never run files, notes, credentials or links out of the folder.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace the files of an earlier Hub folder at --output_dir (once the new ones are complete); anything "
        "else there (a git repository's .git/, your own files) stays, and a file this tool did not write is never "
        "replaced.",
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
    parser.add_argument(
        "--space",
        metavar="DIR",
        help="Write a Hugging Face Space of the web app into DIR (app.py, requirements.txt, README.md with the Space's "
        "metadata, SEVLM's code, the model, the --index): it starts with `python app.py` there. A fresh clone of a "
        "Hugging Face Space repository is taken over (its generated README's metadata kept). --overwrite replaces an "
        "earlier Space's files only, file by file: files added by hand stay, and a file changed since it was written "
        "is never replaced.",
    )
    parser.add_argument(
        "--model",
        help="With --space: the model, a SEVLM folder (copied into the Space) or a Hub id (loaded by the Space when it starts).",
    )
    parser.add_argument("--index", help="With --space: an emotion index (sevlm-index) of the collection, copied into the Space.")
    parser.add_argument("--title", help="With --space: the Space's title (default: SEVLM and the model's name).")
    parser.add_argument(
        "--torch_cpu",
        action="store_true",
        help="With --space: requirements.txt takes torch's CPU build (its first line: --extra-index-url "
        "https://download.pytorch.org/whl/cpu), smaller and faster to install on a Space without a GPU.",
    )
    return parser


def check_arguments(parser, args):
    """Which flags go together: --space with --model (or the folder) and --index; the rest for model folders."""
    if args.space is None:
        for flag in ("model", "index", "title"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag} goes with --space.")
        if args.torch_cpu:
            parser.error("--torch_cpu goes with --space.")
        if args.folder is None:
            parser.error("Give the model folder to publish (or --space DIR --model M for a Space).")
        return
    if args.folder and args.model and args.folder != args.model:
        parser.error("Give the Space's model once: --model M (or the folder), not both.")
    args.model = args.model or args.folder
    if not args.model:
        parser.error("--space needs --model: a SEVLM folder or a Hub id.")
    for flag in ("output_dir", "hub_model_id", "metrics", "dataset", "base_models", "vad_lexicon"):
        if getattr(args, flag) is not None:
            parser.error(f"--{flag} is for model folders; a Space (--space) takes {SPACE_FLAGS}.")
    for flag in ("verify", "private", "no_metrics"):
        if getattr(args, flag):
            parser.error(f"--{flag} is for model folders; a Space (--space) takes {SPACE_FLAGS}.")


def publish_space(args):
    from sevlm.space import write_space

    def left_out(name, reason):
        print(f"left out {display_path(name)}: {reason}", file=sys.stderr)

    def note(text):
        print(display_path(text), file=sys.stderr)

    try:
        folder = write_space(
            args.space, args.model, index=args.index, title=args.title, overwrite=args.overwrite, report=left_out, notes=note, torch_cpu=args.torch_cpu
        )
    except (OSError, ValueError, RuntimeError) as error:
        print(f"sevlm-publish: {display_path(str(error))}", file=sys.stderr)
        return 1
    print(
        f"Space folder ready: {display_path(folder)}. Try it: cd {display_path(folder)} && python app.py; upload it: "
        f"hf upload YOU/SPACE-NAME {display_path(folder)} --repo-type space"
    )
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if args.space is not None:
        return publish_space(args)
    from sevlm.hub import find_metrics, publish, push_folder, verify_folder

    def left_out(name, reason):
        print(f"left out {display_path(name)}: {reason}", file=sys.stderr)

    def stale(path, reason):
        print(f"not on the card: {display_path(path)} is {reason} (evaluate the model again)", file=sys.stderr)

    metrics = None if args.no_metrics else (args.metrics or "auto")
    if metrics == "auto":
        metrics = find_metrics(args.folder, report=stale)
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
            report=left_out,
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
