"""A collection's emotional portrait: an offline HTML page with PNG plots, from an emotion index (sevlm-index).

    sevlm-report --index my-index --output_dir portrait/
    sevlm-report --index my-index --output_dir portrait/ --group_by room --route route.txt

The page (DIR/index.html, with its plots beside it and its numbers in DIR/portrait.json) shows what the collection
evokes (the share of works per predicted emotion, the mean probability of each emotion), the same by group
(--group_by: any metadata column, such as artist, style or room), the works most and least typical of each emotion,
the most ambiguous works (the flattest scores: the entropy of their scores divided by its largest value), and, for
an ordered route through an exhibition (--route: a text file, one work per line: its file or id), the emotional arc
along the route with its sharpest changes marked. The page fetches nothing: it opens offline and can be mailed with
its folder. An earlier report in DIR is replaced only with --overwrite; nothing else there is ever replaced.
"""

import sys
from dataclasses import dataclass, field

from sevlm.io import display_path


@dataclass
class ReportArguments:
    index: str = field(metadata={"help": "The index folder written by sevlm-index."})
    output_dir: str = field(metadata={"help": "The folder for index.html, its PNG plots and portrait.json (created if needed)."})
    group_by: str | None = field(
        default=None,
        metadata={"help": "A metadata column (sevlm-index --metadata) to compare groups by, e.g. artist, style or room."},
    )
    route: str | None = field(
        default=None,
        metadata={
            "help": "A text file listing the works of a route in its order, one per line (its file, path or id; '#' starts a "
            "comment): the page draws its emotional arc and marks the sharpest changes."
        },
    )
    top: int = field(default=5, metadata={"help": "Works shown in each list (most and least typical of an emotion, most ambiguous)."})
    title: str | None = field(default=None, metadata={"help": "The page's title (default: 'The emotional portrait of <index folder>')."})
    overwrite: bool = field(default=False, metadata={"help": "Replace the files of an earlier report in --output_dir (nothing else there)."})


def build_parser():
    from transformers import HfArgumentParser

    return HfArgumentParser(ReportArguments, prog="sevlm-report", description=__doc__.split("\n\n")[0])


def parse_args(argv=None):
    parser = build_parser()
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    if args.top < 1:
        parser.error(f"--top must be at least 1, got {args.top}.")
    return args


def main(argv=None):
    args = parse_args(argv)
    from sevlm.index.store import EmotionIndex
    from sevlm.report import check_report_folder, write_report

    try:
        check_report_folder(args.output_dir, args.group_by, args.route, args.overwrite)  # before the index is read
        index = EmotionIndex.load(args.index)
        page = write_report(index, args.output_dir, args.group_by, args.route, args.top, args.title, args.overwrite)
    except (OSError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"sevlm-report: error: {display_path(message)}", file=sys.stderr)
        return 1
    print(f"The portrait of {len(index)} work(s): {display_path(page)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
