#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets (fuzz/json.swift, job.swift, config.swift) against the Jobs and Config
# modules compiled with -sanitize=fuzzer,address, then runs each for FUZZ_SECONDS (default 60) on its corpus
# (fuzz/corpus/<target>, committed: small seeds plus the inputs libFuzzer found new coverage with, merged).
# A crash stops the run and leaves the input as .build/fuzz/crash-<target>-*; add it to a regression test,
# fix, and keep it in the corpus.
#   fuzz/run.sh [TARGET...]      (json job config; default all)
#   FUZZ_SECONDS=600 fuzz/run.sh json
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=.build/fuzz
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json job config)
flags=(--build-path "$build" --sanitize fuzzer --sanitize address)

need_config=0
for t in "${targets[@]}"; do
  case $t in json|job) ;; config) need_config=1 ;; *) echo "fuzz/run.sh: unknown target '$t' (json, job, config)" >&2; exit 2 ;; esac
done
swift build "${flags[@]}" --target Jobs
[ $need_config = 0 ] || swift build "${flags[@]}" --target Config
bin=$(swift build "${flags[@]}" --show-bin-path)
objects() { for m in "$@"; do find "$bin/$m.build" -name '*.o'; done; }

rc=0
for t in "${targets[@]}"; do
  leaks=1
  case $t in
    json|job) objs=$(objects Core Jobs); extra=() ;;
    # TOMLKit 0.6 leaks its table (~120 bytes) on every TOML syntax error (found by this fuzzer; a config is
    # parsed at start and on SIGHUP only), so LeakSanitizer is off for this target.
    config) objs=$(objects Core Config TOMLKit CTOML); extra=(-lstdc++); leaks=0 ;;
  esac
  # shellcheck disable=SC2086
  swiftc -sanitize=fuzzer,address -parse-as-library -O -I "$bin/Modules" -I "$bin" fuzz/$t.swift $objs "${extra[@]}" \
    -o "$build/fuzz-$t" 2> >(grep -v "Cannot export local symbol" >&2)   # gold's noise about ASan's own symbols
  mkdir -p "fuzz/corpus/$t" "$build/new-$t"
  echo "== fuzz $t: ${seconds}s, corpus fuzz/corpus/$t ($(ls "fuzz/corpus/$t" | wc -l) files)"
  if ! ASAN_OPTIONS=detect_leaks=$leaks "$build/fuzz-$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$build/crash-$t-" -print_final_stats=1 "$build/new-$t" "fuzz/corpus/$t" 2>"$build/fuzz-$t.log"; then
    tail -40 "$build/fuzz-$t.log"
    echo "fuzz $t: FAILED (inputs: $build/crash-$t-*)" >&2
    rc=1
    continue
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ +DONE' "$build/fuzz-$t.log" | sed "s/^/fuzz $t: /"
  echo "fuzz $t: no crash"
done
exit $rc
