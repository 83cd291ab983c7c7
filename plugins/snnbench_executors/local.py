"""The `local` executor: `-j 1` runs the units in this process; `-j N` in a pool of N
spawned worker processes, each pinned to its share of the CPU threads.

Each worker talks to the coordinator over its own pipe, so a worker killed by the OS (the
out-of-memory killer, SIGKILL) breaks nothing but itself: the cell it was running is
recorded as failed with the signal, its unit's remaining cells go back to the queue, a
new worker takes its place and the run goes on. Workers die with the coordinator
(PR_SET_PDEATHSIG), so killing a run never leaves orphans computing in the background.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from snnbench_suite import ExecutorRequest, ExecutorSpec, WorkUnit

PR_SET_PDEATHSIG = 1
# A unit whose worker keeps dying before it finishes any cell is given up after this.
MAX_STARTS_WITHOUT_PROGRESS = 3


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when the coordinator dies; elsewhere, a worker
    notices at its next unit (its pipe closes)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the coordinator died before the request took effect
        os._exit(1)


def worker_main(conn: Connection, work: Callable[..., Mapping[str, str]],
                threads: int, parent: int, slot: tuple[int, int]) -> None:
    """A pool worker (slot i of n): runs the units it receives until it receives None."""
    _die_with_parent(parent)

    def send_event(event: Any) -> None:
        conn.send(("event", event))

    while True:
        try:
            unit = conn.recv()
        except (EOFError, OSError):
            return
        if unit is None:
            return
        try:
            outcome = work(unit, events=send_event, threads=threads, slot=slot)
        except BaseException:  # noqa: BLE001 - reported, the worker stays usable
            conn.send(("error", traceback.format_exc(limit=8)))
        else:
            conn.send(("done", dict(outcome)))


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (the out-of-memory killer sends it)" if -code == signal.SIGKILL else ""
        return f"its worker process was killed by signal {name} ({-code}){hint}"
    return f"its worker process exited with code {code} while running it"


@dataclass
class _Slot:
    index: int
    process: Any
    conn: Connection
    unit: WorkUnit | None = None
    running: str | None = None
    finished: set[str] = field(default_factory=set)


class _Pool:
    def __init__(self, request: ExecutorRequest, threads: int) -> None:
        self.request = request
        self.threads = threads
        self.context = mp.get_context("spawn")
        self.queue: deque[WorkUnit] = deque(request.units)
        self.slots: list[_Slot] = []
        self.size = min(request.jobs, len(request.units))
        self.next_index = max(u.index for u in request.units) + 1
        self.fruitless: dict[tuple[str, ...], int] = {}

    def start_worker(self) -> _Slot:
        taken = {s.index for s in self.slots}
        index = min(i for i in range(self.size) if i not in taken)  # a dead one's GPU
        ours, theirs = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=worker_main, name=f"snnbench-worker-{index}", daemon=True,
            args=(theirs, self.request.work, self.threads, os.getpid(), (index, self.size)))
        process.start()
        theirs.close()
        slot = _Slot(index, process, ours)
        self.slots.append(slot)
        return slot

    def give(self, slot: _Slot, unit: WorkUnit) -> None:
        slot.unit, slot.running, slot.finished = unit, None, set()
        slot.conn.send(unit)

    def handle(self, slot: _Slot, message: tuple[str, Any]) -> None:
        kind, payload = message
        unit = slot.unit
        if kind == "event":
            if payload.kind == "cell_started":
                slot.running = payload.cell_id
            elif payload.kind == "cell_finished":
                slot.finished.add(payload.cell_id)
                slot.running = None
            self.request.report(payload)
        elif unit is not None and kind == "done":
            slot.unit = None
            self.request.unit_done(unit, payload)
        elif unit is not None and kind == "error":
            slot.unit = None
            last = payload.strip().splitlines()[-1] if payload.strip() else "an error"
            self.request.unit_lost(unit, f"its worker raised {last}", None)

    def drain(self, slot: _Slot) -> None:
        with contextlib.suppress(EOFError, OSError):
            while slot.conn.poll():
                self.handle(slot, slot.conn.recv())

    def bury(self, slot: _Slot) -> None:
        """A worker died: record the cell it ran, requeue the rest of its unit."""
        self.slots.remove(slot)
        slot.process.join(timeout=1)
        unit = slot.unit
        if unit is None:
            return
        reason = describe_exit(slot.process.exitcode)
        lost = [slot.running] if slot.running else []
        rest = tuple(c for c in unit.cells
                     if c.cell_id not in slot.finished and c.cell_id not in lost)
        if rest and not lost and not slot.finished:
            key = tuple(c.cell_id for c in rest)
            self.fruitless[key] = self.fruitless.get(key, 0) + 1
            if self.fruitless[key] >= MAX_STARTS_WITHOUT_PROGRESS:
                lost, rest = [c.cell_id for c in rest], ()
                reason += f" ({MAX_STARTS_WITHOUT_PROGRESS} times before any cell finished)"
        if lost:
            self.request.unit_lost(unit, reason, lost)
        if rest:
            self.queue.append(replace(unit, index=self.next_index, cells=rest))
            self.next_index += 1

    def run(self) -> None:
        try:
            while self.queue or any(s.unit is not None for s in self.slots):
                for slot in self.slots:
                    if slot.unit is None and self.queue and slot.process.is_alive():
                        self.give(slot, self.queue.popleft())
                while len(self.slots) < self.size and self.queue:
                    self.give(self.start_worker(), self.queue.popleft())
                busy = [s for s in self.slots if s.unit is not None]
                wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=2.0)
                for slot in list(self.slots):
                    self.drain(slot)
                    if not slot.process.is_alive():
                        self.drain(slot)
                        self.bury(slot)
        finally:
            self.stop()

    def stop(self) -> None:
        for slot in self.slots:
            with contextlib.suppress(OSError, BrokenPipeError):
                slot.conn.send(None)
        for slot in self.slots:
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=5)
            slot.conn.close()
        self.slots.clear()


def threads_per_worker(params: Mapping[str, Any], jobs: int) -> int:
    return int(params.get("threads") or max(1, (os.cpu_count() or 1) // jobs))


def run(request: ExecutorRequest) -> None:
    if request.jobs == 1:
        if request.params.get("threads"):
            import torch

            torch.set_num_threads(int(request.params["threads"]))
        for unit in request.units:
            request.unit_done(unit, request.work_here(unit))
        return
    pool = _Pool(request, threads_per_worker(request.params, request.jobs))
    for index in range(pool.size):  # too few GPUs for -j N: refused before any worker
        request.worker_env(index, pool.size)
    pool.run()


def check_params(params: Mapping[str, Any]) -> None:
    if params["threads"] < 0:
        raise ValueError(f"threads must be >= 0 (0: CPUs / -j), got {params['threads']}")


LOCAL = ExecutorSpec(
    name="local",
    run=run,
    description="this machine: -j 1 in-process, -j N a pool of N spawned workers, each "
                "pinned to CPUs/N torch threads (or local.threads)",
    params={"threads": 0},
    check_params=check_params,
)
