"""Shipped policy versions (policy/versions): immutable, resolvable, and what inputs carry."""

import json
from pathlib import Path

import pytest

from policy import Window, default_policy, demo_policy, load_policy
from policy import versions
from policy.versions import PolicyRef, UnknownPolicyVersion

FOLDER = Path(versions.__file__).parent


def test_every_shipped_file_hashes_to_the_recorded_hash():
    files = {path.stem for path in FOLDER.glob("*.json")}
    assert files == set(versions.SHIPPED)
    for version, sha in versions.SHIPPED.items():
        data = json.loads((FOLDER / f"{version}.json").read_text(encoding="utf-8"))
        assert data["version"] == version
        assert versions.content_hash(data) == sha, f"{version}.json changed: ship a new version instead"


@pytest.mark.parametrize("preset", [default_policy, demo_policy])
def test_the_presets_are_shipped_versions_and_resolve(preset):
    policy = preset()
    ref = versions.ref_or_body(policy)
    assert ref == PolicyRef(version=policy.version, sha256=versions.SHIPPED[policy.version])
    assert versions.resolve(ref) == policy
    assert len(ref.model_dump_json()) < 120 < len(policy.model_dump_json())


def test_a_shipped_version_loads_by_its_name():
    for version in versions.SHIPPED:
        assert load_policy(version) == versions.shipped_policy(version)
        assert load_policy(version).version == version


def test_a_policy_other_than_a_shipped_version_travels_whole():
    changed = default_policy().model_copy(update={"appeal": Window.seconds(2)})
    assert versions.ref_or_body(changed) is changed


def test_a_ref_nothing_holds_is_refused_not_guessed():
    with pytest.raises(UnknownPolicyVersion):
        versions.resolve(PolicyRef(version="cn-2099.1", sha256="0" * 64))
    # The right version under another hash is another body.
    with pytest.raises(UnknownPolicyVersion):
        versions.resolve(PolicyRef(version=default_policy().version, sha256="1" * 64))


def test_a_registered_body_resolves_by_its_own_hash():
    body = default_policy().model_copy(update={"version": "test-registered"}).model_dump(mode="json")
    ref = versions.register(body)
    assert ref == PolicyRef(version="test-registered", sha256=versions.content_hash(body))
    assert versions.resolve(ref).version == "test-registered"
    assert versions.registered_body(ref) == body
    # A ref or a whole policy in a recorded payload reads back the same.
    assert versions.recorded(ref.model_dump()) == versions.recorded(body)
