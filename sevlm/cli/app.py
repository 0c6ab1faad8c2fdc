"""SEVLM web app: upload a painting, see the emotion it evokes, the score of every emotion and why.

    sevlm-app                                                 # the demo model (outputs/sevlm-demo), 127.0.0.1:7860
    sevlm-app --index outputs/index-demo                      # + works of a collection that evoke the same, a search tab
    sevlm-app --model_name_or_path your-name/sevlm-artemis --host 0.0.0.0 --port 8080

A Gradio app (`pip install ".[app]"`; `python app.py` at the root runs the same, as Hugging Face Spaces expect); the
page itself is `sevlm.app`. Nothing is fetched from the internet: system fonts, no analytics, no version check, the model from a
folder (or the local Hub cache).
"""

import os
import sys
from dataclasses import dataclass, field

from sevlm import DEMO_MODEL
from sevlm.cli.arguments import HelpFormatter, parse_flags
from sevlm.io import display_path

EXAMPLE_COUNT = 6


@dataclass
class AppArguments:
    model_name_or_path: str = field(
        default=DEMO_MODEL, metadata={"aliases": ["--model"], "help": "SEVLM folder or Hub id, loaded with its own code (trust_remote_code)."}
    )
    index: str | None = field(
        default=None,
        metadata={"help": "An emotion index (sevlm-index) of a collection: shows the works that evoke the same, and a search tab."},
    )
    examples: list[str] | None = field(
        default=None,
        metadata={
            "help": f"Example paintings: files, folders or globs. Without it: {EXAMPLE_COUNT} works of --index whose files "
            "exist, or without an index the first paintings of the demo test split, when it exists."
        },
    )
    host: str = field(
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        metadata={"help": "Address to listen on (127.0.0.1: this machine only; 0.0.0.0 for every interface)."},
    )
    port: int = field(default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), metadata={"help": "Port to listen on."})
    device: str | None = field(default=None, metadata={"help": "cuda, mps or cpu (default: the device accelerate picks)."})
    top_k: int = field(default=8, metadata={"help": "Works shown in the galleries of similar works and of search hits."})


def build_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser(AppArguments, formatter_class=HelpFormatter, prog="sevlm-app", description=__doc__.split("\n\n")[0])


def main(argv=None):
    parser = build_parser()
    (args,) = parse_flags(parser, argv)
    if args.top_k < 1:
        parser.error(f"--top_k must be at least 1, got {args.top_k}.")
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('The web app needs Gradio, the "app" extra: pip install ".[app]"', file=sys.stderr)
        return 1
    from sevlm.app import serve

    try:
        serve(args.model_name_or_path, args.index, args.examples, args.host, args.port, args.device, args.top_k)
    except (OSError, ValueError) as error:
        print(f"sevlm-app: error: {display_path(str(error))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
