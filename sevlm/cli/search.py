"""Search an emotion index (built by sevlm-index) by an image, an indexed item, an emotion mix or words.

    sevlm-search --index outputs/index-demo --emotions "awe=0.6,sadness=0.4"
    sevlm-search --index outputs/index-demo --id 1234 --top_k 5 --gallery gallery/
    sevlm-search --index outputs/index-demo --image query.jpg --visual_weight 0.3 --output hits.csv
    sevlm-search --index outputs/index-demo --text "calm, melancholic" --emotion sadness,fear --min_score 0.3

Hits are ranked by similarity of emotion distributions (Hellinger distance), optionally blended with the image
embeddings (--visual_weight) and the explanations' VAD profiles (--vad_weight):

    distance = (1 - visual_weight - vad_weight) * emotion + visual_weight * visual + vad_weight * vad

each part in [0, 1] (emotion: Hellinger; visual: (1 - cosine) / 2; vad: Euclidean / (2 sqrt 3)); a hit's score
is 1 - distance. A query without some part (an emotion mix has no image) gives it no weight and the others are
scaled to sum 1. --text takes the VAD profile of its words and the emotions it names (--vad_weight 0.5 by default).

Each hit: {"rank", "id", "file", "score", "emotion", "scores", "explanation", "distances"}, one JSON object per
line on stdout unless --output names a .jsonl or .csv file.
"""

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from sevlm.index.store import EmotionIndex, hit_row, write_gallery
from sevlm.io import display_path, replace_file


def build_parser():
    parser = argparse.ArgumentParser(prog="sevlm-search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True, help="The index folder written by sevlm-index.")
    query = parser.add_argument_group("query (exactly one)")
    query.add_argument("--image", metavar="FILE", help="An image file, run through the index's model (scores, embedding, explanation).")
    query.add_argument("--id", help="An indexed item's id (its file path or painting_id): works that feel like it (itself left out).")
    query.add_argument("--emotions", metavar="MIX", help="An emotion mix such as 'awe=0.6,sadness=0.4' ('awe,sadness': equal parts).")
    query.add_argument("--text", metavar="WORDS", help="Words such as 'calm, melancholic': their VAD profile and any emotion names among them.")
    parser.add_argument("--top_k", type=int, default=10, help="Number of hits (default: 10).")
    filters = parser.add_argument_group("filters")
    filters.add_argument("--emotion", help="Keep hits whose predicted emotion is one of these (comma-separated names).")
    filters.add_argument(
        "--min_score",
        help="Keep hits whose predicted emotion has at least this probability (e.g. 0.3), or whose named emotions have at "
        "least these probabilities (e.g. 'awe=0.3,fear=0.1').",
    )
    weights = parser.add_argument_group("similarity")
    weights.add_argument(
        "--visual_weight",
        type=float,
        default=0.0,
        help="Weight of image-embedding similarity for --image / --id queries, in [0, 1] (default: 0: emotions only).",
    )
    weights.add_argument(
        "--vad_weight",
        type=float,
        help="Weight of the explanations' VAD profiles, in [0, 1] (default: 0.5 for --text, 0 otherwise).",
    )
    parser.add_argument("--output", help="A .jsonl or .csv file for the hits (default: JSON Lines on stdout).")
    parser.add_argument(
        "--gallery",
        metavar="DIR",
        help="Also write DIR/index.html (self-contained: thumbnails, emotion bars, explanations) and DIR/contact_sheet.png.",
    )
    parser.add_argument("--model_name_or_path", "--model", help="For --image: the model to encode it with (default: the index's own; its emotions must match).")
    parser.add_argument("--device", help="For --image: cuda, mps or cpu (default: the device accelerate picks).")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    given = [flag for flag in ("image", "id", "emotions", "text") if getattr(args, flag) is not None]
    if len(given) != 1:
        parser.error(f"Give exactly one query: --image, --id, --emotions or --text (got {', '.join('--' + flag for flag in given) or 'none'}).")
    if args.top_k < 1:
        parser.error(f"--top_k must be at least 1, got {args.top_k}.")
    if args.output and output_format(args.output) is None:
        parser.error(f"--output {display_path(args.output)}: use a file name ending in .jsonl or .csv.")
    for flag in ("visual_weight", "vad_weight"):
        value = getattr(args, flag)
        if value is not None and not 0.0 <= value <= 1.0:
            parser.error(f"--{flag} must be between 0 and 1, got {value}.")
    if args.model_name_or_path and args.image is None:
        parser.error("--model_name_or_path only applies to --image queries.")
    return args


def output_format(path):
    return {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(Path(path).suffix.lower())


def write_hits(hits, stream, fmt, emotions):
    if fmt == "jsonl":
        for hit in hits:
            stream.write(json.dumps(hit, ensure_ascii=False) + "\n")
        return
    rows = [hit_row(hit, emotions) for hit in hits]
    columns = list(rows[0]) if rows else list(hit_row({"rank": 0, "id": "", "file": "", "score": 0, "emotion": "", "explanation": "", "scores": dict.fromkeys(emotions, 0), "distances": {}}, emotions))
    writer = csv.DictWriter(stream, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)


def main(argv=None):
    args = parse_args(argv)
    try:
        index = EmotionIndex.load(args.index)
        model = processor = None
        if args.model_name_or_path:
            from sevlm.index.store import load_model

            model, processor = load_model(args.model_name_or_path, args.device)
        elif args.image is not None:
            index.model(device=args.device)
        query_image = None
        if args.image is not None:
            from processing_sevlm import load_image

            query_image = load_image(args.image)
        hits = index.search(
            image=query_image,
            id=args.id,
            emotions=args.emotions,
            text=args.text,
            top_k=args.top_k,
            emotion=args.emotion,
            min_score=args.min_score,
            visual_weight=args.visual_weight,
            vad_weight=args.vad_weight,
            model=model,
            processor=processor,
        )
    except (OSError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"sevlm-search: {display_path(message)}", file=sys.stderr)
        return 1

    if args.output:
        fmt = output_format(args.output)
        with replace_file(args.output, newline="" if fmt == "csv" else None) as stream:
            write_hits(hits, stream, fmt, index.emotions)
    else:
        buffer = io.StringIO()
        write_hits(hits, buffer, "jsonl", index.emotions)
        sys.stdout.write(buffer.getvalue())
        sys.stdout.flush()
    if args.gallery:
        query = args.image or args.id or args.emotions or args.text
        page = write_gallery(index, hits, args.gallery, title=f"SEVLM search: {query}", query_image=query_image)
        print(f"Gallery: {display_path(page)}", file=sys.stderr)
    where = f" to {display_path(args.output)}" if args.output else ""
    print(f"{len(hits)} hit(s) of {len(index)} item(s){where}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
