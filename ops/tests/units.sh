#!/usr/bin/env bash
# Checks every unit in systemd/ with systemd-analyze (works without systemd as PID 1):
#   - `systemd-analyze verify` is clean (exit 0, no output) for the worker template, an instance of it
#     with and without the example per-class drop-ins, the target, the autoscaler service and timer;
#   - `systemd-analyze security --offline=yes` rates each worker instance at most 2.0 (and the
#     autoscaler at most 3.0: it runs as root to drive systemctl);
#   - the built programs take the options the units pass them (darkroomd --instance, darkroom autoscale
#     --config --state --dry-run).
# ExecStart binaries must exist for verify: the units are copied to a temporary folder with
# /usr/local/bin/darkroomd and /usr/local/bin/darkroom pointed at the built binaries when there are
# some (DARKROOMD / DARKROOM_CLI, else .build/debug), else at /bin/true.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bar=${DARKROOM_SECURITY_BAR:-2.0}
autoscale_bar=3.0
command -v systemd-analyze >/dev/null || { echo "ops/tests/units.sh: systemd-analyze missing (apt-get install systemd)" >&2; exit 1; }

pick() { for c in "$@"; do if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return; fi; done; echo /bin/true; }
daemon=$(pick "${DARKROOMD:-}" "$top/.build/debug/darkroomd" "$top/.build/release/darkroomd")
cli=$(pick "${DARKROOM_CLI:-}" "$top/.build/debug/darkroom" "$top/.build/release/darkroom")

work=$(mktemp -d /tmp/darkroom-units.XXXXXX)
trap 'rm -rf "$work"' EXIT
for f in "$top"/systemd/*.service "$top"/systemd/*.target "$top"/systemd/*.timer; do
  sed -e "s|/usr/local/bin/darkroomd|$daemon|g" -e "s|/usr/local/bin/darkroom |$cli |g" "$f" >"$work/$(basename "$f")"
done
# The example per-class settings, linked the way ops/scale links them.
mkdir -p "$work/darkroom@large-1.service.d" "$work/darkroom@small-1.service.d" "$work/darkroom@.service.d"
cp "$top/systemd/examples/units/large.conf" "$work/darkroom@large-1.service.d/50-class.conf"
cp "$top/systemd/examples/units/small.conf" "$work/darkroom@small-1.service.d/50-class.conf"
cp "$top/systemd/examples/darkroom@.service.d/site.conf" "$work/darkroom@.service.d/site.conf"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

verify() {
  local out rc=0
  out=$(cd "$work" && SYSTEMD_UNIT_PATH="$work:" systemd-analyze verify "$@" 2>&1) || rc=$?
  if [ $rc -ne 0 ] || [ -n "$out" ]; then fail "systemd-analyze verify $* (rc $rc): $out"; else echo "verify ok: $*"; fi
}
verify ./darkroom@.service
verify darkroom@small-1.service
verify darkroom@large-1.service
verify darkroom@x-large-12.service
verify ./darkroom.target
verify ./darkroom-autoscale.service ./darkroom-autoscale.timer

# Exposure of one unit, e.g. 1.2, from the "Overall exposure level" line.
exposure() {
  (cd "$work" && SYSTEMD_UNIT_PATH="$work:" systemd-analyze security --offline=yes --no-pager "$1" 2>&1) |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
check_security() {
  local unit=$1 limit=$2 score
  score=$(exposure "$unit")
  if [ -z "$score" ]; then fail "no exposure level for $unit"; return; fi
  if awk -v s="$score" -v b="$limit" 'BEGIN { exit !(s <= b) }'; then
    echo "security ok: $unit rates $score (bar $limit)"
  else
    fail "$unit rates $score, above the bar of $limit"
  fi
}
check_security darkroom@small-1.service "$bar"
check_security darkroom@large-1.service "$bar"
check_security darkroom-autoscale.service "$autoscale_bar"

# The command lines in the units match the programs' options (when the built programs are there).
if [ "$daemon" != /bin/true ]; then
  "$daemon" --help 2>&1 | grep -q -- "--instance" || fail "$daemon has no --instance option (darkroom@.service passes it)"
fi
if [ "$cli" != /bin/true ]; then
  help=$("$cli" autoscale --help 2>&1) || fail "$cli has no autoscale subcommand (darkroom-autoscale.service runs it): $help"
  for opt in --config --state --dry-run; do
    grep -q -- "$opt" <<<"$help" || fail "darkroom autoscale has no $opt option"
  done
fi

# The checker itself must be able to fail: a bare unit rates far above the bar.
printf '[Service]\nExecStart=/bin/true\n' >"$work/bare.service"
score=$(exposure bare.service)
awk -v s="${score:-0}" -v b="$bar" 'BEGIN { exit !(s > b) }' || fail "a bare unit rated ${score:-nothing}; the check cannot fail"

if [ $failures -gt 0 ]; then echo "ops/tests/units.sh: $failures failure(s)" >&2; exit 1; fi
echo "ops/tests/units.sh: ok"
