"""A 3-node nats-server cluster with JetStream on loopback, and a producer that rides out its
leader elections.

Each node is a `NatsServer` (own client port, store dir and log) with a cluster port, a
server name and routes to the other nodes. `start()` returns once JetStream has a meta
leader, i.e. a stream with 3 replicas can be created; a node can then be killed and
restarted on the same ports and store, and `stream_leader(name)` tells which node leads a
stream's Raft group now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from harness.nats import NatsServer
from harness.ports import LOOPBACK, free_port, port_accepts
from harness.waiting import wait_for

SIZE = 3
CLUSTER_NAME = "bridge-test"
META_LEADER_TIMEOUT_S = 30.0
LEADER_TIMEOUT_S = 30.0
PROBE_STREAM = "CLUSTER_PROBE"
REQUEST_TIMEOUT_S = 2.0
PUBLISH_TIMEOUT_S = 2.0
PUBLISH_RETRY_S = 0.2
# What a producer sees while a stream has no leader or its server is gone: it retries.
ELECTION_ERRORS = (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError)


class ClusterNode(NatsServer):
    """A `NatsServer` that joins the cluster: distinct server name, cluster port and routes."""

    def __init__(self, root: Path, name: str, cluster_port: int, routes: list[str]) -> None:
        super().__init__(store_dir=root / name, log_path=root / f"{name}.log")
        self.name = name
        self.cluster_port = cluster_port
        self.routes = routes

    def _command(self) -> list[str]:
        cluster = f"nats://{LOOPBACK}:{self.cluster_port}"
        return [
            *super()._command(),
            *("--server_name", self.name, "--cluster_name", CLUSTER_NAME),
            *("--cluster", cluster, "--routes", ",".join(self.routes)),
        ]

    async def _ready(self) -> bool:
        """Up once it listens: JetStream answers only when the cluster has a meta leader,
        which `NatsCluster` waits for (asking each node alone costs a request timeout)."""
        if not self.running:
            raise RuntimeError(f"nats-server {self.name} exited: {self.log_tail()}")
        return await port_accepts(self.port)


class NatsCluster:
    """`SIZE` clustered nodes under `root` (a store dir and a log file each)."""

    def __init__(self, root: Path) -> None:
        ports = [free_port() for _ in range(SIZE)]
        routes = [f"nats://{LOOPBACK}:{port}" for port in ports]
        self.nodes = [
            ClusterNode(root, f"n{i + 1}", port, [r for r in routes if r != routes[i]])
            for i, port in enumerate(ports)
        ]

    @property
    def urls(self) -> str:
        """Every node's client URL, comma-separated, as NATS_URL takes them."""
        return ",".join(node.url for node in self.nodes)

    async def start(self) -> None:
        """Start every node at once (none can serve JetStream alone); returns once a stream
        with a replica on each node can be created."""
        await asyncio.gather(*(node.start() for node in self.nodes))
        await self._wait_for_quorum()

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes))

    async def kill(self, node: ClusterNode) -> None:
        """kill -9 one node."""
        await node.kill()

    async def restart(self, node: ClusterNode) -> None:
        """Start a stopped or killed node again on its ports and store; it rejoins and
        catches up by itself. Returns once it listens and the cluster has a meta leader."""
        await node.start()
        await self._wait_for_quorum()

    async def _wait_for_quorum(self) -> None:
        await wait_for(self._replicated_stream_works, META_LEADER_TIMEOUT_S, self._no_leader)

    async def stream_leader(self, stream: str) -> ClusterNode:
        """The node leading `stream` now (waits while an election is under way)."""
        leader: list[ClusterNode] = []

        async def known() -> bool:
            name = await self._leader_name(stream)
            leader[:] = [node for node in self.nodes if node.name == name and node.running]
            return bool(leader)

        await wait_for(known, LEADER_TIMEOUT_S, f"stream {stream} has no leader")
        return leader[0]

    async def _leader_name(self, stream: str) -> str | None:
        try:
            async with self.client() as nc:
                info = await nc.jetstream(timeout=REQUEST_TIMEOUT_S).stream_info(stream)
        except ELECTION_ERRORS:
            return None
        return info.cluster.leader if info.cluster else None

    async def _replicated_stream_works(self) -> bool:
        config = StreamConfig(
            name=PROBE_STREAM,
            subjects=["cluster.probe"],
            num_replicas=len(self.nodes),
            storage=StorageType.MEMORY,
        )
        try:
            async with self.client() as nc:
                js = nc.jetstream(timeout=REQUEST_TIMEOUT_S)
                await js.add_stream(config)
                await js.delete_stream(PROBE_STREAM)
        except ELECTION_ERRORS:
            return False
        return True

    def _no_leader(self) -> str:
        return "no JetStream meta leader: " + " | ".join(n.log_tail(600) for n in self.nodes)

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        """A short-lived connection to whichever nodes are up."""
        nc = await nats.connect(self._running_urls(), connect_timeout=1, allow_reconnect=False)
        try:
            yield nc
        finally:
            await nc.close()

    def _running_urls(self) -> list[str]:
        return [node.url for node in self.nodes if node.running]


async def publish_through_elections(
    js: JetStreamContext, subject: str, data: bytes, msg_id: str, patience_s: float
) -> int:
    """Publish until a PubAck arrives, as a producer must across a leader election: the
    same Nats-Msg-Id on every try, so a try that was stored but not acked adds no copy.

    Returns how many tries failed.
    """
    deadline = asyncio.get_running_loop().time() + patience_s
    failures = 0
    while True:
        try:
            headers = {"Nats-Msg-Id": msg_id}
            await js.publish(subject, data, timeout=PUBLISH_TIMEOUT_S, headers=headers)
            return failures
        except ELECTION_ERRORS:
            failures += 1
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(PUBLISH_RETRY_S)
