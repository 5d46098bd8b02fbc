"""The network namespace of verify's runs: loopback up without ip(8), the outside unreachable."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from golfc.verify import runs

PROBE = """
import socket
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
socket.create_connection(server.getsockname(), timeout=5).close()
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2)  # TEST-NET-1: never routed
    print("outside:reachable")
except OSError as exc:
    print(f"outside:{exc.errno}")
print("loopback:up")
"""


def test_the_namespace_has_its_loopback_up_without_ip8_and_no_way_out(monkeypatch):
    which = shutil.which
    monkeypatch.setattr(runs.shutil, "which", lambda name: None if name == "ip" else which(name))
    runs._succeeds.cache_clear()
    prefix, how = runs.network_isolation()
    if prefix is None:
        pytest.skip(f"no network namespace on this machine: {how}")
    assert "ip" not in " ".join(prefix).split() and prefix[-1] == str(runs.LOOPBACK_UP)
    out = subprocess.run([*prefix, sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert "loopback:up" in out and "outside:reachable" not in out
    # without the helper the same namespace cannot reach its own loopback: the helper is what makes torchrun work
    bare = subprocess.run([*prefix[:3], sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                          check=False)
    assert bare.returncode != 0 and "Network is unreachable" in bare.stderr


def test_the_helper_without_a_command_is_a_one_line_usage_error():
    proc = subprocess.run([sys.executable, str(runs.LOOPBACK_UP)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "usage: loopback.py COMMAND [ARGS...]"


def test_a_gpu_machine_whose_driver_does_not_answer_in_the_namespace_runs_without_it(tmp_path, monkeypatch):
    """On a GPU machine golfc asks nvidia-smi inside the namespace too: where it answers only outside, the runs
    keep the machine's network (and the NET check warns) rather than failing every seed."""
    if runs.network_isolation()[0] is None:
        pytest.skip("no network namespace on this machine")
    smi = tmp_path / "nvidia-smi"  # answers only outside a user namespace (the full uid range is mapped there)
    smi.write_text("#!/bin/sh\nawk '{exit ($3 == 4294967295) ? 0 : 1}' /proc/self/uid_map\n")
    smi.chmod(0o755)
    which = shutil.which
    monkeypatch.setattr(runs.shutil, "which", lambda name: str(smi) if name == "nvidia-smi" else which(name))
    runs._succeeds.cache_clear()
    assert runs.network_isolation() == (None, "the GPUs do not answer inside a new network namespace "
                                              "(nvidia-smi -L failed there)")
    smi.write_text("#!/bin/sh\nexit 0\n")
    runs._succeeds.cache_clear()
    assert runs.network_isolation()[0] is not None
    runs._succeeds.cache_clear()
