"""Shipped policy versions: immutable policy bodies the code carries, named by version and
content hash, so a workflow input carries a small `PolicyRef` instead of the whole policy.

Each `<version>.json` here is written once (`python -m policy.versions write default`) and
never edited: its sha256 (of its canonical JSON, `content_hash`) is recorded in `SHIPPED`,
checked when this module loads and by `tests/policy/test_versions.py`, and held by every
case opened under it. The hash is of the file's own data, not of a re-dumped `Policy`, so a
field added to `Policy` later (with a default, as every new field has) leaves it unchanged.

Pure after import (the files are read once, when the module loads, outside any workflow
sandbox): workflow code resolves a ref with `resolve`, deterministically. A ref this process
cannot resolve raises `UnknownPolicyVersion`, which fails the workflow task (retried, and
visible in the task's failure) rather than guessing. Replay tools `register` the bodies an
export or an archive record carries before replaying on code that lacks them.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from policy.model import Policy

__all__ = ["PolicyRef", "UnknownPolicyVersion", "SHIPPED", "content_hash", "canonical", "resolve", "ref_or_body",
           "hold", "recorded", "register", "registered_body", "shipped_policy"]

# version -> sha256 of the file's canonical JSON. Add a line with each new file; never change one.
SHIPPED: dict[str, str] = {
    "cn-2026.2": "ee8e4aae4d0530a53ccfeccd78ef869b0cd1da0e3b70ac9dfedb5e0c5d536192",
    "demo-3": "10d7a7ba213a49a2b32bdc950eb2e2b873180eea3fa7fe956ebdb23be7e8fcdc",
}


class PolicyRef(BaseModel):
    """A policy version by name and content hash: what a workflow input records instead of
    the body when the case follows a shipped version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class UnknownPolicyVersion(LookupError):
    """A ref names a body this process does not hold (or holds under another hash)."""


def canonical(data: Any) -> bytes:
    """JSON with sorted keys and no spaces: one text per value, what content hashes are of."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_hash(data: Any) -> str:
    return hashlib.sha256(canonical(data)).hexdigest()


# sha256 -> (the body as its file holds it, the Policy it validates to).
_BODIES: dict[str, tuple[dict[str, Any], Policy]] = {}
_SHIPPED_REFS: dict[str, PolicyRef] = {}


def register(data: dict[str, Any]) -> PolicyRef:
    """Hold a policy body (a version file's data, as an export or a record carries it) so refs
    to it resolve; its ref is its version and the hash of this data."""
    ref = PolicyRef(version=str(data.get("version")), sha256=content_hash(data))
    if ref.sha256 not in _BODIES:
        _BODIES[ref.sha256] = (data, Policy.model_validate(data))
    return ref


def hold(ref: PolicyRef, policy: Policy) -> None:
    """Resolve `ref` to `policy` from now on, unless it resolves already: the body a case's
    archive record carries for the version its input names (re-dumped by the code that wrote
    the record, so its hash need not be the ref's; the version must be)."""
    if ref.sha256 in _BODIES:
        return
    if policy.version != ref.version:
        raise UnknownPolicyVersion(f"policy {policy.version} cannot stand for {ref.version}")
    _BODIES[ref.sha256] = (policy.model_dump(mode="json"), policy)


def _load_shipped() -> None:
    folder = resources.files(__name__)
    for version, sha in SHIPPED.items():
        data = json.loads(folder.joinpath(f"{version}.json").read_text(encoding="utf-8"))
        ref = register(data)
        if ref != PolicyRef(version=version, sha256=sha):
            raise RuntimeError(f"policy/versions/{version}.json holds {ref.version} with sha256 {ref.sha256}, "
                               f"not the {sha} recorded in SHIPPED: a shipped version never changes")
        _SHIPPED_REFS[version] = ref


def resolve(policy: Policy | PolicyRef) -> Policy:
    """The policy a ref names (a body is its own policy)."""
    if isinstance(policy, Policy):
        return policy
    held = _BODIES.get(policy.sha256)
    if held is None or held[1].version != policy.version:
        raise UnknownPolicyVersion(f"policy {policy.version} (sha256 {policy.sha256}) is not held here: "
                                   f"ship its file in policy/versions or register the body an export carries")
    return held[1]


def recorded(value: dict[str, Any]) -> Policy:
    """The policy a recorded payload's `policy` field holds, a body or a ref."""
    return resolve(PolicyRef.model_validate(value) if "sha256" in value else Policy.model_validate(value))


def registered_body(ref: PolicyRef) -> dict[str, Any]:
    """The body a ref names, exactly as its file holds it (what exports carry beside histories)."""
    resolve(ref)
    return _BODIES[ref.sha256][0]


def ref_or_body(policy: Policy) -> Policy | PolicyRef:
    """What an input records for `policy`: the ref of the shipped version it equals, else the
    policy itself (a test's shortened windows, an operator's own file)."""
    ref = _SHIPPED_REFS.get(policy.version)
    return ref if ref is not None and _BODIES[ref.sha256][1] == policy else policy


def shipped_policy(version: str) -> Policy:
    return resolve(_SHIPPED_REFS[version])


_load_shipped()
