#!/usr/bin/env bash
# Refresh the locks from pyproject.toml: every package of the dependency tree pinned, with hashes.
#   requirements.lock       what `tenancy` needs to run (the README's main command installs it)
#   requirements-test.lock  the same plus the test extras (the README's test command and .ci/run install it)
# Each lock ends with the SHA-256 of the dependency lists it was made from; a test fails when
# pyproject.toml's lists no longer match it (tests/foundation/test_lock.py).
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${TENANCY_LOCK_TOOLS:-.lock-tools}
[ -x "$tools/bin/pip-compile" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q 'pip-tools>=7.4'; }

digest=$("$tools/bin/python" - <<'PY'
import hashlib, json, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
lists = {"dependencies": project["dependencies"], "optional-dependencies": project.get("optional-dependencies", {})}
print(hashlib.sha256(json.dumps(lists, sort_keys=True).encode()).hexdigest())
PY
)

compile() {  # OUTPUT [--extra NAME]
  local out=$1; shift
  CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
    --no-emit-find-links "$@" -o "$out" pyproject.toml
  echo "# pyproject-dependencies-sha256: $digest" >> "$out"
}
compile requirements.lock
compile requirements-test.lock --extra test
echo "lock.sh: wrote requirements.lock and requirements-test.lock"
