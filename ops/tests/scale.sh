#!/usr/bin/env bash
# ops/scale against a stand-in systemctl that keeps unit states in a file (this machine has no
# systemd as PID 1). Checks: it starts and stops the right instances, is idempotent, leaves other
# classes alone, links per-class settings, and --dry-run changes nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/darkroom-scale-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
state=$work/active
log=$work/calls
: >"$state"; : >"$log"

# The stand-in (ops/tests/stub-systemctl): list-units prints active units matching the glob; start/stop edit the list.
export SYSTEMCTL=$top/ops/tests/stub-systemctl STUB_STATE=$state STUB_LOG=$log
scale() { "$top/ops/scale" --unit-dir "$work/units" --class-dir "$work/classes" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
active() { sort "$state" | tr '\n' ' '; }

echo "darkroom@small-x-1.service" >>"$state"   # another class whose name starts with "small-"

out=$(scale small 3)
[ "$(active)" = "darkroom@small-1.service darkroom@small-2.service darkroom@small-3.service darkroom@small-x-1.service " ] || fail "0 -> 3: $(active)"
grep -q "start darkroom@small-3.service" <<<"$out" || fail "0 -> 3 output: $out"
grep -q "small: 0 -> 3 workers" <<<"$out" || fail "0 -> 3 summary: $out"
grep -q "^enable --quiet darkroom@small-1.service darkroom@small-2.service darkroom@small-3.service" "$log" || fail "started instances not enabled: $(cat "$log")"

out=$(scale small 3)
[ "$out" = "small: already 3 running, nothing to change" ] || fail "idempotent: $out"

out=$(scale --dry-run small 1)
grep -q "would stop darkroom@small-3.service" <<<"$out" || fail "dry run output: $out"
grep -qx "small: 3 -> 1 workers (dry run, nothing changed)" <<<"$out" || fail "dry run summary: $out"
[ "$(grep -c . "$state")" = 4 ] || fail "dry run changed state: $(active)"

out=$(scale small 1)
[ "$(active)" = "darkroom@small-1.service darkroom@small-x-1.service " ] || fail "3 -> 1: $(active)"
grep -q "stop darkroom@small-2.service" <<<"$out" || fail "3 -> 1 output: $out"
grep -q "^disable --quiet darkroom@small-2.service darkroom@small-3.service" "$log" || fail "stopped instances not disabled"

# Holes: 1, 2 and 5 running, 3 wanted: start 3, stop 5.
printf '%s\n' darkroom@small-2.service darkroom@small-5.service >>"$state"
out=$(scale small 3)
[ "$(active)" = "darkroom@small-1.service darkroom@small-2.service darkroom@small-3.service darkroom@small-x-1.service " ] || fail "holes: $(active)"
grep -q "stop darkroom@small-5.service" <<<"$out" || fail "holes output: $out"

# Per-class settings are linked into each wanted instance's drop-in folder, then systemd reloads.
mkdir -p "$work/classes"
printf '[Service]\nMemoryMax=2G\n' >"$work/classes/large.conf"
: >"$log"
out=$(scale large 2)
[ "$(readlink "$work/units/darkroom@large-2.service.d/50-class.conf")" = "$work/classes/large.conf" ] || fail "class link missing"
grep -q "^daemon-reload" "$log" || fail "no daemon-reload after linking"
: >"$log"
scale large 2 >/dev/null
! grep -q "^daemon-reload" "$log" || fail "reloaded although nothing changed"

out=$(scale small 0)
[ "$(active)" = "darkroom@large-1.service darkroom@large-2.service darkroom@small-x-1.service " ] || fail "-> 0: $(active)"
[ "$(scale --status large)" = "large: 2 running (darkroom@large-1.service darkroom@large-2.service)" ] || fail "status: $(scale --status large)"

# Bad usage exits 2.
set +e
scale Small 1 >/dev/null 2>&1; [ $? = 2 ] || fail "upper-case class accepted"
scale small -1 >/dev/null 2>&1; [ $? = 2 ] || fail "negative count accepted"
scale small >/dev/null 2>&1; [ $? = 2 ] || fail "missing count accepted"
set -e
echo "ops/tests/scale.sh: ok"
