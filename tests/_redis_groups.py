"""Redis groups for the tests: a Redis Cluster and a Sentinel-watched primary with replicas.

Each node is a ``tests._redis_process.RedisProcess`` on a loopback port, so the
fault tests can kill and restart one node of a group.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import redis

from tests._redis_process import RedisProcess, free_port


class ClusterProcesses:
    """A Redis Cluster on loopback: ``masters`` masters with ``replicas`` replicas each.

    Six ``redis-server --cluster-enabled yes`` and ``redis-cli --cluster
    create ... --cluster-replicas 1 --cluster-yes``, as an operator would; each
    node's cluster bus gets a free port of its own (``cluster-port``), since
    port + 10000 may be taken. ``nodes[i]`` stays the same process slot after a
    kill and a restart, so fault tests can bring a node back.
    """

    def __init__(
        self, *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 2_000
    ) -> None:
        self.masters = masters
        self.replicas = replicas
        self.nodes = [
            RedisProcess(extra_args=_cluster_args(node_timeout_ms))
            for _ in range(masters * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming every node (any one is enough)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_until_ok()
        deadline = time.monotonic() + 30
        while len(self.master_ports()) != self.masters:  # replicas join as masters first
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster's replicas did not attach")
            time.sleep(0.05)
        for node in self.nodes:  # replicas in sync, so WAIT can be answered at once
            client = redis.Redis(host="127.0.0.1", port=node.port)
            try:
                while True:
                    info = client.info("replication")
                    if info.get("role") == "master" or info.get("master_link_status") == "up":
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"replica {node.port} did not sync")
                    time.sleep(0.05)
            finally:
                client.close()

    def wait_until_ok(
        self, timeout_s: float = 30.0, *, nodes: list[RedisProcess] | None = None
    ) -> None:
        """Until every running node reports ``cluster_state:ok`` and knows every slot's master."""
        deadline = time.monotonic() + timeout_s
        for node in nodes or [n for n in self.nodes if n.process is not None]:
            client = redis.Redis(host="127.0.0.1", port=node.port)
            try:
                while True:
                    info = dict(client.cluster("INFO"))
                    if (
                        info.get("cluster_state") == "ok"
                        and int(info.get("cluster_slots_ok", 0)) == 16384
                        and int(info.get("cluster_size", 0)) == self.masters
                        and int(info.get("cluster_known_nodes", 0)) == len(self.nodes)
                    ):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cluster not ok on {node.port}: {info}")
                    time.sleep(0.05)
            finally:
                client.close()

    def master_ports(self) -> list[int]:
        """The ports of the nodes that are masters now (as the first running node sees it)."""
        for node in self.nodes:
            if node.process is None:
                continue
            client = redis.Redis(host="127.0.0.1", port=node.port)
            try:
                nodes = dict(client.cluster("NODES"))
            finally:
                client.close()
            return sorted(
                int(address.rsplit(":", 1)[1])
                for address, fields in nodes.items()
                if "master" in fields["flags"].split(",") and "fail" not in fields["flags"]
            )
        raise RuntimeError("no cluster node is running")

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def _cluster_args(node_timeout_ms: int) -> tuple[str, ...]:
    return (
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", str(node_timeout_ms),
        "--cluster-port", str(free_port()),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--repl-diskless-sync-delay", "0",
    )  # fmt: skip


class SentinelGroup:
    """A primary, its replicas and three sentinels (``redis-server --sentinel``), on loopback.

    Sentinels judge a primary down after ``down_after_ms`` and may fail over
    again after ``failover_timeout_ms``: short, so a test sees a failover in
    seconds. Every wait is bounded.
    """

    SERVICE = "mymaster"

    def __init__(
        self, *, replicas: int = 1, down_after_ms: int = 1_000, failover_timeout_ms: int = 3_000
    ) -> None:
        self.primary = RedisProcess()
        self.replicas = [RedisProcess() for _ in range(replicas)]
        self._tmp = tempfile.TemporaryDirectory(prefix="jobqueue-sentinel-")
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._down_after_ms = down_after_ms
        self._failover_timeout_ms = failover_timeout_ms
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def nodes(self) -> list[RedisProcess]:
        return [self.primary, *self.replicas]

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/{db}"

    def start(self) -> None:
        self.primary.start()
        for replica in self.replicas:
            replica.extra_args = ("--replicaof", "127.0.0.1", str(self.primary.port))
            replica.start()
        self.wait_for_replicas(len(self.replicas))
        for index, port in enumerate(self.sentinel_ports):
            folder = Path(self._tmp.name) / f"s{index}"
            folder.mkdir()
            config = folder / "sentinel.conf"
            config.write_text(
                f"bind 127.0.0.1\nport {port}\ndir {folder}\nlogfile {folder / 'sentinel.log'}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} {self._down_after_ms}\n"
                f"sentinel failover-timeout {self.SERVICE} {self._failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.SERVICE} 1\n"
            )
            binary = self.primary.binary
            self.sentinels.append(
                subprocess.Popen(
                    [binary, str(config), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self._until(
            self._sentinels_agree, 20.0, "the sentinels never saw each other and the replica"
        )

    def _sentinel_client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            client = self._sentinel_client(port)
            try:
                state: Any = client.sentinel_master(self.SERVICE)
                known = len(cast(list[Any], client.sentinel_slaves(self.SERVICE)))
            except redis.RedisError:
                return False
            finally:
                client.close()
            if int(state["num-other-sentinels"]) < 2 or known < len(self.replicas):
                return False
        return True

    def master_port(self) -> int | None:
        """The primary's port as the first sentinel that answers names it."""
        for port in self.sentinel_ports:
            client = self._sentinel_client(port)
            try:
                address: Any = client.sentinel_get_master_addr_by_name(self.SERVICE)
            except redis.RedisError:
                continue
            finally:
                client.close()
            if address:
                return int(address[1])
        return None

    def node(self, port: int) -> RedisProcess:
        return next(node for node in self.nodes if node.port == port)

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: promote a replica without waiting for a failure."""
        client = self._sentinel_client(self.sentinel_ports[0])
        try:
            client.execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "FAILOVER", self.SERVICE
            )
        finally:
            client.close()

    def wait_for_new_primary(self, old_port: int, timeout_s: float = 20.0) -> int:
        """Until the failover is over: every sentinel's ``SENTINEL MASTER`` (what clients
        read) names a primary other than ``old_port``, with no failover in progress, and
        that node answers as a primary."""

        def moved() -> bool:
            ports = set()
            for port in self.sentinel_ports:
                client = self._sentinel_client(port)
                try:
                    state: Any = client.sentinel_master(self.SERVICE)
                except redis.RedisError:
                    return False
                finally:
                    client.close()
                if "failover_in_progress" in str(state.get("flags", "")):
                    return False
                ports.add(int(state["port"]))
            if len(ports) != 1 or old_port in ports:
                return False
            return self._role(ports.pop()) == "master"

        self._until(moved, timeout_s, f"no primary replaced the one on port {old_port}")
        port = self.master_port()
        assert port is not None
        return port

    def wait_for_replicas(self, count: int, timeout_s: float = 20.0) -> None:
        """Until the current primary has ``count`` replicas with their link up."""

        def linked() -> bool:
            port = self.master_port() if self.sentinels else self.primary.port
            if port is None:
                return False
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
            try:
                info = client.info("replication")
            except redis.RedisError:
                return False
            finally:
                client.close()
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            return sum(1 for v in online if v.get("state") == "online") >= count

        self._until(linked, timeout_s, f"the primary never had {count} replica(s) online")

    def _role(self, port: int) -> str:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        try:
            return str(client.info("replication").get("role", ""))
        except redis.RedisError:
            return ""
        finally:
            client.close()

    def timeline(self, since: float) -> list[str]:
        """The failover's story since ``since`` (``time.time()``), seconds after it: every
        sentinel's events and the data nodes' replication lines, from their logs.

        For a failure message: when the primary was judged down, who led the
        failover, which replica was promoted, whether the others resynced in
        part or in full, and when each sentinel switched.
        """
        logs = [(f"s{i}", Path(self._tmp.name) / f"s{i}" / "sentinel.log") for i in range(3)]
        logs += [(f"n{node.port}", node.data_dir / "redis.log") for node in self.nodes]
        lines: list[tuple[float, str]] = []
        for name, path in logs:
            text = path.read_text(errors="replace") if path.exists() else ""
            for line in text.splitlines():
                match = _LOG_LINE.match(line)
                if match is None or not any(word in match["text"] for word in _TOLD):
                    continue
                stamp = time.mktime(time.strptime(match["stamp"], "%d %b %Y %H:%M:%S"))
                at = stamp + float("0." + match["ms"]) - since
                if at >= 0:
                    lines.append((at, f"{at:7.3f} {name} {match['text']}"))
        return [line for _, line in sorted(lines)]

    @staticmethod
    def _until(check: Callable[[], bool], timeout_s: float, message: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(message)
            time.sleep(0.1)

    def close(self) -> None:
        for process in self.sentinels:
            process.terminate()
        for process in self.sentinels:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.sentinels = []
        for node in self.nodes:
            node.close()
        self._tmp.cleanup()


_LOG_LINE = re.compile(r"^\d+:\w (?P<stamp>\d+ \w+ \d+ [\d:]+)\.(?P<ms>\d+) [-*#.] (?P<text>.*)$")
"""A redis-server or sentinel log line: pid:role day month year time.ms level text."""
_TOLD = (
    "down", "failover", "elected", "selected", "promoted", "switch", "reconf", "tilt",
    "convert", "resync", "Resync", "Synchronization with", "sync: Finished", "BGSAVE for SYNC",
)  # fmt: skip
"""What a failover's timeline names: Sentinel's events, and each replica's resync."""


@contextmanager
def running_cluster() -> Iterator[ClusterProcesses]:
    """A started default cluster, closed afterwards even when its start fails half-way."""
    nodes = ClusterProcesses()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.close()
