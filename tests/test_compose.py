"""docker-compose.yml, checked without Docker (the development machine has none): it is valid
under the Compose specification's schema, pins every image, writes no secret, and every
variable it reads from the deployer's environment is documented in the README."""

import json
import re
import tomllib
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

PROJECT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (PROJECT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
# ${NAME}, ${NAME:?message}, ${NAME:-default}; `$$` is a literal dollar for the container's shell.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(:?[-?][^}]*)?\}")
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|KEY", re.IGNORECASE)
# A version of at least major.minor, with an optional suffix: never latest, never a bare major.
PINNED_TAG = re.compile(r"^[a-z0-9./_-]+:\d+\.\d+[A-Za-z0-9._-]*$")


def test_the_file_is_valid_under_the_compose_specification() -> None:
    schema = json.loads((PROJECT / "tests" / "compose" / "compose-spec.json").read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(COMPOSE), key=lambda e: list(e.absolute_path))
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors] == []


def test_every_image_is_pinned_to_a_version() -> None:
    images = {name: service.get("image") for name, service in SERVICES.items()}
    assert all(images.values()), f"services without an image name: {[n for n, i in images.items() if not i]}"
    assert {name: image for name, image in images.items() if not PINNED_TAG.match(image)} == {}
    version = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["version"]
    built = {service["image"] for service in SERVICES.values() if "build" in service}
    assert built == {f"disputeflow:{version}"}, "the image built here is tagged with the project's version"
    base = re.search(r"^FROM (\S+)", (PROJECT / "Dockerfile").read_text(), re.MULTILINE).group(1)
    assert PINNED_TAG.match(base), base


def _environments() -> list[tuple[str, str, str]]:
    return [(service_name, key, str(value)) for service_name, service in SERVICES.items()
            for key, value in (service.get("environment") or {}).items()]


def test_no_secret_is_written_in_the_file_or_the_image() -> None:
    written = []
    for service, key, value in _environments():
        if SECRET_NAME.search(key) and not re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value):
            written.append(f"{service}: {key}")  # only a required variable of the deployer's environment
        for credentials in re.findall(r"://[^/@\s]*:([^@/\s]*)@", value):
            if not VARIABLE.fullmatch(credentials):
                written.append(f"{service}: {key} has a password in its URL")
    assert written == []
    dockerfile = (PROJECT / "Dockerfile").read_text()
    assert not SECRET_NAME.search(" ".join(re.findall(r"^(?:ENV|ARG) (.*)$", dockerfile, re.MULTILINE)))
    assert not re.search(r"://[^/@\s]*:[^@/\s]*@", dockerfile), "no credentials in the image"


def test_the_processes_start_after_migration_and_stop_gracefully() -> None:
    for name in ("worker", "api"):
        service = SERVICES[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["namespace-setup"] == {"condition": "service_completed_successfully"}
        assert service["healthcheck"]["test"] and service["stop_grace_period"]
    assert SERVICES["migrate"]["command"] == ["disputeflow", "migrate"]
    assert SERVICES["namespace-setup"]["command"] == ["disputeflow", "namespace-setup"]
    assert "temporal operator cluster health" in " ".join(SERVICES["temporal"]["healthcheck"]["test"])
    assert not any("auto-setup" in service["image"] for service in SERVICES.values())
    assert "|| true" not in COMPOSE_TEXT, "a setup step that fails must stop the deployment"


def test_every_variable_the_file_reads_is_documented_in_the_readme() -> None:
    read = {match.group(1) for match in VARIABLE.finditer(COMPOSE_TEXT)}
    readme = (PROJECT / "README.md").read_text()
    assert read, "the file reads its secrets from the environment"
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
