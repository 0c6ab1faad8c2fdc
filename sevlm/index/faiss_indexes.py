"""The FAISS indexes of an emotion index: which kind for which size, training, search settings, reading and writing.

Exact (flat) FAISS indexes below `APPROXIMATE_FROM` items, approximate ones (IVF) from there on. Measured with
bench/bench_index.py on a 2-core CPU (docs/BENCHMARKS.md), one query: a flat scan of 100,000 768-wide image
embeddings takes about 40 ms and of 1,000,000 about 0.5 s, IVF a few ms; the emotion and VAD parts (9 and 3 numbers
per item) scan 1,000,000 items in about 10 ms, so they stay exact (no recall lost) up to 2,000,000.
"""

import math
import os
from pathlib import Path

from sevlm.io import display_path, make_temporary_file

APPROXIMATE_FROM = 100_000
APPROXIMATE_FROM_LOW_DIM = 2_000_000  # for vectors of at most LOW_DIM numbers
LOW_DIM = 32


def index_factory(count, dim):
    """The FAISS factory string for `count` vectors of `dim` numbers: exact `Flat` below `APPROXIMATE_FROM` items
    (`APPROXIMATE_FROM_LOW_DIM` for at most `LOW_DIM` numbers), else `IVF{n},Flat` with n about sqrt(count) lists
    (k-means on a sample; each query scans `nprobe` of them).

    IVF rather than HNSW: on the 2-core CPU measured, IVF over 1M emotion vectors builds in about 2 s, an HNSW graph
    in about 5 minutes, for the same ~1 ms queries.
    """
    if count < (APPROXIMATE_FROM_LOW_DIM if dim <= LOW_DIM else APPROXIMATE_FROM):
        return "Flat"
    return f"IVF{ivf_lists(count)},Flat"


def ivf_lists(count):
    return int(min(65536, max(64, 2 ** round(math.log2(math.sqrt(count))))))


def empty_faiss_index(dim, factory, sample):
    """A FAISS index (L2) of `factory` type for `dim`-wide vectors, trained when the type needs it (IVF: k-means on
    64 vectors per list, `sample(rows)` returning that many random rows' vectors)."""
    import faiss

    index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
    if not index.is_trained:
        index.train(sample(64 * faiss.extract_index_ivf(index).nlist))
    return index


def tune_faiss_index(index):
    """Search settings (not all are kept in the file): IVF scans 1/32 of its lists, at least 16."""
    import faiss

    if is_ivf(index):
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = max(16, ivf.nlist // 32)
    return index


def is_ivf(index):
    return index.__class__.__name__.startswith("IndexIVF")


def ivf_probes(index, widen):
    """Search parameters that scan `widen` times the IVF index's usual lists (nothing for other indexes)."""
    import faiss

    if widen == 1 or not is_ivf(index):
        return {}
    ivf = faiss.extract_index_ivf(index)
    return {"params": faiss.SearchParametersIVF(nprobe=min(ivf.nlist, ivf.nprobe * widen))}


def faiss_type(index):
    """The factory string of a FAISS index read back from disk."""
    import faiss

    if is_ivf(index):
        return f"IVF{faiss.extract_index_ivf(index).nlist},Flat"
    return "Flat"


def read_faiss(path, dim, count):
    """A FAISS index file of an emotion index, checked: it must read, hold `count` vectors of `dim` numbers. A damaged
    file is an error that names it (FAISS's own is a C++ backtrace)."""
    import faiss

    path = Path(path)
    shown = display_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{shown} is missing: the index is damaged. Rebuild it (sevlm-index ... --overwrite).")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
        raise ValueError(f"{shown} is damaged ({reason}). Rebuild the index (sevlm-index ... --overwrite).") from None
    if index.d != dim or index.ntotal != count:
        raise ValueError(
            f"{shown} holds {index.ntotal} vectors of {index.d} numbers; the index needs {count} of {dim}. The index is "
            "damaged: rebuild it (sevlm-index ... --overwrite)."
        )
    return tune_faiss_index(index)


def write_faiss(index, path):
    """Write a FAISS index to `path` through a temporary file beside it (straight to disk: serialising in memory
    would hold two more copies of a 3 GB index)."""
    import faiss

    path = Path(path)
    descriptor, temporary = make_temporary_file(path)
    os.close(descriptor)
    try:
        faiss.write_index(index, str(temporary))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
