"""Defaults of data preparation, shared by the preparation commands (which read them for `--help` without loading
the data libraries) and `sevlm.data`."""

from sevlm import DEMO_CORPUS, DEMO_PRODUCT_CORPUS

SPLIT_SEED = 2021  # the hash split: sha256("<seed>:<item id>")
# Items of the validation and test splits: a fraction in (0, 1) or a count (>= 1). The fractions below are the hash
# split's 85/5/10, unchanged for corpora large enough to give every split items.
VALIDATION_SIZE = 0.05
TEST_SIZE = 0.10
MAX_IMAGE_SIDE = 448  # stored images: long side at most this many pixels
JPEG_QUALITY = 90
REPORT_NAME = "prepare_report.json"
# The kind of output every preparation command writes, as recorded in the output folder's `.sevlm-output.json`
# (`sevlm.io.staged_output`): one command may replace what another wrote there, nothing else.
CORPUS_OWNER = "prepared corpus"
# Above this many classes, emotion lists, reports, confusion matrices and prediction cards stop being readable.
MAX_READABLE_CLASSES = 50

# ArtEmis
MAX_REPETITION = 40
SPLIT_METHODS = ("official", "hash")
V2_TRAIN_SETS = ("full_combined", "combined")

# Demo corpora: taxonomy -> (default folder, default size)
DEMO_CORPORA = {"artemis": (DEMO_CORPUS, 2400), "product-reviews": (DEMO_PRODUCT_CORPUS, 2400)}
DEMO_LEXICON_NAME = "demo_vad_lexicon.txt"
DEMO_LEXICON_NOTE = "illustrative VAD values set by hand for this demo; not NRC-VAD values"
