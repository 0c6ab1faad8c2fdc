"""SEVLM's tool layer: everything around the model files (`configuration_sevlm.py`, `modeling_sevlm.py`,
`processing_sevlm.py`, `pipeline_sevlm.py`, which travel with every model folder).

    sevlm.io          writing files without losing anyone's (atomic writes, output records, normal file modes)
    sevlm.names       the one rule by which emotion names are equal, and lists of names on a command line
    sevlm.loading     loading a model folder and choosing its predict function, one way for every tool
    sevlm.images      finding image files
    sevlm.vad         VAD lexicons and the model's [vocab, 3] VAD table
    sevlm.tokenizer   small tokenizers trained offline
    sevlm.generation  the generation flags every command shares
    sevlm.data        corpora: schema, preparation (any CSV / JSON Lines, ArtEmis), demo corpora, training views
    sevlm.training    the Trainer, its callbacks, checkpoints and saved folders
    sevlm.training_arguments  sevlm-train's flags and the recipe's defaults (read without torch, for --help)
    sevlm.evaluation  the protocol's metrics, the EA classifier, evaluation runs and reports
    sevlm.prediction  predicting for image files (rows, cards)
    sevlm.render      PNG cards
    sevlm.index       the emotion index: building, metadata, searching, recommendations, galleries, contact sheets
    sevlm.report      a collection's emotional portrait (an offline HTML page with its plots)
    sevlm.app         the web app's page (Gradio)
    sevlm.space       a Hugging Face Space folder that runs the web app
    sevlm.hub         model cards, complete Hub folders, verification, upload
    sevlm.cli         the command lines (thin: parse, call one function, print)

Imports flow one way: commands -> `sevlm.*` -> the model files; the model files import only each other.
"""

from pathlib import Path

# The recipe and demo files (`configs/` in a checkout, shipped inside the package when installed).
CONFIGS = Path(__file__).resolve().parent / "configs"


def config_file(name):
    """The path of a file of `configs/` (e.g. "demo.args"), wherever SEVLM is installed."""
    return CONFIGS / name


# Where the demo's corpora and models go (relative to the working folder), for every command's defaults.
DEMO_MODEL = "outputs/sevlm-demo"
DEMO_CORPUS = "data/demo"
DEMO_PRODUCT_MODEL = "outputs/sevlm-demo-product"
DEMO_PRODUCT_CORPUS = "data/demo-product"
