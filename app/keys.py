"""Create API keys: ``python -m app.keys new --role write --name cam-ops``.

Prints the key once (store it in the client's secret store) and the
REID_API_KEYS entry holding only its SHA-256, which is all the service keeps.
"""

from __future__ import annotations

import argparse
import json
import sys

from app.api.auth import hash_key, new_key
from app.settings import ApiKeySpec, Role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.keys", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("new", help="generate a key and its configuration entry")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--name", required=True, help="who holds the key, e.g. cam-ops")
    hashed = commands.add_parser("hash", help="print the configuration entry of an existing key")
    hashed.add_argument("--role", required=True, choices=[role.value for role in Role])
    hashed.add_argument("--name", required=True)
    args = parser.parse_args(argv)

    if args.command == "new":
        key = new_key()
    else:
        key = sys.stdin.readline().strip()
        if not key:
            parser.error("hash reads the key from standard input; got nothing")
    try:
        spec = ApiKeySpec(name=args.name, role=Role(args.role), sha256=hash_key(key))
    except ValueError as error:
        parser.error(str(error))
    entry = json.dumps(spec.model_dump(mode="json"), separators=(",", ":"))
    if args.command == "new":
        print(f"key: {key}")
        print("  (shown once; the service stores only its SHA-256)")
    print(f"entry: {entry}")
    print(f"config: REID_API_KEYS='[{entry}]'")
    print("  (with several keys, put every entry in the one JSON list)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
