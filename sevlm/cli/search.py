"""Search an emotion index (built by sevlm-index) by an image, an indexed item, an emotion mix or words, or get
recommendations from works one likes.

    sevlm-search --index outputs/index-demo --emotions "awe=0.6,sadness=0.4"
    sevlm-search --index outputs/index-demo --id 1234 --top_k 5 --gallery gallery/
    sevlm-search --index outputs/index-demo --image query.jpg --model_name_or_path outputs/sevlm-demo --visual_weight 0.3 --output hits.csv
    sevlm-search --index outputs/index-demo --text "calm, melancholic" --emotion sadness,fear --min_score 0.3
    sevlm-search --index my-index --emotions awe --where "artist=Claude Monet" --where "date>=1900"
    sevlm-search --index my-index --like water-lilies.jpg haystacks.jpg --dislike storm.jpg --top_k 5

Hits are ranked by how close the mix of emotions each work evokes is to the query's (the Hellinger distance between
emotion distributions), optionally blended with how the works look (image embeddings, --visual_weight) and the
feeling of the words that explain them (their VAD profiles: valence, arousal, dominance; --vad_weight):

    distance = (1 - visual_weight - vad_weight) * emotion + visual_weight * visual + vad_weight * vad

each part in [0, 1] (emotion: Hellinger; visual: (1 - cosine) / 2; vad: Euclidean / (2 sqrt 3)); a hit's score
is 1 - distance. A query without some part (an emotion mix has no image) gives it no weight and the others are
scaled to sum 1. --text takes the feeling of its words and the emotions it names (--vad_weight 0.5 by default);
words that take no part are named on stderr, with the nearest words the model knows.

--like ID [ID ...] (with --dislike ID ...) recommends works that evoke what each liked work evokes, less what the
disliked works evoke (one taste per liked work: the closest one counts; see sevlm.index.recommend), blended with how
they look with --visual_weight. Liked and disliked works are never returned, and each hit says why ("because",
"closest_liked", "shared_emotions", "avoided_emotions"). --where keeps the works whose metadata (sevlm-index
--metadata) meets every condition: COLUMN=VALUE, !=, <, <=, >, >= (numbers compare as numbers, text ignoring case),
several separated by ';' or given by repeating the flag; a search without hits says why on stderr.

An --image query runs a model on the image: the one named by --model_name_or_path, or with --trust_index_model the
one the index names (its folder's Python code then runs). Each hit: {"rank", "id", "file", "score", "emotion",
"scores", "explanation", "distances"} (and "metadata" when the index holds the works' metadata), one JSON object
per line on stdout unless --output names a .jsonl or .csv file. Nothing that exists is replaced without --overwrite
(an earlier --output file, an earlier gallery), and a file this command did not write is never replaced.
"""

import sys
from dataclasses import dataclass, field

from sevlm.cli.arguments import HelpFormatter, parse_flags
from sevlm.io import display_path


@dataclass
class SearchArguments:
    index: str = field(metadata={"help": "The index folder written by sevlm-index."})
    image: str | None = field(
        default=None,
        metadata={"help": "Query: an image file, run through the model (--model_name_or_path or --trust_index_model)."},
    )
    id: str | None = field(
        default=None, metadata={"help": "Query: an indexed item's id (its file path or painting_id): works that feel like it (itself left out)."}
    )
    emotions: str | None = field(
        default=None,
        metadata={
            "help": "Query: an emotion mix such as 'awe=0.6,sadness=0.4' ('awe,sadness': equal parts; the weight follows the "
            "last '='; quote a name holding a comma: '\"mixed, feelings\"=1')."
        },
    )
    text: str | None = field(
        default=None, metadata={"help": "Query: words such as 'calm, melancholic': their feeling and any emotion names among them."}
    )
    like: list[str] | None = field(
        default=None,
        metadata={
            "action": "append",
            "help": "Query: ids of works you like (file paths or painting_id; repeat the flag or list several): works that "
            "evoke what they evoke, each hit saying why. Liked works are never returned.",
        },
    )
    dislike: list[str] | None = field(
        default=None,
        metadata={
            "action": "append",
            "help": "With --like: ids of works you do not like: what they evoke counts against a work, and they are never returned.",
        },
    )
    dislike_weight: float | None = field(
        default=None, metadata={"help": "With --dislike: how much of the disliked works' emotions is taken out of each taste, in [0, 1] (default 0.5)."}
    )
    top_k: int = field(default=10, metadata={"help": "Number of hits to return, best first."})
    emotion: str | None = field(
        default=None, metadata={"help": "Filter: keep hits whose predicted emotion is one of these (comma-separated names)."}
    )
    min_score: str | None = field(
        default=None,
        metadata={
            "help": "Filter: keep hits whose predicted emotion has at least this probability (e.g. 0.3), or whose named "
            "emotions have at least these probabilities (e.g. 'awe=0.3,fear=0.1')."
        },
    )
    where: list[str] | None = field(
        default=None,
        metadata={
            "action": "append",
            "help": "Filter on the works' metadata (sevlm-index --metadata): COLUMN OPERATOR VALUE with =, !=, <, <=, >, >=, e.g. "
            "'artist=Claude Monet' or 'date>=1900' ('artist=', nothing after '=': the works without an artist); several conditions (all must hold): repeat the flag or separate them "
            "with ';'. Numbers compare as numbers, text ignoring case (<, > with a value that is not a number: in "
            "alphabetical order, said in a note). Quote a value holding ';' or starting with = ! < > or a quote, a quote "
            "inside doubled: 'title=\"=X\"', 'title=\"Red; Blue\"'.",
        },
    )
    visual_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of how the works look (image embeddings) for --image / --id / --like queries, in [0, 1] (0: emotions only)."},
    )
    vad_weight: float | None = field(
        default=None,
        metadata={"help": "Weight of the feeling of the explanations' words (VAD profiles), in [0, 1] (default: 0.5 for --text, 0 otherwise)."},
    )
    output: str | None = field(default=None, metadata={"help": "A .jsonl or .csv file for the hits (default: JSON Lines on stdout)."})
    gallery: str | None = field(
        default=None,
        metadata={
            "help": "Also write into this folder index.html (self-contained: thumbnails, emotion bars, explanations, the "
            "work searched from) and contact_sheet.png. Other files in the folder are left alone."
        },
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing --output file, or a gallery an earlier search wrote into --gallery."})
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "aliases": ["--model"],
            "help": "For --image: the model to encode it with (its folder's code runs); its emotions must be the index's.",
        },
    )
    trust_index_model: bool = field(
        default=False,
        metadata={
            "help": "For --image without --model_name_or_path: load the model the index names in its index_config.json, "
            "running that folder's code. Only for indexes you trust."
        },
    )
    device: str | None = field(default=None, metadata={"help": "For --image: cuda, mps or cpu (default: the device accelerate picks)."})


def build_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser(SearchArguments, formatter_class=HelpFormatter, prog="sevlm-search", description=__doc__.split("\n\n")[0])


def parse_args(argv=None):
    from sevlm.index.gallery import hits_format

    parser = build_parser()
    (args,) = parse_flags(parser, argv)
    for flag in ("like", "dislike", "where"):  # each use of the flag gives a list: one list of them all
        setattr(args, flag, None if getattr(args, flag) is None else [value for values in getattr(args, flag) for value in values])
    if (args.dislike is not None or args.dislike_weight is not None) and args.like is None:
        flag = "--dislike" if args.dislike is not None else "--dislike_weight"
        parser.error(
            f"{flag} goes with --like: recommendations start from works you like (--like ID ...), and the works you do "
            "not like (--dislike ID ...) only steer them away from what those evoke. Give --like with at least one "
            "work, e.g. --like water-lilies.jpg --dislike storm.jpg."
        )
    given = [flag for flag in ("image", "id", "emotions", "text", "like") if getattr(args, flag) is not None]
    if len(given) != 1:
        parser.error(f"Give exactly one query: --image, --id, --emotions, --text or --like (got {', '.join('--' + flag for flag in given) or 'none'}).")
    if args.like is not None and args.vad_weight:
        parser.error("--vad_weight does not apply to --like (recommendations compare emotions, and looks with --visual_weight).")
    if args.dislike_weight is not None and not 0.0 <= args.dislike_weight <= 1.0:
        parser.error(f"--dislike_weight must be between 0 and 1, got {args.dislike_weight}.")
    if args.top_k < 1:
        parser.error(f"--top_k must be at least 1, got {args.top_k}.")
    if args.output and hits_format(args.output) is None:
        parser.error(f"--output {display_path(args.output)}: use a file name ending in .jsonl (JSON Lines, one hit per line) or .csv.")
    for flag in ("visual_weight", "vad_weight"):
        value = getattr(args, flag)
        if value is not None and not 0.0 <= value <= 1.0:
            parser.error(f"--{flag} must be between 0 and 1, got {value}.")
    if (args.model_name_or_path or args.trust_index_model) and args.image is None:
        parser.error("--model_name_or_path and --trust_index_model only apply to --image queries.")
    return args


def main(argv=None):
    args = parse_args(argv)
    from sevlm.index.query import UnusableWords

    try:
        index, hits, query_image = search(args)
    except UnusableWords as error:
        print(f"sevlm-search: error: {display_path(str(error))} Use other words, or an emotion mix (--emotions).", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"sevlm-search: error: {display_path(message)}", file=sys.stderr)
        return 1
    write_outputs(args, index, hits, query_image)
    where = f" to {display_path(args.output)}" if args.output else ""
    print(f"{len(hits)} hit(s) of {len(index)} item(s){where}.", file=sys.stderr)
    return 0


def search(args):
    """(index, hits, query image): the outputs checked first, then the index loaded and searched."""
    from sevlm.index.gallery import check_gallery, check_hits_file, unused_words_note
    from sevlm.index.store import EmotionIndex, untrusted_model_message

    if args.output:
        check_hits_file(args.output, args.overwrite, args.index)
    if args.gallery:
        check_gallery(args.gallery, args.overwrite, args.index)
    query_image = None
    if args.image is not None:  # read first: a file that is not an image costs no model loading
        from processing_sevlm import load_image

        query_image = load_image(args.image)
    index = EmotionIndex.load(args.index)
    model = processor = None
    if args.image is not None:
        if args.model_name_or_path:
            from sevlm.loading import load_model_and_processor, pick_device

            model, processor = load_model_and_processor(args.model_name_or_path, pick_device(args.device))
            index.model(model, processor)
        elif args.trust_index_model:
            index.model(device=args.device, trust_index_model=True)
        else:
            model_flag = f"--model_name_or_path {index.config['model']}"
            raise ValueError(untrusted_model_message(index, model_flag, "--trust_index_model"))
    filters = dict(emotion=args.emotion, min_score=args.min_score, where=args.where)
    if args.like is not None:
        hits = index.recommend(args.like, args.dislike or (), top_k=args.top_k, visual_weight=args.visual_weight, dislike_weight=args.dislike_weight, **filters)
    else:
        hits = index.search(
            image=query_image,
            id=args.id,
            emotions=args.emotions,
            text=args.text,
            top_k=args.top_k,
            visual_weight=args.visual_weight,
            vad_weight=args.vad_weight,
            model=model,
            processor=processor,
            trust_index_model=args.trust_index_model,
            **filters,
        )
    for note in [unused_words_note(hits), *hits.notes]:
        if note:
            print(f"sevlm-search: note: {display_path(note)}", file=sys.stderr)
    return index, hits, query_image


def write_outputs(args, index, hits, query_image):
    """The hits on stdout or in --output, and the --gallery."""
    from sevlm.index.gallery import hits_format, works_inside, write_gallery, write_hits
    from sevlm.io import listed, replace_file

    if args.output:
        fmt = hits_format(args.output)
        with replace_file(args.output, newline="" if fmt == "csv" else None) as stream:
            write_hits(hits, stream, fmt, index.emotions)
    else:
        write_hits(hits, sys.stdout, "jsonl", index.emotions)
        sys.stdout.flush()
    if args.gallery:
        query = args.image or args.id or args.emotions or args.text or ("works like " + ", ".join(args.like) if args.like else "")
        inside = works_inside(index, args.gallery)
        if inside:
            print(
                f"sevlm-search: warning: --gallery {display_path(args.gallery)} holds {len(inside)} work(s) of the index "
                f"({listed(inside)}); keep outputs in a folder of their own. (sevlm-index "
                "skips the gallery's files: the folder records them as a SEVLM output.)",
                file=sys.stderr,
            )
        page = write_gallery(index, hits, args.gallery, title=f"SEVLM search: {query}", query_image=query_image, query_name=args.image, overwrite=args.overwrite)
        print(f"Gallery: {display_path(page)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
