"""Restarts: snapshot or rebuild, reconcile, and refusing to mix model versions."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_kit import ServiceHandle, files, person_jpeg
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from app import reembed
from app.db.models import GalleryEntry
from app.gallery.change_log import ChangeLog
from model.checkpoint import save_checkpoint, untrained_model
from model.config import ModelConfig


def enroll(client: TestClient, identity: str, pid: int, shots: int = 2) -> list[int]:
    images = [person_jpeg(pid, 1, shot, seed=3) for shot in range(shots)]
    response = client.post("/gallery", data={"identity": identity}, files=files(identity, *images))
    assert response.status_code == 201, response.text
    return [entry["id"] for entry in response.json()["entries"]]


def index_check(client: TestClient) -> dict:
    response = client.get("/ready")
    assert response.status_code == 200, response.text
    return response.json()["checks"]["index"]


def top_identities(client: TestClient, pid: int) -> list[str]:
    response = client.post(
        "/query",
        data={"top_k": "100"},
        files={"image": ("q.jpg", person_jpeg(pid, 2, 99, seed=3), "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    return [result["identity"] for result in response.json()["results"]]


def copy_row_as(database_url: str, source_id: int, identity: str) -> int:
    """Commit a row behind the service's back, as a crash after commit would leave it."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            source = session.get(GalleryEntry, source_id)
            assert source is not None
            row = GalleryEntry(
                identity=identity,
                sha256=hashlib.sha256(identity.encode()).hexdigest(),
                image_format=source.image_format,
                width=source.width,
                height=source.height,
                byte_size=source.byte_size,
                embedding=source.embedding,
                embedding_dim=source.embedding_dim,
                model_version=source.model_version,
            )
            session.add(row)
            session.commit()
            return row.id
    finally:
        engine.dispose()


def delete_row(database_url: str, entry_id: int) -> None:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            session.execute(delete(GalleryEntry).where(GalleryEntry.id == entry_id))
            session.commit()
    finally:
        engine.dispose()


def prune_change_log(database_url: str) -> None:
    """Prune the log as retention would once every replica had applied it."""
    engine = create_engine(database_url)
    try:
        log = ChangeLog(sessionmaker(engine))
        log.prune(log.head())
    finally:
        engine.dispose()


def test_matching_snapshot_is_used_and_stale_or_corrupt_ones_are_rebuilt(
    service: ServiceHandle,
) -> None:
    url = service.settings.resolved_database_url
    snapshot = service.settings.snapshot_path
    with service.client() as client:
        first = enroll(client, "anna", pid=1)
    assert snapshot.exists()  # written at shutdown
    older = snapshot.with_name("older.snapshot")
    shutil.copy(snapshot, older)

    with service.client() as client:
        step = index_check(client)
        assert step["startup"]["source"] == "snapshot"
        assert step["index_entries"] == 2
        enroll(client, "bert", pid=2)
        assert {"anna", "bert"} <= set(top_identities(client, 1))

    # Older: put the older snapshot back, and commit a row behind the change log's back.
    # The log since the snapshot is replayed (bert), the safety net reconciles carl.
    shutil.copy(older, snapshot)
    direct = copy_row_as(url, first[0], "carl")
    with service.client() as client:
        step = index_check(client)
        assert step["startup"]["source"] == "snapshot"
        assert step["startup"]["replayed"] == 2
        assert step["reconciled"]["added"] == 1
        assert step["index_entries"] == step["db_entries"] == 5
        assert step["db_max_id"] == direct
        assert {"anna", "bert", "carl"} <= set(top_identities(client, 1))

    # Stale: the log no longer reaches back to the older snapshot, so it is rebuilt.
    shutil.copy(older, snapshot)
    prune_change_log(url)
    with service.client() as client:
        step = index_check(client)
        assert step["startup"]["source"] == "rebuild"
        assert "older than the change log keeps" in step["startup"]["reason"]
        assert step["index_entries"] == step["db_entries"] == 5

    # Corrupt: overwrite bytes in the middle of the index payload.
    data = bytearray(snapshot.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 64] = os.urandom(64)
    snapshot.write_bytes(bytes(data))
    with service.client() as client:
        step = index_check(client)
        assert step["startup"]["source"] == "rebuild"
        assert step["index_entries"] == 5

    # Garbage that is not a snapshot at all.
    snapshot.write_bytes(b"not a snapshot")
    with service.client() as client:
        step = index_check(client)
        assert step["startup"]["source"] == "rebuild"
        assert "magic" in step["startup"]["reason"] or "truncated" in step["startup"]["reason"]
        assert set(top_identities(client, 1)) == {"anna", "bert", "carl"}

    # The rebuild replaced the bad snapshot at shutdown, so the next start is fast again.
    with service.client() as client:
        assert index_check(client)["startup"]["source"] == "snapshot"


def test_rows_changed_behind_the_services_back_are_reconciled(service: ServiceHandle) -> None:
    url = service.settings.resolved_database_url
    with service.client() as client:
        ids = enroll(client, "dora", pid=3)
        added = copy_row_as(url, ids[0], "emil")  # another process committed a row
        delete_row(url, ids[1])  # ... and deleted one, neither through the change log
        client.app.state.services.gallery.lifecycle.follower.catch_up()
        # Readiness only reads: once the follower has caught up with the log, it
        # reports the index out of step with the rows, and changes nothing ...
        lagging = client.get("/ready")
        assert lagging.status_code == 503
        assert lagging.json()["checks"]["index"]["ok"] is False
        assert client.get("/ready").json()["checks"]["index"]["db_max_id"] == added
        # ... until the maintenance pass reconciles, which readiness then reports. (The
        # deletion needs the reconcile only if the follower applied dora's enrollment
        # before it: applying it afterwards re-reads her rows and finds one gone.)
        client.app.state.services.maintenance.run_once()
        step = index_check(client)
        assert step["reconciled"]["added"] == 1
        assert step["reconciled"]["removed"] in (0, 1)
        assert step["ok"] and step["index_entries"] == 2
        results = client.post(
            "/query", files={"image": ("q.jpg", person_jpeg(3, 1, 0, seed=3), "image/jpeg")}
        ).json()["results"]
        assert {r["entry_id"] for r in results} == {ids[0], added}


def run_reembed(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings_env: dict[str, str],
) -> tuple[int, str, str]:
    """Run ``python -m app.reembed``'s main in-process (same code, no interpreter start-up)."""
    for name in [name for name in os.environ if name.startswith("REID_")]:
        monkeypatch.delenv(name)
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = reembed.main(["--batch-size", "2"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_model_change_is_refused_until_reembedded(
    make_service: Callable[..., ServiceHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = make_service()
    with service.client() as client:
        enroll(client, "fred", pid=4, shots=3)
        old_version = client.get("/model").json()["version"]

    # The new model also takes another crop size: re-embedding resizes to the new model's.
    other = tmp_path / "other-model"
    config = ModelConfig(arch="resnet18", num_classes=16, input_height=128, input_width=64)
    network, _ = untrained_model(config, seed=1)
    save_checkpoint(network, other, training_data={}, metrics={})
    # Without the background re-embedding, the switched service waits for the tool.
    switched = service.with_settings(model_path=other, reembed_in_background=False)
    with switched.client() as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        check = ready.json()["checks"]["model_version"]
        assert check["ok"] is False
        assert check["gallery_versions"] == {old_version: 3}
        assert "python -m app.reembed" in check["message"]
        for response in (
            client.post("/gallery", data={"identity": "gina"}, files=files("g", person_jpeg(5))),
            client.post("/query", files={"image": ("q.jpg", person_jpeg(4), "image/jpeg")}),
        ):
            assert response.status_code == 409
            assert response.json()["error"]["code"] == "model_version_mismatch"
            assert "python -m app.reembed" in response.json()["error"]["message"]
        assert client.get("/gallery").status_code == 200  # reading and erasing still work

    settings = switched.settings
    code, out, err = run_reembed(
        monkeypatch,
        capsys,
        {
            "REID_DATABASE_URL": settings.resolved_database_url,
            "REID_DATA_DIR": str(settings.data_dir),
            "REID_MODEL_PATH": str(other),
            "REID_DEVICE": "cpu",
        },
    )
    assert code == 0, err
    assert "re-embedded 3 entries" in out

    with switched.client() as client:
        assert client.get("/ready").status_code == 200
        new_model = client.get("/model").json()
        new_version = new_model["version"]
        assert new_model["input_size"] == [3, 128, 64]
        entries = client.get("/gallery").json()["items"]
        assert {entry["model_version"] for entry in entries} == {new_version}
        assert top_identities(client, 4) == ["fred"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_reembed_reports_missing_crops(
    service: ServiceHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with service.client() as client:
        ids = enroll(client, "hans", pid=6)
    engine = create_engine(service.settings.resolved_database_url)
    with Session(engine) as session:
        gone = session.scalar(select(GalleryEntry.sha256).where(GalleryEntry.id == ids[0]))
    engine.dispose()
    assert gone is not None
    (service.settings.crop_store_dir / gone[:2] / gone[2:4] / gone).unlink()
    other = tmp_path / "third-model"
    network, _ = untrained_model(ModelConfig(arch="resnet18", num_classes=16), seed=2)
    save_checkpoint(network, other, training_data={}, metrics={})
    code, _out, err = run_reembed(
        monkeypatch,
        capsys,
        {
            "REID_DATABASE_URL": service.settings.resolved_database_url,
            "REID_DATA_DIR": str(service.settings.data_dir),
            "REID_MODEL_PATH": str(other),
        },
    )
    assert code == 1
    assert f"ids [{ids[0]}]" in err


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_without_a_checkpoint_an_untrained_model_serves_flagged(
    make_service: Callable[..., ServiceHandle],
) -> None:
    service = make_service(model_path=None)
    with service.client() as client:
        card = client.get("/model").json()
        assert card["trained"] is False
        assert card["version"].startswith("untrained-")
        assert "UNTRAINED" in card["warning"]
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["model"]["trained"] is False
        assert "UNTRAINED" in ready.json()["checks"]["model"]["warning"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_hnsw_deletes_by_tombstone_across_restarts_until_compacted(
    make_service: Callable[..., ServiceHandle],
) -> None:
    service = make_service(index_type="hnsw", index_compact_fraction=0.5)
    with service.client() as client:
        ids = enroll(client, "ines", pid=7, shots=3)
        assert client.delete(f"/gallery/{ids[0]}").status_code == 200
        step = index_check(client)
        assert step["index_type"] == "hnsw" and step["tombstones"] == 1
        assert step["index_entries"] == step["db_entries"] == 2
        results = client.post(
            "/query", files={"image": ("q.jpg", person_jpeg(7, 1, 0, seed=3), "image/jpeg")}
        ).json()["results"]
        assert results[0]["entry_id"] != ids[0] and results[0]["matches"] == 2
    with service.client() as client:  # the snapshot carries the tombstone (1/3 < 0.5)
        step = index_check(client)
        assert step["startup"]["source"] == "snapshot" and step["tombstones"] == 1
        assert client.delete(f"/gallery/{ids[1]}").status_code == 200
        lifecycle = client.app.state.services.gallery.lifecycle
        assert lifecycle.maybe_rebuild()  # the maintenance loop's check: 2/3 >= 0.5
        step = index_check(client)
        assert step["tombstones"] == 0 and step["index_entries"] == 1
