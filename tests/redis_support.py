"""A real ``redis-server`` for tests: a free loopback port, a temporary directory, persistence off.

It can be stopped and started again on the same port (a Redis restart mid-run), or killed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

import pytest

from odapi_async.emulator._server.stats import key_id

#: Whether the tests that need a real Redis can run here.
HAVE_REDIS = shutil.which("redis-server") is not None

T = 0.1
KEYS = {**{f"k{n}": "full" for n in range(1, 10)}, "ro": "read_all"}
"""Each test uses its own keys: a fresh Redis knows nothing of what another test just sent."""
INTERVALS = {"full": T, "read_all": 0.3}


#: Every test module here: ``pytestmark = NEEDS_REDIS``.
NEEDS_REDIS = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_REDIS, reason="redis-server is not installed"),
]


def remote_stats(emu: Any, customer_key: str) -> dict[str, Any]:
    per = emu.stats()["keys"].get(key_id(customer_key), {"listeners": {}})
    return per["listeners"].get("remote", {"requests": 0, "violations": 0, "throttled": 0})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 (``start``, ``stop``, ``start`` again: same port, empty)."""

    def __init__(self, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = port if port is not None else free_port()
        self._extra = extra
        self._dir = tempfile.TemporaryDirectory(prefix="odapi-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self._proc = subprocess.Popen(
            [*args, "--dir", self._dir.name, *self._extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:  # bounded: until it listens, or 10 s
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer within 10 s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-conversation, as in a crash."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
            self._proc = None

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


class RedisClusterServers:
    """A real Redis Cluster of three masters on loopback (``redis-cli --cluster create``), no replicas."""

    def __init__(self) -> None:
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> None:
        for port in _cluster_ports(3):
            node = RedisServer(port, ("--cluster-enabled", "yes", "--cluster-node-timeout", "2000"))
            self.nodes.append(node)
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 20
        while not all(self._ok(n.port) for n in self.nodes):  # bounded: every node agrees, or 20 s
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become ready within 20 s")
            time.sleep(0.05)

    @staticmethod
    def _ok(port: int) -> bool:
        found = subprocess.run(
            ["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=5
        )
        return "cluster_state:ok" in found.stdout

    def node_of(self, key: str) -> int:
        """The port of the node that owns ``key``'s slot."""
        found = subprocess.run(
            ["redis-cli", "-c", "-p", str(self.nodes[0].port), "cluster", "keyslot", key],
            capture_output=True,
            text=True,
            timeout=5,
        )
        slot = int(found.stdout.strip())
        shards = subprocess.run(
            ["redis-cli", "-p", str(self.nodes[0].port), "cluster", "slots"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.split()
        # Flat output: start, end, ip, port, id, then the next range.
        for i in range(0, len(shards) - 3, 5):
            if int(shards[i]) <= slot <= int(shards[i + 1]):
                return int(shards[i + 3])
        raise AssertionError(f"no node owns slot {slot}")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def _cluster_ports(n: int) -> list[int]:
    """``n`` ports free with their cluster bus ports (port + 10000)."""
    found: list[int] = []
    while len(found) < n:
        port = free_port()
        if port + 10000 > 65535 or port in found:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        found.append(port)
    return found
