"""`--gpus-per-cell N`: run one cell in N processes joined by torch.distributed.

The launcher does what torchrun does for one node: it starts N copies of
`python -m snnbench_suite.launch JOBDIR` with RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR (loopback) and a free MASTER_PORT. Each rank joins the
group (NCCL on GPUs, rank r on GPU r of those visible; gloo on CPU, one process per core)
and runs the whole cell (see `distributed` for what is split across ranks). Rank 0 trains
into the ANN cache and hands the cell's result back; the calling process writes the
record, as for any cell, so there is one writer.

No hang, nothing half-written: the launcher watches every rank. The first rank to fail
(an exception, a non-zero exit, a signal) ends the others at once and the cell fails with
that rank's error; a rank stuck in a collective gets an error after the collective
deadline (`distributed.collective_timeout`). Rank 0's result is written atomically and
read only when every rank exited cleanly.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch

from snnbench_suite import distributed
from snnbench_suite.errors import SnnbenchError, UsageError
from snnbench_suite.progress import Reporter
from snnbench_suite.train import EpochReport

if TYPE_CHECKING:
    from snnbench_suite.cells import Cell
    from snnbench_suite.execute import RunSettings
    from snnbench_suite.plugins import Plugins

POLL_S = 0.1
TERMINATE_GRACE_S = 5.0
FOLLOW_S = 1.0
OUTPUT_TAIL_CHARS = 2000
RESULT_FILE = "result.pkl"


class RankFailedError(SnnbenchError):
    """A rank of a multi-process cell failed; the message names the rank and its error."""


@dataclass(frozen=True)
class CellJob:
    """What every rank needs to run the cell (pickled into the job folder)."""

    cell: dict[str, Any]
    steps: tuple[int, ...]
    settings: RunSettings
    collective_timeout_s: float


def free_port() -> int:
    """A TCP port free on the loopback now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rank_environment(rank: int, world_size: int, port: int, threads: int) -> dict[str, str]:
    """torchrun's variables for `rank` on this node, plus a per-rank thread count."""
    env = dict(os.environ)
    env.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size), GROUP_RANK="0", MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port), PYTHONUNBUFFERED="1",
        # Let NCCL turn a stuck collective into an error at the deadline.
        TORCH_NCCL_ASYNC_ERROR_HANDLING="1",
    )
    env.setdefault("OMP_NUM_THREADS", str(threads))
    return env


@dataclass
class _Rank:
    rank: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path


class _EventTail:
    """Reads the progress lines rank 0 appends and hands them to the reporter."""

    def __init__(self, path: Path, reporter: Reporter) -> None:
        self.path = path
        self.reporter = reporter
        self.offset = 0

    def pump(self) -> None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            event = json.loads(line)
            if event["kind"] == "epoch":
                self.reporter.epoch(EpochReport(**event["report"]))
            else:
                self.reporter.message(event["text"])


def _tail(path: Path) -> str:
    try:
        text = path.read_bytes()[-OUTPUT_TAIL_CHARS:].decode("utf-8", "replace")
    except OSError:
        return ""
    return text.strip()


# Errors a rank raises because another rank went away or stalled: a consequence, not the
# cause, when some other rank failed too.
_SECONDARY = ("connection closed by peer", "connection reset", "timed out", "timeout",
              "broken pipe", "nccl", "socket")


def _failure(rank: _Rank, world_size: int, jobdir: Path) -> tuple[str, bool]:
    """(what went wrong in `rank`, whether it looks like a consequence of another rank's
    failure), from its error file or its exit status and output."""
    error_file = jobdir / f"error-{rank.rank}.json"
    head = f"rank {rank.rank} of {world_size}"
    if error_file.exists():
        error = json.loads(error_file.read_text(encoding="utf-8"))
        text = f"{error['type']}: {error['message']}"
        secondary = any(word in text.lower() for word in _SECONDARY)
        return f"{head} raised {text}", secondary
    code = rank.process.returncode
    how = (f"was killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
           else f"exited with code {code}")
    output = _tail(rank.log_path)
    return f"{head} {how}" + (f"; its last output:\n{output}" if output else ""), False


def _diagnose(ranks: Sequence[_Rank], world_size: int, jobdir: Path) -> str:
    """The cause first: a rank that crashed or raised its own error before the ranks that
    then lost their peer."""
    failures = [_failure(r, world_size, jobdir) for r in ranks
                if r.process.poll() not in (None, 0)]
    failures.sort(key=lambda failure: failure[1])  # stable: causes first, in rank order
    cause, *rest = [text for text, _ in failures]
    if rest:
        cause += "\nthen " + "\nthen ".join(line.split("\n")[0] for line in rest)
    return cause


def _stop(ranks: Sequence[_Rank]) -> None:
    """End every rank still running (ours, by pid): SIGTERM, then SIGKILL after a grace."""
    alive = [r for r in ranks if r.process.poll() is None]
    for r in alive:
        r.process.terminate()
    deadline = time.monotonic() + TERMINATE_GRACE_S
    for r in alive:
        try:
            r.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            r.process.kill()
            r.process.wait()


def run_cell_in_processes(cell: Cell, steps: Sequence[int], settings: RunSettings,
                          reporter: Reporter, *, world_size: int,
                          collective_timeout_s: float | None = None) -> dict[str, Any]:
    """Run `cell` in `world_size` ranks; return rank 0's result (what CellRunner.run
    returns). Raises RankFailedError naming the first rank that failed."""
    timeout = (collective_timeout_s if collective_timeout_s is not None
               else distributed.collective_timeout())
    threads = max(1, torch.get_num_threads() // world_size)
    jobdir = Path(tempfile.mkdtemp(prefix="snnbench-ranks-"))
    ranks: list[_Rank] = []
    try:
        job = CellJob(cell=cell.to_dict(), steps=tuple(steps), settings=settings,
                      collective_timeout_s=timeout)
        _write_atomic_bytes(jobdir / "job.pkl", pickle.dumps(job))
        port = free_port()
        for rank in range(world_size):
            log_path = jobdir / f"output-{rank}.log"
            log = log_path.open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "snnbench_suite.launch", str(jobdir)],
                env=rank_environment(rank, world_size, port, threads),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
            ranks.append(_Rank(rank, process, log, log_path))
        events = _EventTail(jobdir / "events-0.jsonl", reporter)
        while True:
            events.pump()
            if any(r.process.poll() not in (None, 0) for r in ranks):
                # The others usually follow within moments (their peer is gone); give them
                # that long, so the diagnosis can tell the cause from the consequences.
                deadline = time.monotonic() + FOLLOW_S
                while time.monotonic() < deadline and any(r.process.poll() is None
                                                          for r in ranks):
                    time.sleep(POLL_S)
                message = _diagnose(ranks, world_size, jobdir)
                _stop(ranks)
                raise RankFailedError(message)
            if all(r.process.poll() == 0 for r in ranks):
                break
            time.sleep(POLL_S)
        events.pump()
        result_path = jobdir / RESULT_FILE
        if not result_path.exists():
            raise RankFailedError(f"rank 0 of {world_size} exited without a result")
        result: dict[str, Any] = pickle.loads(result_path.read_bytes())
        return result
    finally:
        _stop(ranks)
        for r in ranks:
            r.log.close()
        shutil.rmtree(jobdir, ignore_errors=True)


def check_batches_split(plugins: Plugins, cells: Sequence[Cell], world_size: int) -> None:
    """Before anything runs: every training batch the runner knows of (the dataset's, the
    ANN recipe's) must split evenly over `world_size` ranks. UsageError otherwise.
    (Batches a method sets itself are checked when it trains.)"""
    from snnbench_suite.execute import resolve_recipe

    for cell in cells:
        dataset = plugins.datasets.get(cell.dataset)
        method = plugins.methods.get(cell.method)
        recipe = resolve_recipe(method, cell.method_params)
        configs = {}
        if recipe is not None:
            configs[f"ANN training of {cell.dataset}"] = recipe.training or dataset.ann_training
        if method.family != "conversion":
            configs[f"SNN training of {cell.dataset}"] = dataset.snn_training
        for what, config in configs.items():
            if config.batch_size % world_size:
                raise UsageError(
                    f"--gpus-per-cell {world_size}: the {what} uses batches of "
                    f"{config.batch_size}, which do not split over {world_size} processes; "
                    "use a number of GPUs that divides it")


# --- the rank side --------------------------------------------------------------------


class _FileReporter(Reporter):
    """Rank 0's progress, as JSON lines the launcher forwards to the real display."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _write(self, event: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    def epoch(self, report: EpochReport) -> None:
        self._write({"kind": "epoch", "report": report.__dict__})

    def message(self, text: str) -> None:
        self._write({"kind": "message", "text": text})


def rank_device(settings_device: torch.device, local_rank: int) -> torch.device:
    """GPU `base + local_rank` (base: the index --device named, else 0); or the CPU."""
    if settings_device.type != "cuda":
        return torch.device("cpu")
    return torch.device("cuda", (settings_device.index or 0) + local_rank)


def rank_main(jobdir: Path) -> int:
    """One rank: join the group, run the cell, rank 0 writes the result."""
    from snnbench_suite.cells import Cell
    from snnbench_suite.execute import CellRunner
    from snnbench_suite.plugins import load_plugins

    info = distributed.RankInfo.from_env()
    try:
        job: CellJob = pickle.loads((jobdir / "job.pkl").read_bytes())
        device = rank_device(job.settings.device, info.local_rank)
        settings = replace(job.settings, device=device)
        distributed.init_process_group(device, info, job.collective_timeout_s)
        torch.use_deterministic_algorithms(True, warn_only=True)
        plugins = load_plugins()
        main = info.rank == 0
        reporter = _FileReporter(jobdir / "events-0.jsonl") if main else Reporter()
        result = CellRunner(plugins, settings, reporter).run(Cell.from_dict(job.cell),
                                                             list(job.steps))
        if main:
            _write_atomic_bytes(jobdir / RESULT_FILE, pickle.dumps(result))
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        return 0
    except BaseException as exc:  # report, then leave without waiting on the group
        error = {"type": type(exc).__name__, "message": str(exc),
                 "traceback": traceback.format_exc(limit=20)}
        try:
            _write_atomic_bytes(jobdir / f"error-{info.rank}.json", json.dumps(error).encode())
        finally:
            sys.stderr.write(error["traceback"])
            sys.stderr.flush()
            os._exit(1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m snnbench_suite.launch JOBDIR (started by snnbench run)")
    sys.exit(rank_main(Path(sys.argv[1])))
