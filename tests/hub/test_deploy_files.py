"""The cluster files under hub/deploy: the Kubernetes manifests against Kubernetes' schemas
(offline, bundled by kubernetes-validate), the compose file with `docker compose config` where
the compose plugin is present, and what a platform team relies on: probes on routes that exist,
time to drain, one image, the proxy's configuration in step with its template."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from hub.core.config import Settings
from hub.replicas import proxy_config
from hub.serve import KEEP_ALIVE_S
from tests.conftest import RunningHub

DEPLOY = Path(__file__).resolve().parents[2] / "hub" / "deploy"
KUBERNETES_VERSION = "1.30.0"
CHAT_PROBE = "/auth/config"


def _manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _deployments() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _manifests() if doc["kind"] == "Deployment"}


def test_every_manifest_is_valid_for_kubernetes() -> None:
    manifests = _manifests()
    kinds = sorted(doc["kind"] for doc in manifests)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Deployment",
        "Ingress",
        "PersistentVolumeClaim",
        "Secret",
        "Service",
        "Service",
    ]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    broken = _deployments()["hub"]
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_deployment_has_both_probes_and_the_hubs_answer(hub: RunningHub) -> None:
    for name, deployment in _deployments().items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                path = container[probe]["httpGet"]["path"]
                if name == "hub":
                    answer = httpx.get(hub.url + path, timeout=10)
                    assert answer.status_code == 200, f"the hub answers {path} with {answer}"
                else:
                    # The chat's page settings, which it serves before anyone signs in.
                    assert path == CHAT_PROBE, f"{name}'s {probe} is on {path}"


def test_each_replica_is_given_longer_to_stop_than_it_drains() -> None:
    grace_s = Settings.model_fields["shutdown_grace_s"].default
    settings = next(doc for doc in _manifests() if doc["kind"] == "ConfigMap")["data"]
    assert int(settings["SWITCHBOARD_SHUTDOWN_GRACE_S"]) == grace_s
    for deployment in _deployments().values():
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace_s
    for name, service in _compose()["services"].items():
        if name.startswith(("hub-", "chat-")):
            assert int(service["stop_grace_period"].removesuffix("s")) > grace_s


def test_every_chat_replica_mounts_one_shared_volume_at_the_data_dir() -> None:
    """Files people attach are written by one replica and read by any other."""
    manifests = _manifests()
    data_dir = next(doc for doc in manifests if doc["kind"] == "ConfigMap")["data"][
        "SWITCHBOARD_DATA_DIR"
    ]
    claims = {
        doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == "PersistentVolumeClaim"
    }
    pod = _deployments()["chat"]["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == data_dir]
    claim = claims[volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_cluster_files_run_one_image_with_the_same_commands() -> None:
    compose = _compose()["services"]
    manifests_images = {
        container["image"]
        for deployment in _deployments().values()
        for spec in (deployment["spec"]["template"]["spec"],)
        for container in spec["containers"] + spec.get("initContainers", [])
    }
    ours = {name: service for name, service in compose.items() if "switchboard" in service["image"]}
    assert set(ours) == {"migrate", "hub-1", "hub-2", "chat-1", "chat-2"}
    assert {service["image"] for service in ours.values()} == manifests_images
    assert "build" in ours["migrate"]
    commands = {
        name: deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        for name, deployment in _deployments().items()
    }
    assert compose["hub-1"]["command"] == commands["hub"] == ["switchboard", "hub"]
    assert compose["chat-1"]["command"] == commands["chat"]


def test_every_compose_dependency_is_a_service() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on {needed}, which is not a service"


def test_the_compose_proxy_configuration_is_the_template_filled_in() -> None:
    expected = proxy_config(
        hubs=["hub-1:8100", "hub-2:8100"],
        chats=["chat-1:8000", "chat-2:8000"],
        hub_listen="8100",
        chat_listen="8000",
        state_dir="/tmp",
    )
    assert (DEPLOY / "nginx.compose.conf").read_text() == expected
    assert "{{" not in expected


def test_the_proxy_closes_idle_hub_connections_before_the_hub_would() -> None:
    """Else the proxy may send a request on a connection the hub is closing: a 502 for a POST."""
    template = (DEPLOY / "nginx.conf.template").read_text()
    upstream = re.search(r"upstream hub \{(.*?)\n    \}", template, re.DOTALL)
    assert upstream is not None
    (timeout,) = re.findall(r"keepalive_timeout (\d+)s;", upstream.group(1))
    assert int(timeout) < KEEP_ALIVE_S


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="the docker compose plugin is not installed here; the checks above still ran",
)
def test_docker_compose_accepts_the_compose_file() -> None:
    env = {
        "POSTGRES_PASSWORD": "x",
        "SWITCHBOARD_APP_SERVICE_TOKEN": "x",
        "SWITCHBOARD_SECRET_KEY": "x",
        "CHAINLIT_AUTH_SECRET": "x",
    }
    result = subprocess.run(
        ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert result.returncode == 0, result.stderr
