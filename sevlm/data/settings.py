"""Defaults of data preparation, shared by the preparation commands (which read them for `--help` without loading
the data libraries) and `sevlm.data`."""

from sevlm import DEMO_CORPUS, DEMO_PRODUCT_CORPUS

SPLIT_SEED = 2021  # the hash split: sha256("<seed>:<item id>")
MAX_IMAGE_SIDE = 448  # stored images: long side at most this many pixels
JPEG_QUALITY = 90
REPORT_NAME = "prepare_report.json"
CORPUS_OWNER = "prepared corpus"  # who wrote a corpus folder's entries (sevlm.io output records)

# ArtEmis
MAX_REPETITION = 40
SPLIT_METHODS = ("official", "hash")
V2_TRAIN_SETS = ("full_combined", "combined")

# Demo corpora: taxonomy -> (default folder, default size)
DEMO_CORPORA = {"artemis": (DEMO_CORPUS, 2400), "product-reviews": (DEMO_PRODUCT_CORPUS, 2400)}
DEMO_LEXICON_NAME = "demo_vad_lexicon.txt"
DEMO_LEXICON_NOTE = "illustrative VAD values set by hand for this demo; not NRC-VAD values"
