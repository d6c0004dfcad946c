"""The gallery service on the device: enrollment over HTTP against the raw forward,
GPU JPEG decoding against Pillow, and /query latency.

The service is ``python -m app`` in a subprocess (SQLite), serving the same checkpoint
this process times raw. It needs FAISS: without it the check is skipped, saying so.
Its index is whatever the start-up check picked (``/ready`` checks.index.gpu is
reported): GPU FAISS where it works, CPU FAISS otherwise.
"""

from __future__ import annotations

import importlib.util
import io
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
import torchvision
from model_forward import measure_forward_throughput
from PIL import Image
from service_common import LiveServer, make_checkpoint, person_jpegs

from acceptance.common import CheckFailed, Sizes, Skipped, synchronize
from model.checkpoint import load_checkpoint
from model.compute import ComputeSettings


def _post_gallery(client: httpx.Client, tag: str, crops: list[bytes]) -> float:
    files = [("images", (f"{i}.jpg", crop, "image/jpeg")) for i, crop in enumerate(crops)]
    started = time.perf_counter()
    response = client.post("/gallery", data={"identity": tag}, files=files)
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        raise CheckFailed(f"POST /gallery answered {response.status_code}: {response.text[:300]}")
    return seconds


def _enrollment(client: httpx.Client, device: torch.device, sizes: Sizes, ckpt: Path) -> dict:
    network, _ = load_checkpoint(ckpt)
    compute = ComputeSettings.resolve(device, "auto", "auto")
    report = {}
    offset = 0
    for batch in sizes.enroll_batches:
        raw = measure_forward_throughput(network, batch, max(2, sizes.enroll_requests), compute)
        _post_gallery(client, f"warm-{batch}", person_jpegs(batch, offset=10**6 + offset))
        seconds = []
        for request in range(sizes.enroll_requests):
            crops = person_jpegs(batch, offset=offset)
            offset += batch
            seconds.append(_post_gallery(client, f"b{batch}-{request}", crops))
        http = batch / statistics.median(seconds)
        report[str(batch)] = {
            "http_crops_per_s": round(http, 1),
            "raw_forward_crops_per_s": round(raw, 1),
            "ratio": round(http / raw, 3),
        }
    return report


def _decoding(device: torch.device, sizes: Sizes) -> dict[str, Any]:
    crops = person_jpegs(sizes.decode_images, offset=5 * 10**6)
    started = time.perf_counter()
    pillow = [np.asarray(Image.open(io.BytesIO(crop)).convert("RGB")) for crop in crops]
    pillow_s = time.perf_counter() - started
    data = [torch.frombuffer(bytearray(crop), dtype=torch.uint8) for crop in crops]
    try:
        torchvision.io.decode_jpeg(data[:2], device=device)  # first call loads the decoder
    except RuntimeError as error:  # a torchvision built without its image extension
        return {"skipped": f"torchvision cannot decode JPEG on {device.type}: {error}"[:300]}
    synchronize(device)
    started = time.perf_counter()
    decoded = torchvision.io.decode_jpeg(data, device=device)
    synchronize(device)
    torch_s = time.perf_counter() - started
    # Two decoders round differently; a crop must still be the same picture.
    gap = float(np.abs(decoded[0].permute(1, 2, 0).cpu().numpy().astype(int) - pillow[0]).mean())
    if gap > 8:
        raise CheckFailed(f"torchvision's {device.type} JPEG decode differs from Pillow's by {gap}")
    return {
        "images": len(crops),
        "pillow_images_per_s": round(len(crops) / pillow_s, 1),
        f"torchvision_{device.type}_images_per_s": round(len(crops) / torch_s, 1),
        "mean_abs_pixel_difference": round(gap, 2),
    }


def _queries(client: httpx.Client, sizes: Sizes) -> dict[str, Any]:
    crops = person_jpegs(sizes.queries, offset=7 * 10**6)
    seconds = []
    for crop in crops:
        started = time.perf_counter()
        response = client.post("/query", files={"image": ("q.jpg", crop, "image/jpeg")})
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200 or not response.json()["results"]:
            raise CheckFailed(f"POST /query answered {response.status_code}: {response.text[:300]}")
    ordered = sorted(seconds)
    return {
        "queries": len(ordered),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
    }


def service(device: torch.device, sizes: Sizes, work: Path) -> dict[str, Any]:
    if importlib.util.find_spec("faiss") is None:
        raise Skipped("faiss is not installed (carry the faiss-cpu wheel, docs/benchmarks.md)")
    checkpoint = make_checkpoint(work, sizes.arch)
    largest = max(sizes.enroll_batches)
    settings = {
        "REID_MODEL_PATH": str(checkpoint),
        "REID_DATA_DIR": str(work / "service"),
        "REID_DEVICE": device.type,
        "REID_LOG_LEVEL": "warning",
        "REID_BATCH_MAX_SIZE": str(largest),
        "REID_MAX_FILES_PER_REQUEST": str(largest),
    }
    server = LiveServer(settings, work / "service.log")
    try:
        ready_s = server.wait_ready(timeout_s=180)
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            index = client.get("/ready").json()["checks"]["index"]
            report = {
                "ready_s": round(ready_s, 1),
                "index_gpu": index["gpu"],
                "enroll": _enrollment(client, device, sizes, checkpoint),
                "query": _queries(client, sizes),
            }
    finally:
        server.stop()
    report["jpeg_decode"] = _decoding(device, sizes)
    return report
