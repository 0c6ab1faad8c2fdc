"""Shared helpers for the SEVLM benchmarks.

The real-size architecture is built from configs with random weights (nothing is downloaded): CLIP ViT-B/16
(224 px) + distilGPT-2 with cross-attention, 50,257 + 3 token embeddings, the VAD modules and the contrastive
head. Run the scripts from the repository root with `python3 bench/<script>.py`; the project need not be installed.
"""

import gzip
import os
import pathlib
import platform
import statistics
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import CLIPVisionConfig, GPT2Config, GPT2LMHeadModel  # noqa: E402

transformers.logging.set_verbosity_error()

from configuration_sevlm import ARTEMIS_EMOTIONS  # noqa: E402
from modeling_sevlm import SevlmForConditionalGeneration  # noqa: E402
from processing_sevlm import SevlmProcessor  # noqa: E402
from sevlm.tokenizer import train_tokenizer  # noqa: E402
from sevlm.vad import build_vad_table, load_vad_lexicon  # noqa: E402

NRC_VAD = REPO_ROOT.parent / "shared" / "data" / "nrc-vad" / "NRC-VAD-Lexicon.txt"
FIXTURE_LEXICON = REPO_ROOT / "tests" / "fixtures" / "vad_fixture.txt"

# CLIP ViT-B/16 (openai/clip-vit-base-patch16) vision tower.
VIT_B16 = dict(
    image_size=224,
    patch_size=16,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_channels=3,
    projection_dim=512,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
)
# distilgpt2 (vocabulary 50,257; SEVLM adds <pad>, <emotion>, <explanation>).
DISTILGPT2 = dict(
    n_layer=6,
    n_embd=768,
    n_head=12,
    n_positions=1024,
    n_ctx=1024,
    vocab_size=50257,
    activation_function="gelu_new",
    layer_norm_epsilon=1e-5,
)
REAL_VOCAB = 50257 + 3
# Tiny sizes for `--quick` smoke runs of the scripts themselves (not measurements).
TINY_VISION = dict(image_size=32, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
TINY_TEXT = dict(n_layer=2, n_embd=64, n_head=2, n_positions=64, vocab_size=2000)

# Explanation-like sentences, repeated in the tokenizer corpus so that common words become single tokens (as in
# GPT-2's vocabulary: " because", " the", " emotion", ... are single tokens there).
SENTENCES = [
    "the colors are dark and gloomy",
    "the mountain is huge and majestic",
    "it is strange and I do not know why",
    "the sky is calm and peaceful",
    "the faces are angry and full of rage",
    "the woman looks lonely and sad",
    "the storm is frightening",
    "the bright colors make me happy",
    "the painting is ugly and disgusting",
    "the dancers run with joy and excitement",
    "the man looks like he is about to fall",
    "the flowers remind me of spring and my garden",
    "the use of red makes me feel uneasy",
    "the lines are messy and chaotic",
    "the people seem to be having fun together",
]


def lexicon_source():
    """NRC-VAD from ../shared/data/nrc-vad when present (never copied into the repo), else the fixture lexicon."""
    override = os.environ.get("SEVLM_VAD_LEXICON")
    if override:
        return pathlib.Path(override)
    return NRC_VAD if NRC_VAD.is_file() else FIXTURE_LEXICON


def _word_list(lexicon):
    """English word forms available offline: lemminflect's lemma table, plus the VAD lexicon's words."""
    words = set(lexicon)
    try:
        import lemminflect

        resources = pathlib.Path(lemminflect.__file__).parent / "resources" / "lemma_lu.csv.gz"
        with gzip.open(resources, "rt", encoding="utf-8") as handle:
            for line in handle:
                word, _, lemma = line.rstrip("\n").split(",", 2)
                words.add(word)
                words.update(lemma.split("/"))
    except (ImportError, OSError, ValueError):
        pass
    return sorted(w for w in words if w and " " not in w)


def build_tokenizer(lexicon, vocab_size=REAL_VOCAB):
    """A byte-level BPE tokenizer of GPT-2's size (50,257 + 3 specials), trained offline on English word forms.

    GPT-2's own tokenizer cannot be downloaded here. Training on ~72k word forms (lemminflect's table + the VAD
    lexicon) plus explanation-like sentences gives a real-size vocabulary whose tokens are mostly whole words, so
    the embedding/LM-head sizes are the real ones, the VAD table has realistic coverage, and the reference loop's
    per-token lexicon look-ups see real words.
    """
    words = _word_list(lexicon)
    texts = [" " + " ".join(words[i : i + 64]) for i in range(0, len(words), 64)]
    prompts = [f" the emotion is {e} because {s}" for e in ARTEMIS_EMOTIONS for s in SENTENCES]
    texts += prompts * 50
    return train_tokenizer(texts, vocab_size=vocab_size, min_frequency=1)


def build_model(quick=False, seed=0, **config_kwargs):
    """(model, processor, lexicon dict, lexicon path, build seconds): the real-size SEVLM with random weights.

    `quick=True` builds tiny sizes, to check the scripts themselves.
    """
    start = time.perf_counter()
    source = lexicon_source()
    lexicon = load_vad_lexicon(source)
    vision = CLIPVisionConfig(**(TINY_VISION if quick else VIT_B16))
    text = GPT2Config(**(TINY_TEXT if quick else DISTILGPT2))
    tokenizer = build_tokenizer(lexicon, vocab_size=text.vocab_size if quick else REAL_VOCAB)
    processor = SevlmProcessor.from_vision_text(vision, tokenizer)
    torch.manual_seed(seed)
    vad_table = build_vad_table(processor.tokenizer, lexicon)
    model = SevlmForConditionalGeneration.from_vision_text(vision, text, processor, vad_table=vad_table, **config_kwargs)
    if not quick and model.get_input_embeddings().num_embeddings != REAL_VOCAB:
        model.resize_token_embeddings(REAL_VOCAB, mean_resizing=False)
    model.eval()
    return model, processor, lexicon, source, time.perf_counter() - start


def plain_captioner(model):
    """GPT-2 with cross-attention and no SEVLM module, with the SEVLM decoder's weights (the floor)."""
    config = GPT2Config.from_dict(model.language_model.config.to_dict())
    config.add_cross_attention = True
    plain = GPT2LMHeadModel(config)
    plain.load_state_dict(model.language_model.state_dict())
    plain.generation_config = model.generation_config
    return plain.to(device=model.device, dtype=model.dtype).eval()


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def parameter_summary(model):
    parts = {
        "vision tower": count_parameters(model.vision_model),
        "decoder (GPT-2 + cross-attn)": count_parameters(model.language_model),
        "VAD encoder+fusion+head": count_parameters(model.vad_encoder)
        + count_parameters(model.vad_fusion)
        + count_parameters(model.vad_head),
        "contrastive head": count_parameters(model.contrastive_head),
    }
    parts["total"] = count_parameters(model)
    return parts


# ------------------------------------------------------------------------------------------------ machine
def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_lines(device):
    device = torch.device(device)
    lines = [
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}",
        f"CPU: {cpu_name()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}, "
        f"clock: {CLOCK['kind']}{' (process CPU time)' if CLOCK['kind'] == 'cpu' else ''}",
    ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.append(f"GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB, CUDA {torch.version.cuda}")
    return lines


# ----------------------------------------------------------------------------------------------- timing
def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_sample():
    """(wall s, machine busy CPU-seconds, this process's CPU-seconds); None parts where /proc is unavailable."""
    busy = None
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(x) for x in handle.readline().split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError):
        pass
    own = os.times()
    return time.perf_counter(), busy, own.user + own.system


# Share of the machine's CPUs busy with OTHER processes during each timed run (the machine may be shared).
FOREIGN_LOAD = []


def foreign_share(before, after):
    wall, busy, own = (b - a if a is not None and b is not None else None for a, b in zip(before, after))
    if busy is None or not wall or wall < 0.5:  # /proc/stat ticks are 10 ms: too coarse for shorter runs
        return None
    return min(1.0, max(0.0, (busy - own) / (wall * (os.cpu_count() or 1))))


# "wall": elapsed time (the default). "cpu": this process's CPU time, which other processes on a shared machine
# barely change when torch runs ONE thread (`--threads 1`); with several threads it also counts spin-waiting.
CLOCK = {"kind": "wall"}


def set_clock(kind, threads=None):
    if threads:
        torch.set_num_threads(threads)
    if kind not in ("wall", "cpu"):
        raise ValueError(f"clock must be wall or cpu, got {kind!r}")
    CLOCK["kind"] = kind


def timed(fn, device):
    """(seconds, result): wall-clock or process CPU seconds (see `set_clock`) of `fn()`."""
    synchronize(device)
    before = _cpu_sample()
    result = fn()
    synchronize(device)
    after = _cpu_sample()
    share = foreign_share(before, after)
    if share is not None:
        FOREIGN_LOAD.append(share)
    index = 2 if CLOCK["kind"] == "cpu" else 0
    return after[index] - before[index], result


def foreign_load_line():
    if not FOREIGN_LOAD:
        return "foreign CPU load during timed runs: unknown"
    worst = max(FOREIGN_LOAD)
    return (f"foreign CPU load during timed runs (share of all cores busy with other processes): median "
            f"{100 * median(FOREIGN_LOAD):.0f}%, max {100 * worst:.0f}% over {len(FOREIGN_LOAD)} runs"
            + ("  <-- the machine was shared: timings are inflated and noisy" if median(FOREIGN_LOAD) > 0.1 else ""))


def machine_busy_share(seconds=2.0):
    """Share of all cores busy with other processes over the next `seconds` (we sleep meanwhile)."""
    before = _cpu_sample()
    time.sleep(seconds)
    return foreign_share(before, _cpu_sample())


def median(values):
    return statistics.median(values) if values else float("nan")


def format_table(header, rows):
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    out = []
    for n, row in enumerate(cells):
        out.append("| " + " | ".join(c.rjust(w) if n and _numeric(c) else c.ljust(w) for c, w in zip(row, widths)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def _numeric(text):
    try:
        float(text.replace(",", "").rstrip("x%"))
        return True
    except ValueError:
        return text == "-"


def wait_for_quiet(max_seconds, threshold=0.1, window=5.0):
    """Wait (up to `max_seconds`) until other processes use under `threshold` of the CPUs for a `window`."""
    start = time.perf_counter()
    share = machine_busy_share(window)
    while share is not None and share > threshold and time.perf_counter() - start < max_seconds:
        share = machine_busy_share(window)
    waited = time.perf_counter() - start
    print(f"foreign CPU load before timing: {100 * (share or 0):.0f}% (waited {waited:.0f} s, limit {max_seconds:.0f} s)", flush=True)
