#!/bin/sh
# Run `onehop probe matrix` against Python's http.server, uvicorn, nginx (origin and
# proxy), Node.js's http server, a naive proxy, and onehop's own server and proxy, then the
# HTTP/2 checks against nginx (http2), hypercorn, onehop serve and proxy, and a leaky h2
# server, each started on free loopback ports and stopped afterwards; write
# docs/implementation-status.md.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" scripts/implementation_status.py "$@"
