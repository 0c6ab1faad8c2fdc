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

import argparse
import sys

from sevlm.io import display_path


def build_parser():
    parser = argparse.ArgumentParser(prog="sevlm-report", description=__doc__.split("\n\n")[0])
    required = parser.add_argument_group("required")
    required.add_argument("--index", required=True, metavar="DIR", help="The index folder written by sevlm-index.")
    required.add_argument(
        "--output_dir",
        "--output-dir",
        required=True,
        metavar="DIR",
        help="The folder for index.html, its PNG plots and portrait.json (created if needed; not an index or a model "
        "folder).",
    )
    parser.add_argument(
        "--group_by",
        "--group-by",
        metavar="COLUMN",
        help="A metadata column (sevlm-index --metadata) to compare groups by, e.g. artist, style or room.",
    )
    parser.add_argument(
        "--route",
        metavar="FILE",
        help="A UTF-8 text file listing the works of a route in its order, one per line (its file, path or id; '#' "
        "starts a comment): the page draws its emotional arc and marks the sharpest changes.",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=5,
        metavar="N",
        help="Works shown in each list (most and least typical of an emotion, most ambiguous; default: 5).",
    )
    parser.add_argument("--title", help="The page's title (default: 'The emotional portrait of <index folder>').")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace the files of an earlier report in --output_dir (nothing else there).",
    )
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be at least 1, got {args.top}.")
    return args


def main(argv=None):
    args = parse_args(argv)
    from sevlm.index.store import EmotionIndex
    from sevlm.report import check_report_folder, write_report

    def warn(text):
        print(f"sevlm-report: warning: {display_path(text)}", file=sys.stderr)

    try:
        check_report_folder(args.output_dir, args.group_by, args.route, args.overwrite, args.index)  # before the index is read
        index = EmotionIndex.load(args.index)
        page = write_report(index, args.output_dir, args.group_by, args.route, args.top, args.title, args.overwrite, warn)
    except (OSError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"sevlm-report: error: {display_path(message)}", file=sys.stderr)
        return 1
    print(f"The portrait of {len(index)} work(s): {display_path(page)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
