"""The crop store shared by replicas: sweeps never take a crop an enrollment is reusing,
and concurrent writers of one crop leave one whole file."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from app.gallery.crops import CropStore


def aged(store: CropStore, data: bytes, hours: float) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert store.put(sha, data)
    past = time.time() - hours * 3600
    os.utime(store.path_for(sha), (past, past))
    return sha


def test_a_sweep_keeps_an_old_orphan_that_an_enrollment_just_reused(tmp_path: Path) -> None:
    store = CropStore(tmp_path / "crops")
    forgotten = aged(store, b"left by a crash", hours=2)
    reused = aged(store, b"left by a crash, enrolled again", hours=2)
    # Another replica's enrollment finds the file present: no rewrite, but a fresh mtime,
    # so a sweep running before that enrollment commits leaves it alone.
    assert store.put(reused, b"left by a crash, enrolled again") is False
    assert store.sweep_orphans(lambda hashes: set()) == 1
    assert not store.path_for(forgotten).exists()
    assert store.path_for(reused).exists()


def test_concurrent_writers_of_one_crop_leave_one_whole_file(tmp_path: Path) -> None:
    stores = [CropStore(tmp_path / "crops") for _ in range(2)]  # two replicas, one volume
    data = os.urandom(512 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    writers = [threading.Thread(target=stores[n % 2].put, args=(sha, data)) for n in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert stores[0].get(sha) == data
    assert not list((tmp_path / "crops").rglob("*.tmp"))
