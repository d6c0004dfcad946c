"""The console in a real browser (Debian's Chromium, driven by Playwright) on a live uvicorn.

Every test drives the pages the way an operator would: files picked in real file
inputs, buttons clicked, results read from the fixed automation hooks
(``data-identity``, ``data-score``, ``data-overlay``), never from layout. Set
REID_CONSOLE_SCREENSHOTS=DIR to keep the screenshots the docs show (docs/console.md says
how they were made).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import free_port, live_server, service_environment
from PIL import Image
from service_kit import files, person_jpeg

from app.api.auth import hash_key

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
        "(`make test` does when it runs as root)",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

KEYS = {role: f"reid_console_key_for_{role}_0123456789abcdef" for role in ("read", "admin")}
KEY_CONFIG = [
    {"name": f"{role}-operator", "role": role, "sha256": hash_key(key)}
    for role, key in KEYS.items()
]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def console(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on SQLite with a read key and an admin key; the page is the subject here,
    so the small untrained checkpoint serves (REID_CONSOLE_CHECKPOINT: another, e.g. the
    demo's, for screenshots whose rankings mean something)."""
    port = free_port()
    env = service_environment(
        REID_DATA_DIR=str(tmp_path_factory.mktemp("console") / "data"),
        REID_MODEL_PATH=os.environ.get("REID_CONSOLE_CHECKPOINT", str(checkpoint)),
        REID_DEVICE="cpu",
        REID_PORT=str(port),
        REID_API_KEYS=json.dumps(KEY_CONFIG),
    )
    with live_server(env, port) as (base, _process):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page_for(browser: Any, console: str) -> Iterator[Any]:
    """A fresh tab (own sessionStorage) signed in with a role's key through the key dialog."""
    contexts = []

    def open_page(role: str) -> Any:
        context = browser.new_context(base_url=console, viewport={"width": 1100, "height": 760})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        page.goto("/ui/")
        page.fill("#api-key", KEYS[role])
        page.click("#key-form button[type=submit]")
        page.wait_for_selector(f"#who >> text={role}-operator")
        return page

    yield open_page
    for context in contexts:
        context.close()


def api(console: str, role: str = "admin") -> httpx.Client:
    return httpx.Client(base_url=console, headers={"X-API-Key": KEYS[role]}, timeout=60)


def write_crops(directory: Path, names_and_bytes: dict[str, bytes]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in names_and_bytes.items():
        (directory / name).write_bytes(data)
    return [str(directory / name) for name in names_and_bytes]


def reencoded(jpeg: bytes) -> bytes:
    """The same picture as new bytes (PNG): a query the gallery has not stored."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(buffer, "PNG")
    return buffer.getvalue()


def loaded(page: Any, selector: str) -> None:
    page.wait_for_function(
        "selector => { const image = document.querySelector(selector);"
        " return image !== null && image.complete && image.naturalWidth > 0; }",
        arg=selector,
    )


def screenshot(page: Any, name: str, selector: str = "body") -> None:
    if directory := os.environ.get("REID_CONSOLE_SCREENSHOTS"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        shot = Image.open(io.BytesIO(page.locator(selector).screenshot()))
        # a 128-colour palette keeps the docs' PNGs small; the crops stay recognisable
        shot.convert("RGB").quantize(colors=128).save(Path(directory) / name, optimize=True)


def test_enroll_search_and_erase_through_the_pages(
    page_for: Any, console: str, tmp_path: Path
) -> None:
    page = page_for("admin")
    crops = {f"carol_{shot}.jpg": person_jpeg(71, 1, shot, seed=0) for shot in range(3)}
    crops["notes.txt.jpg"] = b"this is not an image"
    paths = write_crops(tmp_path / "carol", crops)

    page.click("nav >> text=Enroll")
    page.fill("#enroll-identity", "carol")
    page.fill("#enroll-camera", "lobby-2")
    page.set_input_files("#enroll-files", paths)
    page.click("#enroll-form button[type=submit]")
    page.wait_for_selector("#enroll-summary")
    statuses = page.eval_on_selector_all(
        "#enroll-results tr[data-status]",
        "rows => rows.map(r => [r.dataset.file, r.dataset.status])",
    )
    assert statuses == [
        ["carol_0.jpg", "created"],
        ["carol_1.jpg", "created"],
        ["carol_2.jpg", "created"],
        ["notes.txt.jpg", "refused"],
    ]
    assert "(invalid_image)" in page.inner_text("tr[data-file='notes.txt.jpg']")
    dave = write_crops(tmp_path / "dave", {"dave_0.jpg": person_jpeg(72, 2, 0, seed=0)})
    page.fill("#enroll-identity", "dave")
    page.fill("#enroll-camera", "gate-1")
    page.fill("#enroll-time", "2026-03-01T08:15")  # no zone: the API takes it as UTC
    page.set_input_files("#enroll-files", dave)
    page.click("#enroll-form button[type=submit]")
    page.wait_for_selector("#enroll-results tr[data-status=created]")

    query = write_crops(tmp_path / "query", {"who.png": reencoded(crops["carol_1.jpg"])})
    page.click("nav >> text=Search")
    page.set_input_files("#search-form input[type=file][name=image]", query)
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results .result")
    first = page.query_selector("#results .result")
    assert first.get_attribute("data-identity") == "carol"
    assert float(first.get_attribute("data-score")) > 0.99
    loaded(page, "#results .result img.thumb")
    loaded(page, "img[data-overlay=query]")
    loaded(page, "img[data-overlay=match]")
    assert page.get_attribute("#decision", "data-status") == "uncalibrated"
    screenshot(page, "console_search.png", "#search-results")

    page.goto("/ui/#/identity/dave")
    page.wait_for_selector("#erase")
    assert page.inner_text("#identity-captured") == "2026-03-01T08:15:00Z"
    screenshot(page, "console_identity.png")
    page.click("#erase")
    summary = page.inner_text("#erase-summary")
    assert '"dave"' in summary and "1 entry" in summary and "gate-1" in summary
    page.click("#erase-confirm")
    page.wait_for_selector("text=Erased dave: 1 entry deleted.")
    assert page.query_selector("#gallery-grid [data-identity=dave]") is None
    with api(console) as client:
        assert client.get("/identities/dave").status_code == 404
        assert client.get("/identities/carol").json()["entry_count"] == 3
    assert page.errors == []


def test_an_evaluation_job_finishes_with_its_cmc_plot(
    page_for: Any, console: str, tmp_path: Path
) -> None:
    with api(console) as client:
        for pid in (81, 82):
            shots = [person_jpeg(pid, 1, shot, seed=0) for shot in range(2)]
            response = client.post(
                "/gallery", data={"identity": f"p{pid}"}, files=files("g", *shots)
            )
            assert response.status_code == 201, response.text
        gallery_size = len(client.get("/gallery", params={"limit": 500}).json()["items"])
    queries = write_crops(
        tmp_path / "queries",
        {
            f"p{pid}_c2_{shot}.jpg": person_jpeg(pid, 2, shot, seed=0)
            for pid in (81, 82)
            for shot in (5, 6)
        },
    )
    page = page_for("admin")
    page.click("nav >> text=Evaluate")
    page.set_input_files("#evaluate-images", queries)
    identities = page.eval_on_selector_all(
        "#evaluate-labels input[name^=identity]", "inputs => inputs.map(i => i.value)"
    )
    assert identities == ["p81", "p81", "p82", "p82"]  # guessed from the file names
    page.click("#evaluate-labelled-form button[type=submit]")
    page.wait_for_selector("svg[data-plot=cmc]")
    assert page.get_attribute("svg[data-plot=cmc] polyline", "points").count(",") == 20
    assert page.get_attribute("#job-progress", "value") == "1"
    assert page.inner_text("#job-status") == "succeeded"
    assert "mAP" in page.inner_text("#evaluate-metrics")
    rows = page.query_selector_all("#ranked-lists .ranked")
    assert len(rows) == 4
    for row in rows:  # the top 10 of a gallery of at most 10: each identity's 2 entries in it
        marks = [
            figure.get_attribute("data-correct") for figure in row.query_selector_all("figure")
        ]
        assert len(marks) == min(10, gallery_size) and marks.count("true") == 2
    loaded(page, "#ranked-lists .ranked figure img")
    screenshot(page, "console_evaluation.png", "#evaluate-job")
    assert page.errors == []


def test_a_read_only_key_sees_no_delete_and_a_forced_delete_is_refused(
    page_for: Any, console: str
) -> None:
    with api(console) as client:
        response = client.post(
            "/gallery", data={"identity": "erin"}, files=files("e", person_jpeg(51, 1, 0, seed=7))
        )
        assert response.status_code == 201, response.text
    page = page_for("read")
    assert page.query_selector("nav >> text=Enroll") is None
    assert page.query_selector("nav >> text=Evaluate") is None
    page.goto("/ui/#/identity/erin")
    page.wait_for_selector("#identity-count")
    assert page.query_selector("#erase") is None
    forced = page.evaluate(
        """async key => {
            const response = await fetch("/identities/erin",
                {method: "DELETE", headers: {"X-API-Key": key}});
            return [response.status, (await response.json()).error.code];
        }""",
        KEYS["read"],
    )
    assert forced == [403, "forbidden"]
    with api(console) as client:
        assert client.get("/identities/erin").json()["entry_count"] == 1
    assert page.errors == []


def test_the_console_loads_nothing_from_another_origin(page_for: Any, console: str) -> None:
    page = page_for("admin")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.reload()  # the page's own files too, not only what its scripts fetch
    for name in ("search", "enroll", "gallery", "evaluate", "model"):
        page.goto(f"/ui/#/{name}")
        page.wait_for_selector("main#view h1")
    assert f"{console}/ui/js/main.js" in requested and f"{console}/model" in requested
    # blob: URLs are thumbnails this page fetched from the service and holds in memory
    foreign = [url for url in requested if not url.startswith((console + "/", "blob:" + console))]
    assert foreign == []


def test_without_keys_or_model_the_console_opens_from_root_and_says_what_is_missing(
    browser: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = service_environment(
        REID_DATA_DIR=str(tmp_path / "data"), REID_DEVICE="cpu", REID_PORT=str(port)
    )
    with live_server(env, port) as (base, _process):
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{base}/")  # a browser asks for text/html: sent on to the console
        assert page.url == f"{base}/ui/"
        page.wait_for_selector("#search-form")
        assert page.is_hidden("#key-dialog")  # no keys: loopback clients need none
        assert "local access" in page.inner_text("#who")
        banner = page.inner_text("#banner")
        assert "UNTRAINED" in banner and "make demo" in banner
        page.close()
