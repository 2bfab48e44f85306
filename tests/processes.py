"""Run a command in a test so that a timeout takes its whole process tree down.

``subprocess.run(..., timeout=...)`` kills only the direct child: the trainings that Snakemake or
device_run.py started would keep a core busy for the rest of the suite (seen: one ran on for 27
minutes after its test had failed). Here the command runs in its own process group; on timeout
it gets SIGTERM (Snakemake and device_run.py then stop their own jobs), and the group SIGKILL
after a grace period."""

from __future__ import annotations

import os
import signal
import subprocess


def run_group(cmd, *, timeout: float, grace: float = 15.0, capture_output: bool = False,
              text: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(cmd, timeout=timeout, ...)``; raises ``TimeoutExpired`` the same way,
    after the command's process group is gone."""
    if capture_output:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
    with subprocess.Popen(cmd, start_new_session=True, text=text, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=grace)
            except subprocess.TimeoutExpired:
                out, err = None, None
            _signal_group(proc.pid, signal.SIGKILL)  # whatever ignored SIGTERM, or outlived its parent
            if out is None:
                out, err = proc.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout, out, err) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
