#!/usr/bin/env bash
# Checks deploy/: Prometheus rules (promtool), every YAML and JSON file parses, the compose file
# and Kubernetes manifests have the expected shape, and every metric the rules and dashboards
# use is one the code defines.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool missing: apt-get install -y prometheus" >&2; exit 1; }
promtool check rules deploy/prometheus/rules.yml
# Every alert fires when it should and stays silent when it should not.
promtool test rules deploy/prometheus/rules.test.yml
promtool check config --syntax-only deploy/prometheus/prometheus.yml >/dev/null 2>&1 \
  || promtool check config deploy/prometheus/prometheus.yml
python3 - <<'PY'
import glob, json, re, subprocess, sys
import yaml

errors = []
for path in sorted(glob.glob("deploy/**/*.y*ml", recursive=True)):
    try:
        docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
    except yaml.YAMLError as e:
        errors.append(f"{path}: {e}")
        continue
    if path.startswith("deploy/k8s/"):
        for d in docs:
            for key in ("apiVersion", "kind", "metadata"):
                if key not in d:
                    errors.append(f"{path}: a {d.get('kind', '?')} without {key}")
            if d.get("kind") == "Deployment":
                c = d["spec"]["template"]["spec"]["containers"][0]
                if "readinessProbe" not in c:
                    errors.append(f"{path}: {d['metadata']['name']} has no readiness probe")
compose = yaml.safe_load(open("deploy/compose.yaml"))
for svc in ("kafka", "postgres", "scorer", "aggregator", "edge", "prometheus", "grafana"):
    if svc not in compose.get("services", {}):
        errors.append(f"deploy/compose.yaml: no service {svc}")
dashboards = sorted(glob.glob("deploy/grafana/dashboards/*.json"))
exprs = []
for path in dashboards:
    d = json.load(open(path))
    exprs += [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
rules = yaml.safe_load(open("deploy/prometheus/rules.yml"))
exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
used = set()
for e in exprs:
    used |= set(re.findall(r"\b((?:scorer|aggregator|edge)_[a-z0-9_]+)", e))
src = subprocess.run(["grep", "-rhoE", r"\"(scorer|aggregator|edge)_[a-z0-9_]+\"",
                      "scorer/src", "portfolio-aggregator/src", "edge/src"],
                     capture_output=True, text=True).stdout
defined = {s.strip('"') for s in src.split()}
for m in sorted(used):
    base = re.sub(r"_(bucket|sum|count)$", "", m)
    if base not in defined:
        errors.append(f"metric {m} is used in deploy/ but not defined in the code")
# The image builds with the toolchain the workspace asks for.
need = re.search(r'^rust-version = "([0-9.]+)"', open("Cargo.toml").read(), re.M).group(1)
image = re.search(r"^FROM rust:([0-9.]+)", open("deploy/Dockerfile").read(), re.M).group(1)
if image != need:
    errors.append(f"deploy/Dockerfile builds with Rust {image}; the workspace's rust-version is {need}")
if not re.search(r"^USER [0-9]+:[0-9]+$", open("deploy/Dockerfile").read(), re.M):
    errors.append("deploy/Dockerfile: USER must be numeric (uid:gid) so runAsNonRoot can be verified")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"deploy/: {len(glob.glob('deploy/**/*.y*ml', recursive=True))} YAML files, "
      f"{len(dashboards)} dashboards, {len(used)} metrics checked")
PY
