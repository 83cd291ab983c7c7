"""The `slurm` executor against a real single-node Slurm cluster (Debian's slurm-wlm and
munge, as CI installs them).

The fixture starts munged (as the munge user, on its own socket), slurmctld and slurmd
with a slurm.conf in a temporary folder (SLURM_CONF), listening on 127.0.0.1 only, runs
the tests, and stops the daemons it started by their pid files. Nothing leaves the
loopback. Skipped, with the reason, where the daemons or root are missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")
TINY = ["--methods", "naive", "--archs", "vgg11", "--set", "vgg11.width=0.125", "--epochs",
        "1", "--T", "1,2"]
FAST_SLURM = ["--set", "slurm.poll_s=0.5", "--set", "slurm.cpus_per_task=1",
              "--set", "slurm.time_min=10", "--set", "slurm.queue_timeout_min=5"]


def _missing() -> str | None:
    if sys.platform != "linux":
        return "a Slurm cluster needs Linux"
    absent = [d for d in DAEMONS if shutil.which(d, path=os.environ.get("PATH", "") +
                                                 ":/usr/sbin:/sbin") is None]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "starting slurmd and munged as their users needs root"
    if importlib.util.find_spec("submitit") is None:
        return "submitit is not installed (pip install -e '.[test]')"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no munge user (the munge package creates it)"
    if not Path("/etc/munge/munge.key").exists():
        return "no /etc/munge/munge.key (the munge package creates it)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _daemon(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    assert found is not None
    return found


def _wait(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {seconds:g} s")


def _stop(pid_file: Path) -> None:
    """Stop the daemon whose pid file this is (only what this fixture started)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


SLURM_CONF = """\
ClusterName=snnbenchtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
ReturnToService=2
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[dict[str, str]]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    # Not pytest's tmp_path: munged refuses folders it cannot own, and the socket path
    # must stay short.
    root = Path(tempfile.mkdtemp(prefix="snnbench-slurm-"))
    root.chmod(0o755)
    munge = root / "munge"
    for folder in (munge, root / "state", root / "spool"):
        folder.mkdir()
    munge_user = pwd.getpwnam("munge")
    os.chown(munge, munge_user.pw_uid, munge_user.pw_gid)
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(root=root, ctld_port=_free_port(),
                                      slurmd_port=_free_port(), cpus=os.cpu_count() or 1))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pid_files = [root / "slurmd.pid", root / "slurmctld.pid", munge / "munged.pid"]
    try:
        subprocess.run(["runuser", "-u", "munge", "--", _daemon("munged"),
                        f"--socket={munge}/munge.socket", f"--pid-file={munge}/munged.pid",
                        f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed",
                        "--key-file=/etc/munge/munge.key"], check=True, timeout=30)
        _wait(lambda: (munge / "munge.socket").exists(), 15, "munged")
        subprocess.run([_daemon("slurmctld")], env=env, check=True, timeout=30)
        subprocess.run([_daemon("slurmd"), "-N", "localhost"], env=env, check=True, timeout=30)

        def idle() -> bool:
            answer = subprocess.run(["sinfo", "--noheader", "--format=%t"], env=env,
                                    capture_output=True, text=True, timeout=10)
            return answer.stdout.strip() == "idle"

        _wait(idle, 30, "the Slurm node")
        yield env
    finally:
        for pid_file in pid_files:
            _stop(pid_file)
        shutil.rmtree(root, ignore_errors=True)


def _run(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snnbench_suite.cli", "run", "--results", str(tmp / "results"),
         "--cache", str(tmp / "cache"), "--executor", "slurm", *FAST_SLURM, *args],
        env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)


def test_a_matrix_runs_as_a_slurm_job_array_writing_its_own_records(
        slurm_cluster, tmp_path) -> None:
    result = _run(tmp_path, slurm_cluster, *TINY, "--seeds", "0,1", "-j", "2")
    assert result.returncode == 0, result.stderr
    found = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")]
    assert sorted(r["cell"]["seed"] for r in found) == [0, 1]
    for record in found:
        assert record["status"] == "ok"
        assert [e["T"] for e in record["per_T"]] == [1, 2]
        # Written by the job itself, inside Slurm, not by the coordinator.
        assert record["provenance"]["slurm_job_id"]
        assert record["provenance"]["threads"]["torch_threads"] == 1
    assert len({r["provenance"]["slurm_job_id"] for r in found}) == 2  # one task per ANN
    assert "2 cells ran, 0 already recorded, 0 failed" in result.stderr
    logs = tmp_path / "results" / ".snnbench" / "slurm"
    assert any(logs.rglob("*_log.out"))

    again = _run(tmp_path, slurm_cluster, *TINY, "--seeds", "0,1", "-j", "2")
    assert again.returncode == 0 and "0 cells ran, 2 already recorded" in again.stderr


def test_a_job_that_dies_hard_is_recorded_lost_after_its_grace(
        slurm_cluster, tmp_path, install_plugin) -> None:
    site = install_plugin("hard_death", """
        import os, signal
        from snnbench_suite import MethodSpec, hookimpl

        def build(ctx):
            os.kill(os.getpid(), signal.SIGKILL)

        @hookimpl
        def snnbench_register_methods(register):
            register(MethodSpec(name="hard_death", family="direct_training", version="1",
                                t_mode="anytime", build=build))
        """)
    env = {**slurm_cluster, "PYTHONPATH": str(site)}  # the job imports the plugin too
    started = time.monotonic()
    result = _run(tmp_path, env, "--methods", "hard_death", "--T", "1", "--epochs", "1",
                  "--set", "slurm.grace_s=3")
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 120  # no hang: the deadline caught it
    record = json.loads(next((tmp_path / "results").glob("hard_death-*.json")).read_text())
    assert record["status"] == "failed"
    assert "left the queue without a result" in record["error"]["message"]
    assert "its log:" in record["error"]["message"]


def test_an_unreachable_controller_is_a_clear_error_not_a_hang(tmp_path) -> None:
    if shutil.which("scontrol") is None or importlib.util.find_spec("submitit") is None:
        pytest.skip("the Slurm client commands or submitit are not installed")
    conf = tmp_path / "slurm.conf"
    conf.write_text(SLURM_CONF.format(root=tmp_path, ctld_port=_free_port(),
                                      slurmd_port=_free_port(), cpus=1))
    started = time.monotonic()
    result = _run(tmp_path, {**os.environ, "SLURM_CONF": str(conf)}, *TINY,
                  "--set", "slurm.timeout_s=20")
    assert result.returncode == 2
    assert "the Slurm controller is unreachable" in result.stderr
    assert "SLURM_CONF" in result.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "results").exists()  # refused before anything ran
