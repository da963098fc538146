#!/usr/bin/env bash
# The Prometheus side of ops/: the alert rules pass `promtool check rules` and their unit tests
# (ops/prometheus/alerts_test.yml: each rule fires on the series it should and not on a healthy neighbour);
# the Grafana dashboard is JSON; and every darkroom_* series that the rules, the dashboard and
# docs/operations.md name is one the worker defines (Sources/Worker), so none of them charts a typo.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rules=$root/ops/prometheus/alerts.yml
dashboard=$root/ops/grafana/darkroom.json
if command -v promtool >/dev/null; then
  promtool check rules "$rules"
  promtool test rules "$root/ops/prometheus/alerts_test.yml"
else
  echo "promtool not found (Debian package prometheus, ops/deps installs it): only checking that the YAML parses" >&2
  python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert len(d["groups"][0]["rules"]) == 3' "$rules"
fi
# The dashboard is JSON, and each panel's PromQL parses: with Grafana's variables filled in, every query
# becomes a recording rule that promtool checks.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$dashboard" "$tmp/dashboard-rules.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
assert exprs, "the dashboard has no queries"
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$class", ".*").replace("$instance", ".*")
        out.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}\n")
print(f"dashboard: {len(d['panels'])} panels, {len(exprs)} queries")
PY
if command -v promtool >/dev/null; then promtool check rules "$tmp/dashboard-rules.yml"; fi

# Series the worker defines: MetricName constants, the names ObservabilityServer registers, and the webhook
# and upload counters (DeliveryCounters).
defined=$(grep -ohE '"(darkroom|process)_[a-z_]+"' "$root/Sources/Worker/WorkerMetrics.swift" "$root/Sources/Worker/ObservabilityServer.swift" \
          "$root/Sources/Worker/DeliveryCounters.swift" | tr -d '"' | sort -u)
used=$(cat "$rules" "$dashboard" "$root/docs/operations.md" | sed -E 's/\b[a-z_]+\.(json|md|yml|yaml|log|safetensors)\b//g' \
       | grep -oE '\b(darkroom|process)_[a-z_]+' \
       | sed -E 's/_(bucket|count|sum)$//' | sort -u)
missing=""
for name in $used; do
  grep -qx "$name" <<<"$defined" || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "ops/tests/prometheus.sh: named in the rules, the dashboard or docs/operations.md but not defined by the worker:$missing" >&2
  exit 1
fi
echo "prometheus: rules, rule tests, dashboard and series names OK ($(wc -w <<<"$used") series names checked)"
