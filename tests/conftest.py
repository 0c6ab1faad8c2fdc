"""Shared fixtures (the helpers they use are in helpers.py). Nothing here downloads anything: the Hub is unreachable in
tests and CI."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch
from helpers import FIXTURE_LEXICON, NRC_VAD, build_tiny, corpus_texts, overfit

from sevlm.tokenizer import train_tokenizer

# Tiny models gain nothing from a second thread, and on a busy 2-core machine OpenMP spin-waiting makes them
# ten times slower; subprocesses get OMP_NUM_THREADS=1 for the same reason.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(corpus_texts(), vocab_size=1000)


@pytest.fixture()
def tiny(tokenizer):
    """(model, processor) with a fresh copy of the tokenizer."""
    import copy

    return build_tiny(tokenizer=copy.deepcopy(tokenizer))


@pytest.fixture(params=["fixture", "nrc-vad"])
def lexicon_path(request):
    """The project's own fixture lexicon, and NRC-VAD when ../shared/data/nrc-vad is present."""
    if request.param == "nrc-vad":
        if not NRC_VAD.is_file():
            pytest.skip("NRC-VAD not present beside the repo (../shared/data/nrc-vad); the fixture lexicon ran instead")
        return NRC_VAD
    return FIXTURE_LEXICON


@pytest.fixture(scope="session")
def trained_tiny(tokenizer):
    """(model, processor, images): a tiny model that learned to describe 4 random images."""
    import copy

    model, processor = build_tiny(tokenizer=copy.deepcopy(tokenizer))
    model, images = overfit(model, processor)
    return model, processor, images


# ------------------------------------------------------------------------------------------- slow tests
def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="Also run the end-to-end tests marked slow (fresh processes, whole training runs, the installed wheel): "
        "what CI runs. Without it, `pytest` is the quick loop.",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: an end-to-end test that takes seconds to minutes (run with --run-slow)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
