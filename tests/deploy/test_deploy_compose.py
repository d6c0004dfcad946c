"""docker-compose.yml, the CPU override and docker/.env.example, read as data.

CI has no Docker engine, so these tests hold the files to what `docker compose up`
needs: the services and their wiring, named volumes, no secrets, and REID_* names
that the service's settings class actually reads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
NAMED_VOLUME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
INTERPOLATION = re.compile(r"^\$\{[A-Z_]+(:?[-?][^}]*)?\}$")
# Host paths a reader is told about in docker-compose.yml's header; both read-only.
DOCUMENTED_BINDS = {
    ("train", "/dataset"),
    ("prometheus", "/etc/prometheus/prometheus.yml"),
    ("lb", "/var/run/docker.sock"),
}
ONE_GPU = {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Volumes in long form: type, source, target, read_only."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append(volume)
            continue
        source, target, *mode = volume.split(":")
        kind = "volume" if NAMED_VOLUME.match(source) else "bind"
        mounts.append(
            {"type": kind, "source": source, "target": target, "read_only": mode == ["ro"]}
        )
    return mounts


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"api", "lb", "db", "train", "prometheus"}
    assert compose["services"]["train"]["profiles"] == ["train"]
    assert compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    assert "profiles" not in compose["services"]["api"]
    assert "profiles" not in compose["services"]["db"]
    assert "profiles" not in compose["services"]["lb"]


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        if "build" in service:
            assert image.startswith("reid:"), name
            continue
        _, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: pin {image}"
    assert re.fullmatch(r"postgres:16\.\d+(-\w+)?", compose["services"]["db"]["image"])


def test_db_health_check_and_volume(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    (data,) = _mounts(db)
    assert data["type"] == "volume" and data["target"] == "/var/lib/postgresql/data"
    # `:?` makes compose stop with a message while the password is unset or empty ...
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # ... and the example ships none, so no deployment runs on a published default.
    example = (REPO / "docker" / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^POSTGRES_PASSWORD=$", example, flags=re.MULTILINE)


def test_api_waits_for_a_healthy_db_and_has_its_own_health_check(
    compose: dict[str, Any],
) -> None:
    api = compose["services"]["api"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    test = api["healthcheck"]["test"]
    assert test[0] == "CMD" and "/app/docker/healthcheck.py" in test and "/ready" in test
    # No command/entrypoint override: the image's entrypoint waits, migrates, serves.
    assert "command" not in api and "entrypoint" not in api
    assert api["env_file"] == ".env"


def test_api_scales_behind_a_load_balancer_that_reads_ready(compose: dict[str, Any]) -> None:
    """`--scale api=3` must work: no replica publishes a host port or names its container
    (either would collide), and the balancer routes only to replicas whose /ready is 200."""
    api, lb = compose["services"]["api"], compose["services"]["lb"]
    assert "ports" not in api and "container_name" not in api and "hostname" not in api
    assert api["expose"] == ["8000"]
    assert any(str(port).endswith(":8000") for port in lb["ports"])
    labels = api["labels"]
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.http.services.reid.loadbalancer.server.port"] == "8000"
    assert labels["traefik.http.services.reid.loadbalancer.healthcheck.path"] == "/ready"
    assert "--providers.docker.exposedbydefault=false" in lb["command"]
    assert "--entrypoints.web.address=:8000" in lb["command"]
    assert lb["depends_on"]["api"]["condition"] == "service_healthy"
    (socket,) = _mounts(lb)
    assert socket["read_only"]


def test_gpu_reservation(compose: dict[str, Any]) -> None:
    for name in ("api", "train"):
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [ONE_GPU], name
    assert compose["services"]["api"]["build"]["args"]["VARIANT"] == "gpu"


def test_train_profile_writes_the_checkpoint_the_api_reads(
    compose: dict[str, Any], env_example: dict[str, bool], repo: Path
) -> None:
    train, api = compose["services"]["train"], compose["services"]["api"]
    assert train["entrypoint"] == ["python", "-m", "training.run"]
    command = train["command"]
    output_dir = command[command.index("--output-dir") + 1]
    assert command[command.index("--data-dir") + 1] == "/dataset"
    assert command[command.index("--device") + 1] == "cuda"
    preset = command[command.index("--preset") + 1]
    assert (repo / "training" / "presets" / f"{preset}.toml").is_file()
    train_models = {m["target"]: m for m in _mounts(train)}[output_dir]
    api_mounts = {m["source"]: m for m in _mounts(api)}
    assert train_models["type"] == "volume"
    api_models = api_mounts[train_models["source"]]
    assert api_models["read_only"]
    # The documented REID_MODEL_PATH is the trainer's best/ checkpoint in that volume.
    text = (repo / "docker" / ".env.example").read_text(encoding="utf-8")
    model_path = re.search(r"^#?REID_MODEL_PATH=(\S+)$", text, flags=re.MULTILINE).group(1)
    assert model_path == f"{api_models['target']}/best"
    assert train["shm_size"]
    assert train["healthcheck"] == {"disable": True}  # no API in a training container


def test_every_volume_is_named_except_documented_read_only_binds(
    compose: dict[str, Any],
) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for mount in _mounts(service):
            if mount["type"] == "volume":
                assert mount["source"] in declared, f"{name}: {mount['source']} not declared"
                used.add(mount["source"])
            else:
                assert (name, mount["target"]) in DOCUMENTED_BINDS, f"{name}: bind {mount}"
                assert mount["read_only"], f"{name}: {mount['target']} must be read-only"
    assert used == declared
    dataset = next(m for m in _mounts(compose["services"]["train"]) if m["target"] == "/dataset")
    assert dataset["bind"]["create_host_path"] is False  # a typo fails, not an empty dir


def test_no_secrets_in_compose_files(compose: dict[str, Any], cpu_override: dict[str, Any]) -> None:
    for document in (compose, cpu_override):
        for name, service in document["services"].items():
            for key, value in _env(service).items():
                assert key != "REID_API_KEYS", f"{name}: API keys belong in .env"
                if re.search("PASSWORD|SECRET|TOKEN", key):
                    assert INTERPOLATION.match(value), f"{name}: {key} is a literal"
    url = _env(compose["services"]["api"])["REID_DATABASE_URL"]
    parts = re.fullmatch(r"postgresql\+psycopg://(\$\{.+?\}):(\$\{.+?\})@db:5432/(\$\{.+\})", url)
    assert parts, url
    assert all(INTERPOLATION.match(part) for part in parts.groups()), "user, password, db: .env"
    assert "POSTGRES_PASSWORD" in parts.group(2)


@pytest.mark.parametrize(
    "path",
    [
        "docker-compose.yml",
        "docker/docker-compose.cpu.yml",
        "docker/.env.example",
        "docker/entrypoint.sh",
        "Dockerfile",
    ],
)
def test_every_reid_variable_named_is_a_setting(
    repo: Path, setting_env_names: set[str], path: str
) -> None:
    named = set(re.findall(r"\bREID_[A-Z0-9_]+\b", (repo / path).read_text(encoding="utf-8")))
    assert named, path
    assert named <= setting_env_names, f"{path}: not settings: {named - setting_env_names}"


def test_env_example_documents_every_setting_with_its_default(
    repo: Path, env_example: dict[str, bool], setting_env_names: set[str]
) -> None:
    assert set(env_example) >= setting_env_names, setting_env_names - set(env_example)
    assert env_example["POSTGRES_PASSWORD"] is True  # the one value a deployment must set
    text = (repo / "docker" / ".env.example").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        env = f"REID_{name.upper()}"
        doc = re.search(rf"^# {env} \(default(:? [^\n]*)", text, flags=re.MULTILINE)
        assert doc, f"{env}: no '# {env} (default ...): meaning' comment"
        default = field.get_default(call_default_factory=True)
        if default is None or isinstance(default, list):
            assert doc.group(1).startswith(":"), f"{env}: say what 'unset' means"
            continue
        documented = re.match(r" ([^\s;:)]+)", doc.group(1)).group(1)
        value = getattr(default, "value", default)
        if isinstance(value, bool):
            assert documented == str(value).lower(), env
        elif isinstance(value, int | float):
            assert float(documented) == value, env
        else:
            assert documented == str(value), env


def test_env_example_values_are_valid_settings(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (repo / "docker" / ".env.example").read_text(encoding="utf-8")
    for env, value in re.findall(r"^#?(REID_[A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE):
        if "<" in value:  # a placeholder the reader must replace
            continue
        monkeypatch.setenv(env, value)
        try:
            Settings()
        except ValidationError as error:
            pytest.fail(f"docker/.env.example: {env}={value} is rejected: {error}")
        monkeypatch.delenv(env)


def test_cpu_override_drops_the_gpu_and_uses_the_cpu_image(
    cpu_override: dict[str, Any],
) -> None:
    services = cpu_override["services"]
    assert set(services) == {"api", "train"}
    for name, service in services.items():
        # Loaded by conftest's ComposeLoader, which keeps Compose's merge tags.
        assert getattr(service["deploy"], "tag", None) == "!reset", name
        assert service["build"]["args"]["VARIANT"] == "cpu"
        assert service["image"] == "reid:cpu"
    command = services["train"]["command"]
    assert command[command.index("--device") + 1] == "cpu"
    assert _env(services["api"])["REID_DEVICE"] == "cpu"


def test_prometheus_scrapes_the_api(repo: Path, compose: dict[str, Any]) -> None:
    import yaml

    config = yaml.safe_load((repo / "docker" / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    # One target per replica: Docker's DNS answers the service name with every address.
    assert job["dns_sd_configs"] == [
        {"names": ["api"], "type": "A", "port": 8000, "refresh_interval": "15s"}
    ]
    assert job["metrics_path"] == "/metrics"


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return [docker, "compose"] if probe.returncode == 0 else None


@pytest.mark.skipif(
    _compose_cli() is None,
    reason="the Docker Compose CLI plugin is absent (`docker compose version` fails); "
    "`docker compose config` needs no engine wherever the plugin is installed",
)
@pytest.mark.parametrize("override", [False, True])
def test_docker_compose_config_accepts_the_files(
    repo: Path, tmp_path: Path, override: bool
) -> None:
    project = tmp_path / "project"
    shutil.copytree(repo / "docker", project / "docker")
    shutil.copy(repo / "docker-compose.yml", project)
    env = (repo / "docker" / ".env.example").read_text(encoding="utf-8")
    (project / ".env").write_text(env.replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=x\n"))
    (project / "data" / "Market-1501").mkdir(parents=True)
    files = ["-f", "docker-compose.yml"]
    if override:
        files += ["-f", "docker/docker-compose.cpu.yml"]
    result = subprocess.run(
        [*_compose_cli(), *files, "--profile", "train", "--profile", "monitoring", "config", "-q"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
