"""GET /gallery/{id}/thumbnail: small JPEGs of stored crops, cached on disk, erased with them."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_kit import ServiceHandle, assert_error, encode, files, person_jpeg, unique

from app.gallery.crops import CropStore
from app.gallery.thumbnails import Thumbnails, ThumbnailSize

SIZES = (64, 128, 256)


def enroll(client: TestClient, identity: str, *images: bytes) -> list[dict]:
    response = client.post("/gallery", data={"identity": identity}, files=files("t", *images))
    assert response.status_code == 201, response.text
    return response.json()["entries"]


def thumbnail(client: TestClient, entry_id: int, size: object = None) -> Image.Image:
    params = {} if size is None else {"size": size}
    response = client.get(f"/gallery/{entry_id}/thumbnail", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "private, max-age=3600"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG"
    return image


def cached(data_dir: Path, sha256: str) -> list[Path]:
    return sorted((data_dir / "crops" / "thumbnails").rglob(f"{sha256}*"))


def picture(width: int, height: int) -> bytes:
    rng = np.random.default_rng(width * 10_000 + height)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def test_thumbnails_fit_keep_aspect_and_are_never_enlarged(service: ServiceHandle) -> None:
    with service.client() as client:
        tall, wide, tiny = enroll(
            client, unique(), picture(300, 600), picture(1000, 250), picture(20, 40)
        )
        assert thumbnail(client, tall["id"]).size == (64, 128)  # default: 128
        assert thumbnail(client, tall["id"], 64).size == (32, 64)
        assert thumbnail(client, tall["id"], 256).size == (128, 256)
        assert thumbnail(client, wide["id"], 256).size == (256, 64)
        assert thumbnail(client, wide["id"], 64).size == (64, 16)
        for size in SIZES:
            assert thumbnail(client, tiny["id"], size).size == (20, 40)
        # One file per crop and size, named by the crop's hash; nothing half-written.
        names = [path.name for path in cached(service.data_dir, tall["sha256"])]
        assert names == sorted(f"{tall['sha256']}.{size}.jpg" for size in SIZES)
        assert not list((service.settings.thumbnails_dir).rglob("*.tmp"))


def test_a_thumbnail_is_rendered_once_then_served_from_the_cache(service: ServiceHandle) -> None:
    with service.client() as client:
        (entry,) = enroll(client, unique(), person_jpeg(1, 1, 0))
        first = client.get(f"/gallery/{entry['id']}/thumbnail").content
        (path,) = cached(service.data_dir, entry["sha256"])
        assert path.read_bytes() == first
        # Served from the cache: a marker written there comes back as it is ...
        marker = encode(Image.new("RGB", (3, 5), (250, 0, 0)), "JPEG")
        path.write_bytes(marker)
        assert client.get(f"/gallery/{entry['id']}/thumbnail").content == marker
        # ... even with the crop gone, while an uncached size needs the crop.
        crop = service.data_dir / "crops" / entry["sha256"][:2] / entry["sha256"][2:4]
        (crop / entry["sha256"]).unlink()
        assert client.get(f"/gallery/{entry['id']}/thumbnail?size=128").content == marker
        missing = client.get(f"/gallery/{entry['id']}/thumbnail?size=64")
        assert_error(missing, 404, "image_not_found")


def test_bad_requests_get_precise_errors(service: ServiceHandle) -> None:
    with service.client() as client:
        (entry,) = enroll(client, unique(), person_jpeg(2, 1, 0))
        for size in ("100", "0", "512", "large", "-64"):
            error = assert_error(
                client.get(f"/gallery/{entry['id']}/thumbnail", params={"size": size}),
                422,
                "validation_error",
            )
            assert error["details"][0]["loc"] == ["query", "size"]
        assert_error(client.get("/gallery/999999/thumbnail"), 404, "entry_not_found")
        assert_error(client.get("/gallery/0/thumbnail"), 422, "validation_error")
        # A stored crop that no longer decodes is a missing image, not a server error.
        sha = entry["sha256"]
        (service.data_dir / "crops" / sha[:2] / sha[2:4] / sha).write_bytes(b"garbage")
        assert_error(client.get(f"/gallery/{entry['id']}/thumbnail"), 404, "image_not_found")


def test_erasure_deletes_the_cached_thumbnails(service: ServiceHandle) -> None:
    with service.client() as client:
        person, other = unique("erased"), unique("kept")
        erased = enroll(client, person, person_jpeg(3, 1, 0), person_jpeg(3, 2, 0))
        (kept,) = enroll(client, other, person_jpeg(4, 1, 0))
        (single,) = enroll(client, other, person_jpeg(4, 2, 0))
        for entry in [*erased, kept, single]:
            for size in SIZES:
                thumbnail(client, entry["id"], size)
            assert len(cached(service.data_dir, entry["sha256"])) == 3

        assert client.delete(f"/identities/{person}").status_code == 200
        for entry in erased:
            assert cached(service.data_dir, entry["sha256"]) == []
            assert_error(client.get(f"/gallery/{entry['id']}/thumbnail"), 404, "entry_not_found")
        assert client.delete(f"/gallery/{single['id']}").status_code == 200
        assert cached(service.data_dir, single["sha256"]) == []
        assert len(cached(service.data_dir, kept["sha256"])) == 3  # nobody else's


def test_the_orphan_sweep_removes_thumbnails_no_entry_holds(service: ServiceHandle) -> None:
    with service.client() as client:
        (entry,) = enroll(client, unique(), person_jpeg(5, 1, 0))
        thumbnail(client, entry["id"], 64)
    # As a crash between a deletion's commit and the removal of its files leaves them.
    stray = "ab" * 32
    leftover = service.settings.thumbnails_dir / "ab" / "ab" / f"{stray}.128.jpg"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"a thumbnail of someone erased")
    with service.client():  # the first maintenance pass after start-up sweeps
        deadline = time.monotonic() + 30
        while leftover.exists():
            assert time.monotonic() < deadline, "the orphaned thumbnail was not swept"
            time.sleep(0.05)
    assert len(cached(service.data_dir, entry["sha256"])) == 1


def test_a_thumbnail_rendered_while_its_entry_is_deleted_is_not_kept(tmp_path: Path) -> None:
    crops = CropStore(tmp_path / "crops")
    sha = "cd" * 32
    crops.put(sha, person_jpeg(6, 1, 0))
    thumbnails = Thumbnails(tmp_path / "thumbnails", crops)
    # The deletion committed while the thumbnail rendered: it is not kept, nor served.
    assert thumbnails.get(sha, ThumbnailSize.SMALL, lambda _: False) is None
    assert not list((tmp_path / "thumbnails").rglob("*.jpg"))
    data = thumbnails.get(sha, ThumbnailSize.SMALL, lambda _: True)
    assert data is not None and thumbnails.path_for(sha, 64).read_bytes() == data
    assert thumbnails.delete([sha]) == 1
    with pytest.raises(FileNotFoundError):
        thumbnails.get("ef" * 32, ThumbnailSize.SMALL, lambda _: True)
