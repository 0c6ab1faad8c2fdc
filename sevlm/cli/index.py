"""Build or extend an emotion index of a collection: what a SEVLM model says about every image, searchable.

    sevlm-index paintings/ "more/**/*.jpg" --model_name_or_path outputs/sevlm-demo --output_dir index/
    sevlm-index --dataset_path data/demo --split test --output_dir outputs/index-demo
    sevlm-index new-paintings/ --output_dir index/        # adds only the images not indexed yet
    torchrun --nproc_per_node 4 index_sevlm.py paintings/ --output_dir index/   # data-parallel, one GPU each

Per image the index stores its id (the file's absolute path, or the corpus's painting_id), the file, the emotion
scores, the predicted emotion, the explanation, the explanation's VAD profile, the pooled image embedding and a
thumbnail, as a `datasets.Dataset` with FAISS indexes; search it with sevlm-search or the web app (app.py).

Finished batches are kept in INDEX/.pending/ as they complete: an interrupted build (CTRL-C, a crash, a lost
machine) continues where it stopped when the same command runs again. Unreadable files are reported on stderr and
skipped. The exit status is 0 when the index holds at least one image, 1 otherwise (130 when interrupted).
"""

import argparse
import sys

from sevlm.generation import generation_kwargs, generation_problems
from sevlm.images import IMAGE_EXTENSIONS
from sevlm.index.store import DEMO_MODEL, PENDING_DIR, THUMBNAIL_SIZE, EmotionIndex
from sevlm.io import display_path


def build_parser():
    parser = argparse.ArgumentParser(prog="sevlm-index", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "inputs",
        nargs="*",
        help="Image files, folders (searched recursively for image files) or glob patterns such as 'art/**/*.jpg' "
        "(quote them so that the shell does not expand them). Or use --dataset_path instead.",
    )
    parser.add_argument("--output_dir", "--index", required=True, help="The index folder (created, or extended when it holds an index of the same model).")
    parser.add_argument(
        "--model_name_or_path",
        "--model",
        default=DEMO_MODEL,
        help=f"Saved SEVLM folder or Hub id, loaded with trust_remote_code (default: {DEMO_MODEL}).",
    )
    parser.add_argument("--dataset_path", help="A prepared corpus (a folder written by save_to_disk, e.g. data/demo) to index instead of image files.")
    parser.add_argument("--split", default="test", help="The corpus split to index, with --dataset_path (default: test).")
    parser.add_argument("--id_column", default="painting_id", help="The corpus column holding each image's id (default: painting_id).")
    parser.add_argument("--batch_size", type=int, default=8, help="Images encoded and generated together; each finished batch is kept (default: 8).")
    parser.add_argument("--device", help="cuda, cuda:1, mps or cpu. Default: the device accelerate picks (under torchrun, one GPU per process).")
    parser.add_argument(
        "--thumbnail_size",
        type=int,
        default=THUMBNAIL_SIZE,
        help=f"Longest side in pixels of the JPEG thumbnail stored per image for galleries and the web app; 0 stores none (default: {THUMBNAIL_SIZE}).",
    )
    parser.add_argument(
        "--extensions",
        default=",".join(IMAGE_EXTENSIONS),
        help="Comma-separated file extensions picked up in folders and globs (default: %(default)s). Files named directly are always tried.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Rebuild the index from scratch (e.g. with another model), discarding unfinished work in .pending/. The old "
        "index stays usable until the new one is complete.",
    )
    generation = parser.add_argument_group("generation of the explanations (defaults: the model's generation config, greedy)")
    generation.add_argument("--max_new_tokens", type=int, help="Most tokens generated per explanation (model default: 25).")
    generation.add_argument("--num_beams", type=int, help="Beam width (1: greedy).")
    parser.add_argument(
        "--torch_num_threads",
        type=int,
        help="CPU threads of torch (default: torch's, one per core). A small model (the demo) runs faster on 1 thread on a "
        "busy machine; under torchrun give each process its share of the cores.",
    )
    parser.add_argument("--no_progress", action="store_true", help="Hide the progress bar.")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.inputs) == bool(args.dataset_path):
        parser.error("Give image files / folders / globs, or --dataset_path with --split, not both.")
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
    def report(item, message):
        from tqdm.auto import tqdm

        tqdm.write(f"skipped {display_path(item)}: {display_path(message)}", file=sys.stderr)

    try:
        index = EmotionIndex.build(
            args.inputs or None,
            args.output_dir,
            model=args.model_name_or_path,
            dataset_path=args.dataset_path,
            split=args.split if args.dataset_path else None,
            id_column=args.id_column,
            batch_size=args.batch_size,
            device=args.device,
            generate_kwargs=generation_kwargs(args),
            thumbnail_size=args.thumbnail_size,
            extensions=[ext.strip() for ext in args.extensions.split(",") if ext.strip()],
            overwrite=args.overwrite,
            progress=not args.no_progress,
            report=report,
        )
    except KeyboardInterrupt:
        print(
            f"Interrupted. The finished batches are kept in {display_path(args.output_dir)}/{PENDING_DIR}: run the same "
            "command again to continue.",
            file=sys.stderr,
        )
        return 130
    except (OSError, ValueError, RuntimeError) as error:
        print(f"sevlm-index: {display_path(str(error))}", file=sys.stderr)
        return 1
    from sevlm.index.store import distributed_state

    if distributed_state(args.device).is_main_process:
        built = index.build_report
        failed = built["unmatched"] + [display_path(item) for item in built["failed"]]
        resumed = f", {built['resumed']} from an interrupted run" if built["resumed"] else ""
        print(
            f"Indexed {built['computed']} new image(s){resumed} ({built['already_indexed']} already in the index, "
            f"{len(failed)} skipped) into {display_path(args.output_dir)}: {len(index)} item(s), model {index.config['model']}, "
            f"FAISS {index.config['faiss_types']['emotion']} / {index.config['faiss_types']['visual']}.",
            file=sys.stderr,
        )
        if failed:
            print(f"{len(failed)} input(s) could not be used: {', '.join(failed)}", file=sys.stderr)
    return 0 if len(index) else 1


if __name__ == "__main__":
    sys.exit(main())
