"""Build or extend an emotion index of a collection: what a SEVLM model says about every image, searchable.

    sevlm-index paintings/ "more/**/*.jpg" --model_name_or_path outputs/sevlm-demo --output_dir index/
    sevlm-index --dataset_path data/demo --split test --output_dir outputs/index-demo
    sevlm-index new-paintings/ --output_dir index/        # adds the images not indexed yet, and those that changed
    sevlm-index paintings/ --output_dir index/ --metadata works.csv --id_column file   # artist, title, date, ...
    sevlm-index --output_dir index/ --metadata works.csv  # new metadata for the works indexed, nothing predicted
    torchrun --nproc_per_node 4 -m sevlm.cli.index paintings/ --output_dir index/   # data-parallel, one GPU each

Per image the index stores its id (the file's absolute path, or the corpus's painting_id), the file with its size
and modification time, the emotion scores, the predicted emotion, the explanation, the explanation's VAD profile,
the pooled image embedding and a thumbnail, as a `datasets.Dataset` with FAISS indexes; search it with sevlm-search
or the web app (app.py). With --metadata, each work's row of a CSV file (artist, title, date, style, room, any
column) is stored too (a corpus's own columns, such as art_style, always are); works without a row, and rows that
match no work, are counted and named.

One build writes an index at a time (a second one is refused, naming the first). Finished batches are kept in
INDEX/.pending/ as they complete: an interrupted build (CTRL-C, a crash, a lost machine) continues where it stopped
when the same command runs again; a command with another model, other generation flags or another --overwrite is
told what differs. Unreadable files are reported on stderr and skipped, files that are not images are counted and
named. The exit status is 0 when the index holds at least one image, 1 otherwise (130 when interrupted).
"""

import sys
from dataclasses import dataclass, field

from sevlm import DEMO_MODEL
from sevlm.cli.arguments import HelpFormatter, parse_flags
from sevlm.generation import CompileArguments, GenerationArguments, generation_kwargs, generation_problems
from sevlm.images import IMAGE_EXTENSIONS
from sevlm.index.store import PENDING_DIR, THUMBNAIL_SIZE
from sevlm.io import display_path, listed


@dataclass
class IndexArguments(CompileArguments, GenerationArguments):
    output_dir: str | None = field(
        default=None,
        metadata={
            "aliases": ["--index"],
            "required": True,
            "help": "The index folder: created, or extended when it holds an index of the same model and generation settings.",
        },
    )
    model_name_or_path: str = field(
        default=DEMO_MODEL,
        metadata={"aliases": ["--model"], "help": "Saved SEVLM folder or Hub id, loaded with its own code (trust_remote_code)."},
    )
    dataset_path: str | None = field(
        default=None, metadata={"help": "A prepared corpus (a folder written by save_to_disk, e.g. data/demo) to index instead of image files."}
    )
    split: str = field(default="test", metadata={"help": "The corpus split to index, with --dataset_path."})
    id_column: str | None = field(
        default=None,
        metadata={
            "help": "The column naming each work: in the corpus (default painting_id) and in the --metadata CSV (default: "
            "the corpus's id column, else the first of file, file_name, filename, path, image, id, painting_id)."
        },
    )
    metadata: str | None = field(
        default=None,
        metadata={
            "help": "A CSV file (UTF-8; comma, semicolon or tab separated) with a row per work: its file or id (--id_column) "
            "and any columns (artist, title, date, style, room; not 'id', the index's own). A file is matched by its "
            "path, relative to the CSV's folder, or by its name when only one work has it (the summary counts those). "
            "Alone (no images, no --dataset_path): replaces the metadata of the works already indexed, nothing is "
            "predicted (--overwrite is refused there: nothing is rebuilt)."
        },
    )
    batch_size: int = field(default=8, metadata={"help": "Images encoded and generated together; each finished batch is kept."})
    device: str | None = field(
        default=None, metadata={"help": "cuda, cuda:1, mps or cpu. Default: the device accelerate picks (under torchrun, one GPU per process)."}
    )
    thumbnail_size: int = field(
        default=THUMBNAIL_SIZE,
        metadata={"help": "Longest side in pixels of the JPEG thumbnail stored per image for galleries and the web app; 0 stores none."},
    )
    extensions: str = field(
        default=",".join(IMAGE_EXTENSIONS),
        metadata={"help": "Comma-separated file extensions picked up in folders and globs. Files named directly are always tried."},
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Rebuild the index from scratch (e.g. with another model or other generation flags), dropping unfinished "
            "work of another build in .pending/. The old index stays usable until the new one is complete. Needs the "
            "images (or --dataset_path) to rebuild from."
        },
    )
    discard_pending: bool = field(
        default=False,
        metadata={"help": "Drop the finished batches an interrupted build left in .pending/ instead of continuing them."},
    )
    torch_num_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads of torch (default: torch's, one per core). A small model (the demo) runs faster on 1 thread on "
            "a busy machine; under torchrun give each process its share of the cores."
        },
    )
    no_progress: bool = field(default=False, metadata={"help": "Hide the progress bar."})


def build_parser():
    from transformers import HfArgumentParser

    parser = HfArgumentParser(IndexArguments, formatter_class=HelpFormatter, prog="sevlm-index", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "inputs",
        nargs="*",
        help="Image files, folders (searched recursively for image files) or glob patterns such as 'art/**/*.jpg' "
        "(quote them so that the shell does not expand them). Or use --dataset_path instead.",
    )
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args, positional = parse_flags(parser, argv)
    args.inputs = positional.inputs
    if args.inputs and args.dataset_path:
        parser.error("Give image files / folders / globs, or --dataset_path with --split, not both.")
    if not args.inputs and not args.dataset_path and not args.metadata:
        parser.error("Give image files / folders / globs, or --dataset_path with --split, not both (or --metadata alone, for an index that exists).")
    if args.metadata and not args.inputs and not args.dataset_path and args.overwrite:
        parser.error(
            "--overwrite rebuilds an index from images; --metadata alone rebuilds nothing (the CSV's values replace the "
            "index's for its columns, the other columns stay). Leave out --overwrite, or give the images to rebuild from."
        )
    if args.batch_size < 1:
        parser.error(f"--batch_size must be at least 1, got {args.batch_size}.")
    if args.torch_num_threads is not None and args.torch_num_threads < 1:
        parser.error(f"--torch_num_threads must be at least 1, got {args.torch_num_threads}.")
    if args.thumbnail_size < 0:
        parser.error(f"--thumbnail_size must be 0 (none) or more, got {args.thumbnail_size}.")
    for problem in generation_problems(args):
        parser.error(problem)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.torch_num_threads:
        import torch

        torch.set_num_threads(args.torch_num_threads)
    from tqdm.auto import tqdm

    from sevlm.index.build import attach_metadata, build_index, distributed_state

    if not args.inputs and not args.dataset_path:
        try:
            index = attach_metadata(args.output_dir, args.metadata, args.id_column)
        except (OSError, ValueError, RuntimeError) as error:
            print(f"sevlm-index: error: {display_path(str(error))}", file=sys.stderr)
            return 1
        print("\n".join(metadata_summary(index.build_report["metadata"], args)), file=sys.stderr)
        return 0

    def report(item, message):
        tqdm.write(f"skipped {display_path(item)}: {display_path(message)}", file=sys.stderr)

    try:
        index = build_index(
            args.inputs or None,
            args.output_dir,
            model=args.model_name_or_path,
            dataset_path=args.dataset_path,
            split=args.split if args.dataset_path else None,
            id_column=args.id_column or "painting_id",
            batch_size=args.batch_size,
            device=args.device,
            generate_kwargs=generation_kwargs(args),
            compile=args.compile,
            thumbnail_size=args.thumbnail_size,
            extensions=[ext.strip() for ext in args.extensions.split(",") if ext.strip()],
            overwrite=args.overwrite,
            discard_pending=args.discard_pending,
            progress=not args.no_progress,
            report=report,
            notify=lambda line: tqdm.write(display_path(line), file=sys.stderr),
            metadata=args.metadata,
            metadata_id_column=args.id_column,
        )
    except KeyboardInterrupt:
        print(
            f"Interrupted. The finished batches are kept in {display_path(args.output_dir)}/{PENDING_DIR}: run the same "
            "command again to continue.",
            file=sys.stderr,
        )
        return 130
    except (OSError, ValueError, RuntimeError) as error:
        print(f"sevlm-index: error: {display_path(str(error))}", file=sys.stderr)
        return 1
    if distributed_state(args.device).is_main_process:
        print(summary(index, args.output_dir, args), file=sys.stderr)
    return 0 if len(index) else 1


def summary(index, output_dir, args=None):
    """What the build did, for people: new, resumed, already there, changed, skipped and why."""
    built = index.build_report
    failed = built["unmatched"] + [display_path(item) for item in built["failed"]]
    resumed = f", {built['resumed']} from an interrupted run" if built["resumed"] else ""
    skipped = len(failed) + len(built["not_images"])
    lines = [
        f"Indexed {built['computed']} new image(s){resumed} ({built['already_indexed']} already in the index, "
        f"{skipped} skipped) into {display_path(output_dir)}: {len(index)} item(s), model {index.config['model']}, "
        f"FAISS {index.config['faiss_types']['emotion']} / {index.config['faiss_types']['visual']}."
    ]
    if built["changed"]:
        lines.append(f"{built['changed']} indexed file(s) changed since they were indexed: predicted again.")
    if built["removed"]:
        lines.append(f"{len(built['removed'])} changed file(s) could not be predicted again and left the index: {listed(built['removed'])}.")
    if built["not_images"]:
        lines.append(f"{len(built['not_images'])} skipped: not a supported image ({listed(built['not_images'])}).")
    if failed:
        lines.append(f"{len(failed)} input(s) could not be used: {listed(failed)}")
    if built.get("metadata"):
        lines += metadata_summary(built["metadata"], args)
    return "\n".join(lines)


def metadata_summary(report, args):
    """What became of the metadata, for people: its columns, the works without any (named, with how to give them
    some), and per source the rows that matched no work or named none."""
    if not report:
        return []
    total = report["without"]
    lines = []
    if report["columns"]:
        count = sum(source["matched"] for source in report["sources"]) if report["sources"] else None
        given = f" ({count} row(s) matched)" if count is not None else ""
        lines.append(f"Metadata: {', '.join(report['columns'])}{given}.")
    if total:
        again = f"sevlm-index --output_dir {display_path(args.output_dir)} --metadata {display_path(args.metadata or 'works.csv')}"
        again += f" --id_column {args.id_column}" if args.id_column else ""
        lines.append(f"{len(total)} work(s) have no metadata: {listed(total)}. Add rows for them to the CSV and run {again}.")
    for source in report["sources"]:
        if source["unmatched"]:
            lines.append(f"{source['source']}: {len(source['unmatched'])} row(s) match no work of the index: {listed(source['unmatched'])}.")
        if source.get("ambiguous"):
            lines.append(
                f"{source['source']}: {len(source['ambiguous'])} row(s) give a file name that several works have, and "
                f"describe none of them: {'; '.join(source['ambiguous'][:5])}{'; and more' if len(source['ambiguous']) > 5 else ''}. "
                "Write the path of the work meant."
            )
        if source.get("by_name"):
            lines.append(
                f"{source['source']}: {len(source['by_name'])} row(s) matched by file name only (the folder or extension "
                f"differs from the work's): {listed(source['by_name'])}. Write the works' paths (or their bare file "
                "names) to match them exactly."
            )
        if source["rows_without_id"]:
            lines.append(f"{source['source']}: {len(source['rows_without_id'])} row(s) name no work (lines {listed(map(str, source['rows_without_id']))}).")
    return lines


if __name__ == "__main__":
    sys.exit(main())
