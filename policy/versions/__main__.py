"""`python -m policy.versions write default|demo|PATH`: write the version file of a policy
(a preset, or a Policy JSON file) and print the `SHIPPED` line to add for it."""

import json
import sys
from pathlib import Path

from policy.presets import load_policy
from policy.versions import SHIPPED, content_hash


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "write":
        print(__doc__, file=sys.stderr)
        return 2
    policy = load_policy(argv[1])
    if policy.version in SHIPPED:
        print(f"policy {policy.version} is shipped already; a changed policy needs a new version", file=sys.stderr)
        return 1
    data = policy.model_dump(mode="json")
    path = Path(__file__).with_name(f"{policy.version}.json")
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}; add to SHIPPED in policy/versions/__init__.py:\n"
          f'    "{policy.version}": "{content_hash(data)}",')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
