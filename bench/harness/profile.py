"""``BENCH_PROFILE=1``: py-spy flame graphs behind the missed targets, in extra steps.

A profiled step runs after the measured one, with the same load, so py-spy's sampling never
touches a measured number. Start-up profiles launch a server under ``py-spy record`` and stop
it once it is ready. The graphs go to ``results/profiles/<name>.svg``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from typing import TYPE_CHECKING

import psutil

from harness.common import BIN, RESULTS, log
from harness.servers import Server

if TYPE_CHECKING:
    from pathlib import Path

PROFILES = RESULTS / "profiles"
PY_SPY = str(BIN / "py-spy")
RATE = "250"  # samples per second


def _output(name: str) -> Path:
    PROFILES.mkdir(parents=True, exist_ok=True)
    return PROFILES / f"{name}.svg"


def attach(pid: int, name: str, seconds: int) -> subprocess.Popen[bytes]:
    """Record ``pid`` (all its threads) for ``seconds``; wait for it with :func:`finish`."""
    cmd = [PY_SPY, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", RATE,
           "--nonblocking", "--format", "flamegraph", "--output", str(_output(name))]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(spy: subprocess.Popen[bytes], name: str) -> None:
    """Wait for a recording to end and say where it went."""
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(timeout=10)
    log(f"profile {name}: {_output(name)} (py-spy exit {spy.returncode})")


def startup(name: str, server: Server) -> None:
    """Profile ``server``'s start, from exec to ready, under ``py-spy record -- <its command>``.

    The server (py-spy's child) is sent SIGTERM once ready; py-spy writes the graph when its
    child has exited.
    """
    cmd = [PY_SPY, "record", "--rate", RATE, "--format", "flamegraph",
           "--output", str(_output(name)), "--", *server.cmd]  # fmt: skip
    spied = Server(f"{server.name}-startup-profile", cmd, server.env, ready=server.ready_path,
                   kind="profile")  # fmt: skip
    spied.start()
    spy, spied.process = spied.process, None
    if spy is None:
        return
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(spy.pid).children():
            child.send_signal(signal.SIGTERM)
    finish(spy, name)
