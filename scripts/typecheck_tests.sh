#!/usr/bin/env bash
# mypy over tests/ with tests/mypy.ini. Each folder is checked on its own, with itself and tests/ on the path:
# its modules import their helpers by bare name (``conftest``, ``clitools``), as pytest's import mode lets them,
# and two folders' conftest.py would otherwise be one module name twice.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
MYPYPATH=tests mypy --config-file tests/mypy.ini tests/*.py || status=1
for dir in tests/*/; do
  [ -n "$(find "$dir" -maxdepth 1 -name '*.py' -print -quit)" ] || continue
  MYPYPATH="$dir:tests:examples" mypy --config-file tests/mypy.ini "$dir" || status=1
done
exit $status
