#!/usr/bin/env bash
# Runs every ops test: the units (systemd-analyze verify and the security bar), ops/scale against a
# stand-in systemctl, ops/install and ops/uninstall into a staging root, the Prometheus rules and Grafana
# dashboard (promtool). Each is self-contained (temporary folders, no root, no systemd as PID 1, no broker)
# and takes about a second. `make test` calls this. Needs systemd-analyze (Debian package `systemd`) and
# promtool (package `prometheus`; without it the rules are only parsed). Exit 0 when all pass, 1 otherwise.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
failed=()
for t in units scale install prometheus; do
  echo "== ops/tests/$t.sh"
  if ! bash "$here/$t.sh"; then failed+=("$t"); fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "ops/tests: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "ops/tests: all passed"
