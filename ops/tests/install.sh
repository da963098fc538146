#!/usr/bin/env bash
# ops/install and ops/uninstall into a staging root (--root): the files land where the units expect
# them, the prefix reaches the units, a second install changes nothing the operator wrote, and
# uninstall removes what install put there (and --purge the rest).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/darkroom-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
prefix=/opt/darkroom
fail() { echo "FAIL: $*" >&2; exit 1; }

# Stand-in binaries: the layout is under test here, not the programs.
mkdir -p "$work/bin"
cp /bin/true "$work/bin/darkroomd"
cp /bin/true "$work/bin/darkroom"

# A dry run writes nothing.
"$top/ops/install" --root "$root" --prefix "$prefix" --bin-dir "$work/bin" --dry-run >"$work/dry.log"
[ -z "$(find "$root" -mindepth 1 2>/dev/null)" ] || fail "dry run wrote files: $(find "$root" -mindepth 1 | head)"
grep -q "darkroom@.service" "$work/dry.log" || fail "dry run does not list the units"

"$top/ops/install" --root "$root" --prefix "$prefix" --bin-dir "$work/bin" >"$work/install.log"
for f in "$prefix/bin/darkroomd" "$prefix/bin/darkroom" "$prefix/bin/darkroom-scale" \
         /etc/systemd/system/darkroom@.service /etc/systemd/system/darkroom.target \
         /etc/systemd/system/darkroom-autoscale.service /etc/systemd/system/darkroom-autoscale.timer \
         /etc/darkroom/darkroom.toml /etc/darkroom/broker.secret \
         "$prefix/share/doc/darkroom/examples/units/large.conf"; do
  [ -e "$root$f" ] || fail "missing $f"
done
[ -d "$root/etc/darkroom/units" ] && [ -d "$root/var/lib/darkroom" ] && [ -d "$root/var/cache/darkroom" ] || fail "missing folders"
[ "$(stat -c %a "$root/etc/darkroom/broker.secret")" = 600 ] || fail "broker.secret is not 0600"
grep -q "^ExecStart=$prefix/bin/darkroomd --config /etc/darkroom/darkroom.toml --instance %i\$" "$root/etc/systemd/system/darkroom@.service" || fail "prefix not in ExecStart"
! grep -v "^#" "$root/etc/systemd/system/darkroom@.service" | grep -q /usr/local || fail "/usr/local left in the unit"
if [ -d "$top/models/tiny-shapes" ]; then
  [ -d "$root$prefix/share/darkroom/models/tiny-shapes" ] || fail "default model not installed"
fi

# The staged units are the checked ones (ops/tests/units.sh) with the prefix put in.
for f in darkroom@.service darkroom.target darkroom-autoscale.service darkroom-autoscale.timer; do
  sed "s|/usr/local/|$prefix/|g" "$top/systemd/$f" | cmp -s - "$root/etc/systemd/system/$f" || fail "staged $f differs"
done

# Idempotent, and the operator's config survives.
echo "# mine" >>"$root/etc/darkroom/darkroom.toml"
echo "guest:guest" >"$root/etc/darkroom/broker.secret"
"$top/ops/install" --root "$root" --prefix "$prefix" --bin-dir "$work/bin" >"$work/install2.log"
tail -1 "$root/etc/darkroom/darkroom.toml" | grep -q "# mine" || fail "second install overwrote darkroom.toml"
[ -f "$root/etc/darkroom/darkroom.toml.dist" ] || fail "no darkroom.toml.dist beside a changed config"
[ "$(cat "$root/etc/darkroom/broker.secret")" = "guest:guest" ] || fail "second install overwrote the secret"

# Uninstall keeps data; --purge removes it.
mkdir -p "$root/etc/systemd/system/darkroom@small-1.service.d"
ln -s /etc/darkroom/units/small.conf "$root/etc/systemd/system/darkroom@small-1.service.d/50-class.conf"
"$top/ops/uninstall" --root "$root" --prefix "$prefix" >"$work/uninstall.log"
for f in "$prefix/bin/darkroomd" "$prefix/bin/darkroom-scale" /etc/systemd/system/darkroom@.service \
         /etc/systemd/system/darkroom@small-1.service.d "$prefix/share/darkroom" "$prefix/share/doc/darkroom"; do
  [ ! -e "$root$f" ] && [ ! -L "$root$f" ] || fail "uninstall left $f"
done
[ -f "$root/etc/darkroom/darkroom.toml" ] && [ -d "$root/var/lib/darkroom" ] || fail "uninstall removed data without --purge"
"$top/ops/uninstall" --root "$root" --prefix "$prefix" --purge >"$work/purge.log"
[ ! -e "$root/etc/darkroom" ] && [ ! -e "$root/var/lib/darkroom" ] && [ ! -e "$root/var/cache/darkroom" ] || fail "--purge left data"
echo "ops/tests/install.sh: ok"
