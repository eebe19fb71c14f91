"""Ray nodes on this machine's loopback only: the cluster ``--backend ray`` starts when no ``--ray-address``
is given, and the multi-node clusters of the tests and the benchmark.

Ray (2.60) makes its servers (GCS, raylet, object manager, the workers' gRPC, the runtime-env agent) listen
on every interface unless the node's IP is 127.0.0.1, and on Linux it rewrites a node or bootstrap address
127.0.0.1 (``--node-ip-address 127.0.0.1``, ``ray.init(_node_ip_address=...)``) into the machine's outward
address, unless its one-machine switch ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set (read at
``import ray``); with the switch set, ``ray start --address`` refuses to add a node. So the batch's own
cluster is started with the switch set around ``ray.init`` (:func:`loopback`), and a multi-node cluster on
one machine is held by a child process (:func:`hold`) that has the switch in its
environment and adds the nodes with Ray's testing helper ``ray.cluster_utils.Cluster``
(https://docs.ray.io/en/latest/ray-contribute/testing-tips.html). Linux only (/proc).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: The node IP of every node started here; Ray binds its servers to it only when it is exactly this.
LOOPBACK = "127.0.0.1"
#: Ray's switch that keeps a node's IP at 127.0.0.1 ("0": one machine only).
SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Ray's token authentication switch (``token`` or ``disabled``; unset: on for clusters ``ray.init`` starts).
AUTH_MODE = "RAY_AUTH_MODE"


@contextlib.contextmanager
def loopback(ray) -> Iterator[None]:
    """Within the block Ray keeps the node IP 127.0.0.1 (``ray.init`` of a new local cluster binds all its
    servers to loopback); processes started in the block inherit the switch through the environment."""
    constants = ray._private.ray_constants
    before_env, before_flag = os.environ.get(SWITCH), constants.ENABLE_RAY_CLUSTER
    os.environ[SWITCH], constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(SWITCH, None)
        else:
            os.environ[SWITCH] = before_env


@contextlib.contextmanager
def restored_auth_mode(ray) -> Iterator[None]:
    """Leave ``RAY_AUTH_MODE`` as it was after the block: ``ray.init`` of a new local cluster turns Ray's token
    authentication on for the rest of the process (environment and cached config), which would make a
    later driver session in this process refuse the calls of a cluster started without tokens (its
    raylets saw the driver as dead: OwnerDiedError). Config and the cached token are reloaded too."""
    before = os.environ.get(AUTH_MODE)
    try:
        yield
    finally:
        if os.environ.get(AUTH_MODE) != before:
            if before is None:
                os.environ.pop(AUTH_MODE, None)
            else:
                os.environ[AUTH_MODE] = before
            with contextlib.suppress(AttributeError):
                ray._raylet.Config.initialize("")  # re-read the environment, as Ray does when it sets it
                ray._raylet.AuthenticationTokenLoader.instance().reset_cache()


def _cmdlines() -> Iterator[tuple[int, bytes]]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                yield int(entry), Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue


def find_processes(match: Callable[[bytes], bool]) -> set[int]:
    """Ids of this machine's processes (this one excepted) whose NUL-separated command line ``match``es."""
    return {pid for pid, cmdline in _cmdlines() if pid != os.getpid() and match(cmdline)}


def descendants(pids: set[int]) -> set[int]:
    """``pids`` and every process below them (children, their children...)."""
    parents: dict[int, int] = {}
    for pid, _ in _cmdlines():
        try:
            parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found = set(pids)
    while more := {pid for pid, parent in parents.items() if parent in found} - found:
        found |= more
    return found


def start_nodes(root: str | os.PathLike, nodes: int = 2, cpus: int = 1, timeout: float = 300.0) -> str:
    """Start a cluster of ``nodes`` nodes with ``cpus`` CPUs each on 127.0.0.1, its files under ``root``;
    returns its address ``127.0.0.1:PORT``. A holder process keeps it and stops it when its standard input
    closes (:func:`stop_nodes`, or this process's death).

    Raises:
        RuntimeError: the cluster did not come up within ``timeout`` s (what was started is stopped).
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, SWITCH: "0", "RAY_TMPDIR": str(root), "RAY_USAGE_STATS_ENABLED": "0"}
    with open(root / "holder.log", "wb") as log:
        code = f"from {__name__} import hold; hold({str(root)!r}, {nodes}, {cpus}, {timeout})"
        holder = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log)
    with selectors.DefaultSelector() as wait:
        wait.register(holder.stdout, selectors.EVENT_READ)
        line = holder.stdout.readline().decode().strip() if wait.select(timeout) else ""
    if not line.startswith(LOOPBACK + ":"):
        stop_nodes(root)
        raise RuntimeError(f"the Ray nodes did not start in {timeout:.0f} s; see {root / 'holder.log'}")
    (root / "holder.pid").write_text(str(holder.pid))
    return line


def stop_nodes(root: str | os.PathLike, timeout: float = 30.0) -> list[int]:
    """Stop the nodes :func:`start_nodes` started under ``root`` (or ``ray start --temp-dir`` under it):
    the holder, every process whose command line names ``root``, and their descendants, by process id
    (SIGTERM, then SIGKILL after ``timeout`` s). Unlike ``ray stop`` it leaves other Ray clusters of the
    machine alone. Returns the process ids signalled."""
    marker = str(Path(root).resolve()).encode()
    roots = find_processes(lambda cmdline: marker in cmdline)
    with contextlib.suppress(OSError, ValueError):
        roots.add(int((Path(root) / "holder.pid").read_text()))
    pids = sorted(descendants(roots))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.2)
    return pids


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not; a zombie child of this process is reaped)."""
    try:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap our own children (the holder) so they do not linger as zombies
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def hold(root: str, nodes: int, cpus: int, timeout: float) -> None:
    """The holder process of :func:`start_nodes` (run with the switch set): start the nodes, print the
    address, keep them until stdin closes."""
    from ray.cluster_utils import Cluster

    args = {"num_cpus": cpus, "node_ip_address": LOOPBACK, "include_dashboard": False}
    cluster = Cluster()
    try:
        cluster.add_node(wait=False, temp_dir=str(Path(root) / "ray"), **args)  # the head
        for _ in range(nodes - 1):
            cluster.add_node(wait=False, **args)
        cluster.wait_for_nodes(timeout=timeout)
        print(cluster.address, flush=True)
        sys.stdin.read()  # returns when the parent closes it or dies
    finally:
        cluster.shutdown()

