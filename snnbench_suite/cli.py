"""The `snnbench` command: thin subcommands over the modules of the core."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from snnbench_suite import runcommands
from snnbench_suite.errors import SnnbenchError, UsageError
from snnbench_suite.plugins import Plugins, load_plugins

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USAGE = 0, 1, 2
LIST_KINDS = ("methods", "architectures", "datasets", "tables", "executors")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 too; keep our prefix
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _default_results() -> str:
    return os.environ.get("SNNBENCH_RESULTS", "snnbench-results")


def _default_cache() -> str:
    return os.environ.get("SNNBENCH_CACHE", "snnbench-cache")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="snnbench", description="Benchmark suite for spiking neural networks.")
    parser.add_argument("--strict-plugins", action="store_true",
                        help="fail when a plugin cannot be loaded (SNNBENCH_STRICT_PLUGINS=1)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the method x architecture x dataset x seed matrix")
    run.add_argument("--methods", default=None, help="comma-separated method names")
    run.add_argument("--T", dest="steps", default=None, help="time steps to report, e.g. 1,2,4,32")
    run.add_argument("--archs", default=None, help="architectures (default: vgg11)")
    run.add_argument("--datasets", default=None, help="datasets (default: digits)")
    run.add_argument("--seeds", default=None, help="seeds, e.g. 0,1,2 (default: 0)")
    run.add_argument("--epochs", type=int, default=None,
                     help="override the epochs of every training step")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="NAME.PARAM=VALUE", help="override a parameter (repeatable)")
    run.add_argument("--data-root", default=os.environ.get("SNNBENCH_DATA"),
                     help="folder holding on-disk datasets (SNNBENCH_DATA)")
    run.add_argument("--results", default=None, help="records folder (SNNBENCH_RESULTS)")
    run.add_argument("--cache", default=None, help="cache folder (SNNBENCH_CACHE)")
    run.add_argument("--device", default="auto",
                     help="auto (CUDA when available), cpu, cuda or cuda:N (default: auto)")
    run.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                     help="autocast precision of training and evaluation; conversion and "
                     "calibration stay fp32 (default: fp32)")
    run.add_argument("--gpus-per-cell", type=int, default=1, metavar="N",
                     help="train each cell in N torch.distributed processes: one per GPU, or "
                     "N gloo processes with --device cpu (default: 1)")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="DataLoader workers per process (default: 0 for in-memory datasets, "
                     "up to 8 for on-disk ones)")
    run.add_argument("--pin-memory", action=argparse.BooleanOptionalAction, default=None,
                     help="pin host memory of loaded batches (default: on with CUDA)")
    run.add_argument("--eval-batch", type=int, default=256, metavar="N",
                     help="evaluation batch; halved after an out-of-memory error (default: 256)")
    run.add_argument("--eval-batch-floor", type=int, default=1, metavar="N",
                     help="smallest evaluation batch the halving may reach (default: 1)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    runcommands.add_run_arguments(run)

    listing = sub.add_parser("list", help="list registered methods, architectures, ...")
    listing.add_argument("kind", nargs="?", choices=LIST_KINDS, default=None)

    plugins = sub.add_parser("plugins", help="list installed plugins and their status")
    plugins.add_argument("--all", action="store_true", help="also show each entry point")

    from snnbench_suite.cli_tables import add_parsers

    add_parsers(sub)  # table and plot
    runcommands.add_commands(sub, "records folder (SNNBENCH_RESULTS)",
                             "cache folder (SNNBENCH_CACHE)")
    return parser


def _load(args: argparse.Namespace) -> Plugins:
    return load_plugins(strict=True if args.strict_plugins else None)


def cmd_run(args: argparse.Namespace) -> int:
    from snnbench_suite.execute import RunSettings
    from snnbench_suite.matrix import (
        DEFAULT_ARCHITECTURE,
        DEFAULT_DATASET,
        Overrides,
        build_plan,
        check_datasets,
        parse_seeds,
        parse_steps,
        split_list,
    )
    from snnbench_suite.preflight import check_architectures
    from snnbench_suite.progress import LineReporter, Reporter, RichReporter
    from snnbench_suite.results import check_writable_folder
    from snnbench_suite.runner import run_plan
    from snnbench_suite.tables import build_table, render

    matrix = runcommands.matrix_from_args(args)
    steps, notes = (matrix.steps, []) if matrix else parse_steps(args.steps)
    device, hardware = _hardware_settings(args)  # before any plugin or data is touched
    plugins = _load(args)
    overrides = Overrides.parse(args.overrides)
    executor = runcommands.executor_from_args(plugins, args, matrix, overrides)
    plan = build_plan(
        plugins,
        methods=matrix.methods if matrix else split_list(args.methods, "--methods"),
        architectures=(matrix.architectures if matrix and matrix.architectures
                       else split_list(args.archs or DEFAULT_ARCHITECTURE, "--archs")),
        datasets=(matrix.datasets if matrix and matrix.datasets
                  else split_list(args.datasets or DEFAULT_DATASET, "--datasets")),
        seeds=(matrix.seeds if matrix and matrix.seeds is not None
               else parse_seeds(args.seeds or "0")),
        steps=sorted(set(steps)),
        overrides=overrides,
        epochs=args.epochs if args.epochs is not None or not matrix else matrix.epochs,
    )
    if args.gpus_per_cell > 1:
        from snnbench_suite.launch import check_batches_split

        check_batches_split(plugins, plan.cells, args.gpus_per_cell)
    results_dir = Path(args.results or _default_results())
    cache_dir = Path(args.cache or _default_cache())
    data_root = Path(args.data_root) if args.data_root else None
    check_datasets(plugins, plan, data_root=data_root, cache_dir=cache_dir)
    check_writable_folder(results_dir, "results folder")
    check_writable_folder(cache_dir, "cache folder")
    err = Console(stderr=True)
    for note in notes:
        err.print(f"note: {note}")
    settings = RunSettings(results_dir=results_dir, cache_dir=cache_dir,
                           data_root=data_root, device=device, **hardware)
    check_architectures(plugins, plan, settings)
    reporter = (Reporter() if args.quiet else RichReporter(err) if err.is_terminal
                else LineReporter(err))
    summary = run_plan(plan, plugins, settings, reporter, executor,
                       strict_plugins=bool(args.strict_plugins),
                       disabled_plugins=_disabled_plugins())
    frame = build_table(plugins, results_dir, "leaderboard")
    # The leaderboard shows the whole results folder, as `snnbench table` does.
    print(render(frame, "md"), end="")
    err.print(
        f"{len(summary.ran)} cells ran, {len(summary.complete)} already recorded, "
        f"{len(summary.failed)} failed, {len(summary.skipped)} skipped; records in {results_dir}"
    )
    return summary.exit_code


def _hardware_settings(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The device and the RunSettings fields of --precision, --gpus-per-cell, --workers,
    --pin-memory and --eval-batch, checked against this machine (UsageError, exit 2)."""
    from snnbench_suite.devices import check_gpus_per_cell, resolve_device
    from snnbench_suite.loading import LoaderOptions
    from snnbench_suite.precision import check_precision, parse_precision

    device = resolve_device(args.device)
    precision = parse_precision(args.precision)
    check_precision(precision, device)
    check_gpus_per_cell(args.gpus_per_cell, device)
    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {args.workers}")
    if args.eval_batch_floor < 1 or args.eval_batch < args.eval_batch_floor:
        raise UsageError(f"--eval-batch ({args.eval_batch}) must be >= --eval-batch-floor "
                         f"({args.eval_batch_floor}) >= 1")
    return device, {
        "precision": precision,
        "gpus_per_cell": args.gpus_per_cell,
        "loading": LoaderOptions(workers=args.workers, pin_memory=args.pin_memory),
        "eval_batch_size": args.eval_batch,
        "eval_batch_floor": args.eval_batch_floor,
    }


def _parameter_count(spec: object) -> str:
    """Parameters of an architecture at its default width, for a 3x32x32, 10-class input."""
    from snnbench_suite.specs import ArchitectureRequest, ArchitectureSpec

    if not isinstance(spec, ArchitectureSpec) or spec.variants is not None:
        return "per member"
    try:
        model = spec.build(ArchitectureRequest(num_classes=10, input_shape=(3, 32, 32),
                                               width=spec.default_width))
    except Exception as exc:  # a listing must not fail because one plugin cannot build
        return f"cannot build: {type(exc).__name__}"
    count = sum(p.numel() for p in model.parameters())
    return f"{count / 1e6:.2f}M" if count >= 10_000 else str(count)


def cmd_list(args: argparse.Namespace) -> int:
    plugins = _load(args)
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or redirected, rich assumes 80 columns, and the names, which do not wrap,
        # squeeze the descriptions out.
        console = Console(width=200)
    kinds = [args.kind] if args.kind else list(LIST_KINDS)
    for kind in kinds:
        registry = getattr(plugins, kind)
        title = kind
        if kind == "architectures":
            title += " (params at the default width for a 3x32x32 input and 10 classes)"
        table = Table(title=title)
        # Architectures have no version; their parameter count and width take its place.
        columns: tuple[str, ...] = ("name", "family / kind", "version", "origin")
        if kind == "architectures":
            columns = ("name", "family / kind", "params", "width", "origin")
        for column in columns:
            table.add_column(column, no_wrap=True)  # names stay whole; the description wraps
        table.add_column("description", ratio=1)
        if kind == "executors":
            table = Table(title="executors (snnbench run --executor NAME -j N)")
            for column in ("name", "available here", "origin"):
                table.add_column(column, no_wrap=True)
            table.add_column("description and options", ratio=1)
        for entry in registry.entries():
            spec = entry.value
            if kind == "executors":
                missing = spec.available() if spec.available is not None else None
                details = f"{spec.description}. Options: {', '.join(spec.params) or '-'}"
                if missing:
                    details += f". Not available: {missing}"
                table.add_row(entry.name, "no" if missing else "yes", entry.origin,
                              escape(details))
                continue
            family = getattr(spec, "family", None) or getattr(spec, "modality", "") or ""
            description = getattr(spec, "description", "").split("\n")[0]
            if kind == "architectures":
                # A family's members are named `<family>.<name>`.
                name = f"{entry.name}.<name>" if spec.variants is not None else entry.name
                table.add_row(name, str(family), _parameter_count(spec),
                              f"{spec.default_width:g}", entry.origin, description)
                continue
            table.add_row(entry.name, str(family), str(getattr(spec, "version", "")),
                          entry.origin, description)
        console.print(table)
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    """Every plugin: distribution, version, status, the hooks it implements and what it
    registered, or why it failed; `--all` adds each plugin's entry point. One block per
    plugin, lines never cut: the lists are long and names must stay copyable."""
    plugins = _load(args)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]plugins[/] (entry-point group snnbench_suite): "
                  f"{len(plugins.statuses)} found, {len(plugins.failed)} failed")
    colours = {"loaded": "green", "failed": "red", "disabled": "yellow"}
    for status in plugins.statuses:
        where = (f"{status.distribution} {status.version}" if status.distribution
                 else "registered in-process")
        colour = colours.get(status.status, "white")
        console.print(f"\n[bold]{escape(status.name)}[/]  {escape(where)}  "
                      f"[{colour}]{status.status}[/]")
        lines = []
        if args.all:
            lines.append(("entry point", status.source))
        if status.hooks:
            lines.append(("hooks", ", ".join(status.hooks)))
        for kind, names in status.registered.items():
            lines.append((kind, ", ".join(names)))
        if status.error:
            lines.append(("error", status.error))
        for label, text in lines:
            style = "red" if label == "error" else "default"
            console.print(f"  {label:<15}[{style}]{escape(text)}[/]")
    return EXIT_OK


def cmd_table(args: argparse.Namespace) -> int:
    from snnbench_suite import cli_tables

    return cli_tables.cmd_table(args, lambda: _load(args))


def cmd_plot(args: argparse.Namespace) -> int:
    from snnbench_suite import cli_tables

    return cli_tables.cmd_plot(args, lambda: _load(args))


def _disabled_plugins() -> tuple[str, ...]:
    names = os.environ.get("SNNBENCH_DISABLE_PLUGINS", "").split(",")
    return tuple(n.strip() for n in names if n.strip())


def cmd_status(args: argparse.Namespace) -> int:
    return runcommands.cmd_status(args, Path(args.results or _default_results()))


def cmd_verify(args: argparse.Namespace) -> int:
    return runcommands.cmd_verify(args, _load(args), Path(args.results or _default_results()))


def cmd_cache(args: argparse.Namespace) -> int:
    return runcommands.cmd_cache(args, Path(args.cache or _default_cache()))


COMMANDS = {"run": cmd_run, "list": cmd_list, "plugins": cmd_plugins, "table": cmd_table,
            "plot": cmd_plot, "status": cmd_status, "verify": cmd_verify, "cache": cmd_cache}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"snnbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SnnbenchError as exc:
        print(f"snnbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("snnbench: interrupted; finished cells are recorded", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
