"""`snnbench table` and `snnbench plot`: tables, the HTML page and figures from records."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from snnbench_suite.errors import UsageError
from snnbench_suite.plugins import Plugins

LEADERBOARD_RECORDS = "leaderboards/records"
LEADERBOARD_TABLES = "leaderboards/tables"
PAGE_NAME = "index.html"
EXIT_OK, EXIT_DIFFERS = 0, 1


def _default_results() -> str:
    return os.environ.get("SNNBENCH_RESULTS", "snnbench-results")


def add_parsers(sub: Any) -> None:
    """Add the `table` and `plot` subcommands to `sub` (argparse subparsers)."""
    from snnbench_suite.tables import FORMATS

    table = sub.add_parser(
        "table", help="render tables (or the HTML page) from stored records",
        description="Render a table layout from stored records. --all regenerates every "
        "layout for every dataset (markdown and CSV, plus plots and the HTML page); --check "
        "regenerates them in memory and fails (exit 1) naming every file that differs.")
    table.add_argument("--results", default=None,
                       help="records folder (default: SNNBENCH_RESULTS or snnbench-results; "
                       f"with --all/--check: {LEADERBOARD_RECORDS})")
    table.add_argument("--layout", default=None,
                       help="layout name, see `snnbench list tables` (default: leaderboard; "
                       "with --all/--check: the layouts snnbench ships)")
    table.add_argument("--format", dest="fmt", default="md", choices=FORMATS)
    table.add_argument("--dataset", default=None, help="only these datasets (comma-separated)")
    table.add_argument("--output", default=None, help="write to FILE instead of stdout")
    table.add_argument("--reference", default=None,
                       help="folder of published numbers (default: leaderboards/reference)")
    table.add_argument("--no-reference", action="store_true", help="show no published numbers")
    mode = table.add_mutually_exclusive_group()
    mode.add_argument("--all", action="store_true",
                      help="write every layout for every dataset into --output-dir")
    mode.add_argument("--check", action="store_true",
                      help="fail if the tables in --output-dir differ from the records")
    table.add_argument("--output-dir", default=None,
                       help=f"folder of --all/--check (default: {LEADERBOARD_TABLES})")
    table.add_argument("--no-plots", action="store_true",
                       help="no figures (in --all and in the HTML page)")

    plot = sub.add_parser("plot", help="plot accuracy against T and against energy",
                          description="Accuracy against T (one figure per dataset and "
                          "architecture, seeds as a band) and accuracy against energy (one "
                          "per dataset), as PNG and SVG under OUTPUT_DIR/<dataset>/.")
    plot.add_argument("--results", default=None, help="records folder (SNNBENCH_RESULTS)")
    plot.add_argument("--kind", default="all",
                      help="acc-vs-T, acc-vs-energy or all (default: all)")
    plot.add_argument("--format", dest="formats", default="png,svg",
                      help="png, svg or both (default: png,svg)")
    plot.add_argument("--dataset", default=None, help="only these datasets (comma-separated)")
    plot.add_argument("--output-dir", default="snnbench-plots",
                      help="folder to write into (default: snnbench-plots)")


def _names(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"{what} is empty; give one or more names separated by commas")
    return names


def _reference_dir(args: argparse.Namespace) -> Path | None:
    from snnbench_suite.reference import default_reference_dir

    if args.no_reference:
        return None
    return Path(args.reference) if args.reference else default_reference_dir()


def _emit(text: str, output: str | None) -> None:
    from snnbench_suite.results import write_text_atomic

    if output:
        write_text_atomic(Path(output), text)
    else:
        sys.stdout.write(text)


def cmd_table(args: argparse.Namespace, load: Callable[[], Plugins]) -> int:
    from snnbench_suite.tables import build_result, load_source, render

    if (args.all or args.check) and (args.output or args.fmt != "md"):
        raise UsageError("--all and --check write markdown and CSV into --output-dir; "
                         "drop --output and --format")
    if args.output_dir and not (args.all or args.check):
        raise UsageError("--output-dir goes with --all or --check; use --output for one table")
    plugins = load()
    datasets = _names(args.dataset, "--dataset")
    layouts = _names(args.layout, "--layout")
    for layout in layouts or []:
        plugins.tables.get(layout)  # an unknown name fails here, with did-you-mean
    if args.all or args.check:
        results = Path(args.results or LEADERBOARD_RECORDS)
        source = load_source(plugins, results, _reference_dir(args))
        return _all_or_check(args, plugins, source, layouts, datasets)
    results = Path(args.results or _default_results())
    source = load_source(plugins, results, _reference_dir(args))
    if args.fmt == "html":
        text = _page(plugins, source, layouts, datasets, plots=not args.no_plots)
        _emit(text, args.output)
        return EXIT_OK
    if layouts and len(layouts) > 1:
        raise UsageError("--layout takes one name here (several go with --all or html)")
    layout = layouts[0] if layouts else "leaderboard"
    table = build_result(plugins, source, layout, datasets, results=str(results))
    _emit(render(table, args.fmt), args.output)
    return EXIT_OK


def _page(plugins: Plugins, source: object, layouts: Sequence[str] | None,
          datasets: Sequence[str] | None, *, plots: bool) -> str:
    from snnbench_suite.html_page import PAGE_LAYOUTS, build_page
    from snnbench_suite.plots import draw
    from snnbench_suite.tables import EmptyTableError, TableSource, build_result

    assert isinstance(source, TableSource)
    names = list(layouts) if layouts else [n for n in PAGE_LAYOUTS if n in plugins.tables]
    tables = []
    for name in names:
        try:
            # Without a dataset filter the page shows every published number.
            tables.append(build_result(plugins, source, name, datasets,
                                       every_reported=not datasets))
        except EmptyTableError:
            continue
    if not tables:
        raise UsageError(f"none of the layouts {', '.join(names)} has rows for these records")
    frame = source.frame
    if datasets:
        frame = frame[frame["dataset"].isin(datasets)]
    figures = draw(frame, formats=("svg",))[0] if plots else []
    ok = int((source.frame.drop_duplicates("cell_id")["status"] == "ok").sum())
    cells = source.frame["cell_id"].nunique()
    summary = (f"{cells} cells ({ok} ok) on {', '.join(sorted(set(frame['dataset'])))}; "
               f"{len(source.reference.numbers)} published numbers from "
               f"{len(source.reference.papers)} papers.")
    return build_page(tables, figures, summary)


def _all_or_check(args: argparse.Namespace, plugins: Plugins, source: object,
                  layouts: Sequence[str] | None, datasets: Sequence[str] | None) -> int:
    from snnbench_suite.plots import draw, write_figures
    from snnbench_suite.results import write_text_atomic
    from snnbench_suite.tables import TableSource, check_tables, generate_all

    assert isinstance(source, TableSource)
    if datasets:
        raise UsageError("--all and --check cover every dataset; drop --dataset")
    output_dir = Path(args.output_dir or LEADERBOARD_TABLES)
    generated = generate_all(plugins, source, layouts)
    if args.check:
        # With --layout, the other layouts' committed files are not this check's business.
        problems = check_tables(generated, output_dir, unexpected=not layouts)
        for problem in problems:
            print(problem)
        if problems:
            print(f"snnbench: {len(problems)} table file(s) in {output_dir} do not match the "
                  "records; regenerate them with `snnbench table --all` and commit",
                  file=sys.stderr)
            return EXIT_DIFFERS
        print(f"{len(generated.files)} table files in {output_dir} match the records "
              "(plots and the HTML page are not compared)", file=sys.stderr)
        return EXIT_OK
    for relative, text in sorted(generated.files.items()):
        write_text_atomic(output_dir / relative, text)
    written = len(generated.files)
    if not args.no_plots:
        figures, notes = draw(source.frame)
        written += len(write_figures(figures, output_dir))
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        page = _page(plugins, source, None, None, plots=True)
        write_text_atomic(output_dir / PAGE_NAME, page)
        written += 1
    for line in generated.skipped:
        print(f"note: skipped {line}", file=sys.stderr)
    print(f"wrote {written} files to {output_dir}", file=sys.stderr)
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, load: Callable[[], Plugins]) -> int:
    from snnbench_suite.plots import KINDS, draw, write_figures
    from snnbench_suite.tables import load_source

    kinds = list(KINDS) if args.kind == "all" else _names(args.kind, "--kind") or []
    formats = _names(args.formats, "--format") or []
    plugins = load()
    results = Path(args.results or _default_results())
    source = load_source(plugins, results, None)
    frame = source.frame
    datasets = _names(args.dataset, "--dataset")
    if datasets:
        missing = [d for d in datasets if d not in source.datasets]
        if missing:
            raise UsageError(f"no records for dataset {', '.join(map(repr, missing))} in "
                             f"{results}; datasets with records: {', '.join(source.datasets)}")
        frame = frame[frame["dataset"].isin(datasets)]
    figures, notes = draw(frame, kinds, formats)
    if not figures:
        raise UsageError("nothing to plot: " + "; ".join(notes))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    paths = write_figures(figures, Path(args.output_dir))
    for path in paths:
        print(path)
    return EXIT_OK
