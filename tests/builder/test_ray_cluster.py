"""A real two-node Ray cluster on this machine: ``maphc2f-build --ray-address``.

The head and a second node are started with ``ray start`` on 127.0.0.1
(separate temp dirs, one CPU each, a per-test authentication token), the
build runs in a subprocess (a driver already holding the embedded test
session could not join another cluster), and only the process groups
started here are stopped afterwards: never a global ``ray stop``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_helpers import DEMO_ARGS  # noqa: E402

pytest.importorskip("ray")

BIN = Path(sys.executable).parent
#: Prints the ids of the alive nodes once both have joined.
WAIT_FOR_NODES = """
import json, sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
deadline = time.time() + 60
while time.time() < deadline:
    nodes = [n for n in ray.nodes() if n["Alive"]]
    if len(nodes) >= 2:
        break
    time.sleep(0.2)
print(json.dumps({n["NodeID"]: n["Resources"] for n in nodes}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(args, temp_dir: Path, env: dict, log: Path) -> subprocess.Popen:
    """``ray start --block ...`` in its own process group (stopped as a group);
    ``temp_dir`` None leaves the temp dir to ``RAY_TMPDIR`` in ``env``."""
    where = ["--temp-dir", str(temp_dir)] if temp_dir is not None else []
    command = [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
               "--object-store-memory", str(100 * 1024 ** 2), *where, "--disable-usage-stats", *args]
    with log.open("wb") as handle:  # Popen keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop_groups(processes) -> None:
    """SIGTERM the nodes' process groups, SIGKILL whatever outlives a short grace."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        alive = []
        for process in processes:
            try:
                os.killpg(process.pid, sig)
                alive.append(process)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        while alive and time.time() < deadline:
            time.sleep(0.2)
            for process in list(alive):
                process.poll()  # reap `ray start` itself, or its zombie keeps the group alive
                try:
                    os.killpg(process.pid, 0)
                except ProcessLookupError:
                    alive.remove(process)
        if not alive:
            return


def shard_bytes(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted((folder / "data").rglob("*.parquet"))}


@pytest.mark.ray
def test_two_node_cluster_build_matches_the_local_build(demo_dataset, tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               TQDM_DISABLE="1")
    head_dir = Path(tempfile.mkdtemp(prefix="mrh-", dir="/tmp"))
    node_dir = Path(tempfile.mkdtemp(prefix="mrn-", dir="/tmp"))
    started = []
    try:
        started.append(start_node(["--head", "--port", str(port), "--include-dashboard=false"],
                                  head_dir, env, tmp_path / "head.log"))
        deadline = time.time() + 30
        while True:  # the second node needs the head's GCS up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, (tmp_path / "head.log").read_text()[-2000:]
                time.sleep(0.2)
        started.append(start_node(["--address", address, "--resources", '{"node2": 1}'],
                                  node_dir, env, tmp_path / "node2.log"))
        waited = subprocess.run([sys.executable, "-c", WAIT_FOR_NODES, address], env=env, capture_output=True,
                                text=True, timeout=90)
        assert waited.returncode == 0, waited.stderr[-2000:]
        nodes = json.loads(waited.stdout.strip().splitlines()[-1])
        assert len(nodes) == 2, (tmp_path / "node2.log").read_text()[-2000:]
        second = next(node for node, resources in nodes.items() if "node2" in resources)

        out = tmp_path / "maphc2f"
        built = subprocess.run([str(BIN / "maphc2f-build"), *DEMO_ARGS, "--out", str(out), "--ray-address", address],
                               env=env, capture_output=True, text=True, timeout=150)
        assert built.returncode == 0, built.stderr[-3000:]
    finally:
        stop_groups(started)
        shutil.rmtree(head_dir, ignore_errors=True)
        shutil.rmtree(node_dir, ignore_errors=True)

    manifest = json.loads((out / "manifest.json").read_text())
    writers = {shard["node"] for entry in manifest["categories"].values() for shard in entry["shards"]}
    assert writers == set(nodes) and second in writers, "both nodes must write shards"
    assert shard_bytes(out) == shard_bytes(demo_dataset)
    report = json.loads((out / "build_report.json").read_text())
    assert report["runner_detail"].startswith(f"Ray cluster at {address}, ")


@pytest.mark.ray
def test_embedded_build_ignores_a_cluster_already_running_here(tmp_path):
    """``ray start --head`` on this machine, then a build with no address: it
    starts its own embedded Ray instead of joining (or failing on) that one.

    ``RAY_TMPDIR`` keeps the cluster's ``ray_current_cluster`` file, through
    which ``ray.init()`` finds a local cluster, private to this test.
    """
    port = free_port()
    ray_tmp = Path(tempfile.mkdtemp(prefix="mre-", dir="/tmp"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=str(ray_tmp), TQDM_DISABLE="1")
    started = []
    try:
        started.append(start_node(["--head", "--port", str(port), "--include-dashboard=false"],
                                  None, env, tmp_path / "head.log"))
        deadline = time.time() + 60
        while not list(ray_tmp.rglob("ray_current_cluster")):
            assert time.time() < deadline, (tmp_path / "head.log").read_text()[-2000:]
            time.sleep(0.2)
        out = tmp_path / "maphc2f"
        built = subprocess.run([str(BIN / "maphc2f-build"), *DEMO_ARGS, "--categories", "nut", "--out", str(out),
                                "--workers", "1"], env=env, capture_output=True, text=True, timeout=150)
    finally:
        stop_groups(started)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert built.returncode == 0, built.stderr[-3000:]
    report = json.loads((out / "build_report.json").read_text())
    assert report["runner_detail"].startswith("embedded Ray")
