"""Several replicas on one PostgreSQL: real processes, real HTTP, one shared crop store.

The cluster is shared by the tests of this module, in order; each test uses its own
identities. Every replica has its own data directory (snapshot, job files) and the
same crop store, as replicas on several hosts with one shared volume would.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_server import free_port, launch, service_environment, stop, wait_until_up
from service_kit import PostgresServer, files, person_jpeg
from sqlalchemy import func, select

from app.db.engine import create_db_engine, session_factory, upgrade_to_head
from app.db.models import GalleryEntry
from app.gallery.entry_fields import EntryFields
from app.gallery.store import EntryStore
from app.inference.decoding import DecodedImage
from model.checkpoint import save_checkpoint, untrained_model
from model.config import ModelConfig

# What a test may wait for a change to reach another replica. The lag target (1 s at
# p99 on loopback) is measured by benchmarks/replica_lag.py; this bound only keeps a
# loaded CI machine from failing a correct build.
PROPAGATION_BOUND_S = 10.0


class Cluster:
    def __init__(self, url: str, checkpoint: Path, root: Path) -> None:
        self.url = url
        self.checkpoint = checkpoint
        self.root = root
        self.processes: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.models: dict[str, Path] = {}

    def env(self, name: str) -> dict[str, str]:
        self.ports.setdefault(name, free_port())
        return service_environment(
            REID_DATABASE_URL=self.url,
            REID_AUTO_MIGRATE="false",
            REID_DATA_DIR=str(self.root / name),
            REID_CROPS_DIR=str(self.root / "shared-crops"),
            REID_REPLICA_ID=name,
            REID_MODEL_PATH=str(self.models.get(name, self.checkpoint)),
            REID_DEVICE="cpu",
            REID_HOST="127.0.0.1",
            REID_PORT=str(self.ports[name]),
            REID_LOG_LEVEL="warning",
            REID_BATCH_MAX_WAIT_MS="1",
            # Longer than any wait below: a change that arrives in time came by NOTIFY.
            REID_CHANGE_POLL_INTERVAL_S="60",
        )

    def start(self, *names: str) -> None:
        for name in names:
            self.processes[name] = launch(self.env(name), self.ports[name])
        for name in names:
            wait_until_up(self.processes[name], self.ports[name])

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def client(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.base(name), timeout=60)

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def terminate(self, name: str) -> None:
        """A clean stop: the replica writes its snapshot on the way out."""
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    def ready(self, name: str) -> dict:
        response = httpx.get(f"{self.base(name)}/ready", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["checks"]


def new_cluster(postgres: PostgresServer, checkpoint: Path, root: Path) -> Cluster:
    url = postgres.fresh_url()
    engine = create_db_engine(url)
    upgrade_to_head(engine)  # once, as the deployment's migrate step does
    engine.dispose()
    return Cluster(url, checkpoint, root)


@pytest.fixture(scope="module")
def cluster(
    postgres: PostgresServer, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    cluster = new_cluster(postgres, checkpoint, tmp_path_factory.mktemp("cluster"))
    cluster.start("a", "b", "c")
    yield cluster
    for process in cluster.processes.values():
        stop(process)


def crop(pid: int, shot: int) -> bytes:
    return person_jpeg(pid, 1, shot, seed=77)


def enroll(client: httpx.Client, identity: str, *images: bytes) -> list[int]:
    response = client.post("/gallery", data={"identity": identity}, files=files(identity, *images))
    assert response.status_code == 201, response.text
    return [entry["id"] for entry in response.json()["entries"]]


def best_identity(client: httpx.Client, image: bytes) -> str | None:
    """The identity of the best match (an enrolled image matches itself at cosine 1)."""
    response = client.post("/query", files={"image": ("q.jpg", image, "image/jpeg")})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    return results[0]["identity"] if results else None


def wait_for(client: httpx.Client, image: bytes, identity: str) -> float:
    """Seconds until ``identity`` answers ``image`` on this replica."""
    started = time.monotonic()
    while best_identity(client, image) != identity:
        assert time.monotonic() - started < PROPAGATION_BOUND_S, f"{identity} never arrived"
        time.sleep(0.02)
    return time.monotonic() - started


def test_an_enrollment_is_searchable_everywhere(cluster: Cluster) -> None:
    image = crop(1, 0)
    with cluster.client("a") as a, cluster.client("b") as b, cluster.client("c") as c:
        enroll(a, "ada", image)
        assert best_identity(a, image) == "ada"  # read-your-writes: no waiting on A
        wait_for(b, image, "ada")
        wait_for(c, image, "ada")
        # ... and the crop itself is in the shared store for every replica.
        entry = a.get("/identities/ada").json()
        assert entry["identity"] == "ada"
    for name in ("a", "b", "c"):
        replication = cluster.ready(name)["replication"]
        assert replication["replica_id"] == name
        assert replication["head_seq"] >= 1


def test_an_erasure_is_effective_everywhere_as_soon_as_it_answers(cluster: Cluster) -> None:
    image = crop(2, 0)
    with cluster.client("a") as a, cluster.client("b") as b, cluster.client("c") as c:
        enroll(c, "bo", image, crop(2, 1))
        wait_for(a, image, "bo")
        response = b.delete("/identities/bo")
        assert response.status_code == 200, response.text
        # No waiting: A's index may still hold the vectors, but search resolves them
        # against the rows, which are gone.
        assert best_identity(a, image) != "bo"
        assert best_identity(c, image) != "bo"
        assert a.get("/identities/bo").status_code == 404


def test_a_killed_replica_loses_nothing_acknowledged_and_catches_up(cluster: Cluster) -> None:
    acknowledged: dict[str, bytes] = {}
    stop_sending = threading.Event()

    def send(worker: int) -> None:
        with cluster.client("a") as a:
            for n in range(200):
                if stop_sending.is_set():
                    return
                identity, image = f"k{worker}-{n}", crop(1000 + worker * 200 + n, 0)
                try:
                    response = a.post(
                        "/gallery", data={"identity": identity}, files=files(identity, image)
                    )
                except httpx.HTTPError:
                    return  # A died under this request: it was never acknowledged
                if response.status_code == 201:
                    acknowledged[identity] = image

    senders = [threading.Thread(target=send, args=(worker,)) for worker in range(2)]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.kill("a")
    stop_sending.set()
    for sender in senders:
        sender.join(timeout=60)
    assert len(acknowledged) >= 6

    with cluster.client("b") as b, cluster.client("c") as c:
        for identity, image in acknowledged.items():
            wait_for(b, image, identity)
            wait_for(c, image, identity)
        enroll(b, "while-a-was-down", crop(3, 0))

    cluster.start("a")
    with cluster.client("a") as a:
        for identity, image in acknowledged.items():
            assert best_identity(a, image) == identity
        wait_for(a, crop(3, 0), "while-a-was-down")
    replication = cluster.ready("a")["replication"]
    assert replication["applied_seq"] <= replication["head_seq"]


def test_a_replica_catches_up_from_its_snapshot_and_the_log(cluster: Cluster) -> None:
    cluster.terminate("b")
    snapshot = cluster.root / "b" / "snapshots" / "b.snapshot"
    assert snapshot.exists()

    # 10,000 changes while B is away, written the way the service writes them.
    engine = create_db_engine(cluster.url)
    try:
        with cluster.client("c") as c:
            card = c.get("/model").json()
        store = EntryStore(
            session_factory(engine), model_version=card["version"], dim=card["embedding_dim"]
        )
        rng = np.random.default_rng(5)
        for batch in range(10):
            rows = []
            for n in range(1000):
                vector = rng.standard_normal(store.dim).astype(np.float32)
                data = f"bulk-{batch}-{n}".encode()
                image = DecodedImage(
                    index=n,
                    filename="bulk.jpg",
                    data=data,
                    sha256=hashlib.sha256(data).hexdigest(),
                    image_format="JPEG",
                    width=64,
                    height=128,
                    tensor=None,  # type: ignore[arg-type]
                )
                fields = EntryFields(identity=f"bulk-{batch}-{n % 50}")
                rows.append(store.new_row(fields, image, vector / np.linalg.norm(vector)))
            store.insert(rows)
        with session_factory(engine)() as session:
            total = session.scalar(
                select(func.count()).where(GalleryEntry.model_version == card["version"])
            )
    finally:
        engine.dispose()

    cluster.start("b")
    checks = cluster.ready("b")
    startup = checks["index"]["startup"]
    assert startup["source"] == "snapshot", startup
    assert startup["replayed"] >= 10_000
    assert checks["index"]["index_entries"] == total
    assert checks["replication"]["lag_changes"] == 0


def wait_ready(cluster: Cluster, name: str) -> dict:
    """/ready's checks once it answers 200 (a new model's replica re-embeds first)."""
    started = time.monotonic()
    while True:
        response = httpx.get(f"{cluster.base(name)}/ready", timeout=30)
        if response.status_code == 200:
            return response.json()["checks"]
        assert time.monotonic() - started < 120, response.text
        time.sleep(0.2)


def test_a_model_upgrade_without_downtime(
    postgres: PostgresServer, checkpoint: Path, tmp_path: Path
) -> None:
    """Old replicas serve while a new model's replica re-embeds the stored crops; both
    generations then see every enrollment; the old version is retired at the end."""
    new_model = tmp_path / "new-model"
    network, _ = untrained_model(ModelConfig(arch="resnet18", num_classes=16), seed=1)
    save_checkpoint(network, new_model, training_data={}, metrics={})
    cluster = new_cluster(postgres, checkpoint, tmp_path / "cluster")
    cluster.models["new"] = new_model
    try:
        cluster.start("old1", "old2")
        with cluster.client("old1") as old1:
            old_version = old1.get("/model").json()["version"]
            for pid in range(10, 16):
                enroll(old1, f"u{pid}", crop(pid, 0))

        # 1. A replica of the new model starts beside them and re-embeds in the background;
        #    the old replicas answer throughout.
        cluster.start("new")
        with cluster.client("old2") as old2:
            assert best_identity(old2, crop(12, 0)) == "u12"
        checks = wait_ready(cluster, "new")
        new_version = checks["model"]["version"]
        assert new_version != old_version
        assert checks["model_version"]["gallery_versions"] == {old_version: 6, new_version: 6}

        # 2. Both generations serve: each finds what was enrolled through the other.
        with cluster.client("old1") as old1, cluster.client("new") as new:
            for pid in range(10, 16):
                assert best_identity(new, crop(pid, 0)) == f"u{pid}"
            enroll(old1, "via-old", crop(20, 0))
            wait_for(new, crop(20, 0), "via-old")
            enroll(new, "via-new", crop(21, 0))
            wait_for(old1, crop(21, 0), "via-new")

        # 3. Traffic has moved: the old replicas stop, and their version is retired.
        cluster.terminate("old1")
        cluster.terminate("old2")
        retire = subprocess.run(
            [sys.executable, "-m", "app.reembed", "--retire", old_version],
            env=cluster.env("new"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert retire.returncode == 0, retire.stderr
        checks = wait_ready(cluster, "new")
        assert checks["model_version"]["gallery_versions"] == {new_version: 8}
        with cluster.client("new") as new:
            for identity, pid in [("u10", 10), ("via-old", 20), ("via-new", 21)]:
                assert best_identity(new, crop(pid, 0)) == identity
    finally:
        for process in cluster.processes.values():
            stop(process)
