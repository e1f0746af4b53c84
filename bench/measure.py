"""Run one command and measure it: wall time and the peak resident memory of its whole process tree.

The tree's RSS (the command, its children, a JVM included) is summed from /proc every 100 ms by psutil. A tree
that grows past ``cap_bytes`` is killed and reported as not fitting, so a benchmark cannot take the machine down.
No address-space limit backs it up: processes reserve far more than they touch (at the cap itself, a pandas run at
5M rows could not start a thread), so such a limit kills runs that fit, and the resident cap alone decides.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from jobs.errors import failure_line

SAMPLE_SECONDS = 0.1


@dataclass
class Measurement:
    seconds: float
    peak_rss_bytes: int
    returncode: int
    counts: dict[str, int] = field(default_factory=dict)
    detail: dict[str, object] = field(default_factory=dict)
    error: str | None = None


def _tree_rss(root: psutil.Process) -> int:
    """The summed RSS of ``root`` and its descendants, each address space counted once.

    A JVM starts helper commands (Hadoop's local file system does) with posix_spawn: until the child execs, it
    shares the JVM's address space and /proc reports the JVM's whole RSS for it too, so summing both doubled the
    JVM's memory in some samples (peaks of 3.7-5.1 GiB for a JVM whose RSS never passed 2.7 GiB). Such a child
    still runs its parent's executable; a JVM never runs a second JVM as its own child here (local mode), so a
    child with its parent's executable is counted as part of the parent. Comparing RSS values instead missed the
    samples where the two were read a moment apart.
    """
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    executables: dict[int, str] = {}
    for p in processes:
        with contextlib.suppress(psutil.Error):
            executables[p.pid] = p.exe()
    total = 0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            if p is not root and _is_unexeced_child(p, executables):
                continue
            total += p.memory_info().rss
    return total


def _is_unexeced_child(process: psutil.Process, executables: dict[int, str]) -> bool:
    """True for a JVM's child that has not yet replaced the JVM's image (it shares the JVM's memory)."""
    own, parents = executables.get(process.pid), executables.get(process.ppid())
    return own is not None and own == parents and Path(own).name == "java"


def run_measured(cmd: list[str], env: dict[str, str], cwd: str, cap_bytes: int, timeout: float = 3600) -> Measurement:
    started = time.perf_counter()
    # A session of its own (its own process group), so that the whole tree can be killed at once.
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    root = psutil.Process(proc.pid)
    peak, over_cap, timed_out = 0, False, False
    output: dict[str, str] = {}

    def drain(name: str, stream) -> None:
        output[name] = stream.read()

    readers = [
        threading.Thread(target=drain, args=(n, s), daemon=True)
        for n, s in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for r in readers:
        r.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss(root))
        if peak > cap_bytes or time.perf_counter() - started > timeout:
            over_cap, timed_out = peak > cap_bytes, peak <= cap_bytes
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(SAMPLE_SECONDS)
    proc.wait()
    seconds = time.perf_counter() - started
    for r in readers:
        r.join()
    stdout, stderr = output.get("out", ""), output.get("err", "")
    m = Measurement(seconds=seconds, peak_rss_bytes=peak, returncode=proc.returncode)
    lines = stdout.strip().splitlines()
    for line in lines:
        if line.startswith("detail "):
            m.detail.update(json.loads(line.removeprefix("detail ")))
    if over_cap:
        m.error = f"did not fit in {cap_bytes / 2**30:.0f} GiB"
    elif timed_out:
        m.error = f"did not finish: stopped after {timeout:.0f} s"
    elif proc.returncode < 0:
        said = f": {failure_line(stderr)[:300]}" if stderr.strip() else ""
        m.error = f"killed by signal {-proc.returncode} after {seconds:.0f} s{said}"
    elif proc.returncode != 0:
        m.error = failure_line(stderr)[:300]
        if "MemoryError" in m.error or "Cannot allocate memory" in stderr:
            m.error = f"did not fit in {cap_bytes / 2**30:.0f} GiB ({m.error[:120]})"
    elif lines:
        m.counts = json.loads(lines[-1])
    return m
