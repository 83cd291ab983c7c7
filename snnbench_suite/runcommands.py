"""CLI pieces of the runner: `run`'s matrix and executor options, and the `status`,
`verify` and `cache` commands. cli.py wires them in."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from snnbench_suite.errors import UsageError
from snnbench_suite.matrix_file import Entry, MatrixFile
from snnbench_suite.plugins import Plugins

MATRIX_CONFLICTS = {"methods": "--methods", "steps": "--T", "archs": "--archs",
                    "datasets": "--datasets", "seeds": "--seeds"}


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--matrix", default=None, metavar="FILE",
                     help="the matrix as a YAML file (methods with parameters, "
                     "architectures, datasets, seeds, T, executor) instead of the lists")
    run.add_argument("--executor", default=None,
                     help="where cells run: local (default), slurm, ray (snnbench list "
                     "executors); its options with --set NAME.PARAM=VALUE")
    run.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                     help="cells run at once (local: worker processes; -j 1 in-process; "
                     "slurm: array tasks at once)")


def add_commands(sub: Any, results_help: str, cache_help: str) -> None:
    status = sub.add_parser("status", help="what a results folder holds, also mid-run")
    status.add_argument("--results", default=None, help=results_help)

    verify = sub.add_parser("verify", help="re-run recorded cells, list differing metrics")
    verify.add_argument("--results", default=None, help=results_help)
    verify.add_argument("--sample", type=int, default=3, metavar="N",
                        help="cells to re-run, drawn at random (default: 3)")
    verify.add_argument("--seed", type=int, default=0, help="seed of the draw (default: 0)")
    verify.add_argument("--data-root", default=None, help="folder of on-disk datasets")
    verify.add_argument("--tolerance", type=float, default=0.0,
                        help="absolute difference tolerated (default: 0, exact)")
    verify.add_argument("--use-cache", default=None, metavar="DIR",
                        help="reuse the ANNs of this cache instead of retraining them "
                        "(what methods train themselves is trained again)")

    cache = sub.add_parser("cache", help="list or clear the cache of trained networks")
    cache.add_argument("action", choices=("list", "clear"))
    cache.add_argument("--cache", default=None, help=cache_help)


def matrix_from_args(args: argparse.Namespace) -> MatrixFile | None:
    """The --matrix file, parsed; or None. The lists and --matrix exclude each other."""
    from snnbench_suite.matrix_file import load_matrix_file

    if args.matrix is None:
        if args.methods is None or args.steps is None:
            raise UsageError("snnbench run needs --methods and --T (or --matrix FILE)")
        return None
    given = [flag for attr, flag in MATRIX_CONFLICTS.items()
             if getattr(args, attr, None) is not None]
    if given:
        raise UsageError(f"--matrix {args.matrix}: {', '.join(given)} cannot be combined with "
                         "a matrix file; put them in the file")
    return load_matrix_file(Path(args.matrix))


def executor_from_args(plugins: Plugins, args: argparse.Namespace,
                       matrix: MatrixFile | None, overrides: Any) -> Any:
    """The checked executor: --executor / -j over the matrix file's, --set over both."""
    from snnbench_suite.matrix import resolve_executor

    entry = matrix.executor if matrix and matrix.executor else None
    if args.executor is not None:
        entry = Entry(args.executor, entry.params if entry and
                      entry.name == args.executor else {})
    entry = entry or Entry("local")
    jobs = args.jobs if args.jobs is not None else (matrix.jobs if matrix and matrix.jobs
                                                    else 1)
    raw = overrides.values.pop(entry.name, {})
    return resolve_executor(plugins, entry, raw, jobs)


def cmd_status(args: argparse.Namespace, results: Path) -> int:
    from snnbench_suite.status import describe_holder, folder_status

    status = folder_status(results)
    console = Console()
    run = status.run
    if run:
        state = "finished " + str(run["finished"]) if run.get("finished") else "in progress " \
            "(or stopped before it finished)"
        console.print(f"latest run: started {run.get('started')} on {run.get('host')} "
                      f"(pid {run.get('pid')}), executor {run.get('executor')} -j "
                      f"{run.get('jobs')}, {len(run.get('cells') or [])} cells; {state}",
                      highlight=False, soft_wrap=True)
    table = Table(title=f"records in {results}")
    for column in ("ok", "failed", "skipped", "running", "pending", "unreadable"):
        table.add_column(column, justify="right")
    table.add_row(str(status.counts.get("ok", 0)), str(status.counts.get("failed", 0)),
                  str(status.counts.get("skipped", 0)), str(len(status.running)),
                  str(len(status.pending)), str(len(status.unreadable)))
    console.print(table)
    for label, holder in status.running:
        console.print(f"running  {label}  ({describe_holder(holder)})", highlight=False,
                      soft_wrap=True)
    for label, error in status.failed:
        console.print(f"failed   {label}: {escape(error)}", highlight=False, soft_wrap=True)
    for message in status.unreadable:
        console.print(f"[red]unreadable[/] {escape(message)}", highlight=False,
                      soft_wrap=True)
    return 0


def cmd_verify(args: argparse.Namespace, plugins: Plugins, results: Path) -> int:
    import torch

    from snnbench_suite.execute import RunSettings
    from snnbench_suite.verify import verify

    err = Console(stderr=True)
    settings = RunSettings(results_dir=results, cache_dir=Path(args.use_cache or "."),
                           data_root=Path(args.data_root) if args.data_root else None,
                           device=torch.device("cpu"))
    report = verify(plugins, results, sample=args.sample, seed=args.seed, settings=settings,
                    tolerance=args.tolerance, fresh_cache=args.use_cache is None,
                    progress=lambda text: err.print(text, highlight=False))
    for note in report.notes:
        err.print(f"note: {note}", highlight=False)
    if report.differences:
        table = Table(title=f"{len(report.differences)} metrics differ")
        for column in ("cell", "metric", "recorded", "re-run"):
            table.add_column(column)
        for d in report.differences:
            table.add_row(d.label, d.metric, repr(d.recorded), repr(d.rerun))
        Console(width=200).print(table)
        return 1
    print(f"{len(report.checked)} cells re-run: all {report.compared} metrics identical")
    return 0


def cmd_cache(args: argparse.Namespace, cache_dir: Path) -> int:
    from snnbench_suite.artifacts import WeightCache

    anns, trained = WeightCache(cache_dir, "anns"), WeightCache(cache_dir, "trained")
    if args.action == "clear":
        removed_anns, removed_trained = anns.clear(), trained.clear()
        print(f"removed {removed_anns} trained ANNs from {anns.folder} and "
              f"{removed_trained} networks trained by methods from {trained.folder}")
        return 0
    ann_entries = anns.entries()
    table = Table(title=f"trained ANNs in {anns.folder}")
    for column in ("key", "architecture", "width", "dataset", "seed", "recipe", "ANN top1",
                   "MB", "created", "state"):
        table.add_column(column, no_wrap=True)
    for e in ann_entries:
        about = e.about
        table.add_row(e.key, str(about.get("architecture", "")), str(about.get("width", "")),
                      str(about.get("dataset", "")), str(about.get("seed", "")),
                      str(about.get("recipe", "")),
                      f"{e.top1:.2f}" if e.top1 is not None else "",
                      f"{e.size_bytes / 1e6:.2f}", e.created or "", e.state)
    Console(width=200).print(table)
    trained_entries = trained.entries()
    table = Table(title=f"networks trained by methods (ctx.train) in {trained.folder}")
    for column in ("key", "method", "architecture", "width", "dataset", "seed", "T", "label",
                   "MB", "created", "state"):
        table.add_column(column, no_wrap=True)
    for e in trained_entries:
        about = e.about
        table.add_row(e.key, *(str(about.get(k, "")) for k in (
            "method", "architecture", "width", "dataset", "seed", "T", "label")),
            f"{e.size_bytes / 1e6:.2f}", e.created or "", e.state)
    Console(width=200).print(table)
    print(f"{len(ann_entries)} trained ANNs, {len(trained_entries)} networks trained by methods")
    return 0
