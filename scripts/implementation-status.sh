#!/bin/sh
# Run `onehop probe matrix` against Python's http.server, uvicorn, nginx (origin and
# proxy), Node.js's http server and a naive proxy, each started on free loopback ports and
# stopped afterwards, and write docs/implementation-status.md.
# onehop's own server is included; its proxy goes in the marked place in scripts/implementation_status.py.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" scripts/implementation_status.py "$@"
