#!/usr/bin/env bash
# Refreshes the link-analytics data the processor compiles in, from their
# upstream packages on the registries:
#   processor/data/crawler-patterns.txt  <- npm crawler-user-agents (MIT)
#   processor/data/referers.json         <- Snowplow's referers.yml as shipped
#                                           by the crate referer-parser-rs (Apache-2.0 data)
# Usage: scripts/update-link-data.sh [crawler-user-agents version] [referer-parser-rs version]
set -euo pipefail
cd "$(dirname "$0")/.."
crawlers_version="${1:-1.60.0}"
referers_version="${2:-0.1.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "crawler-user-agents@${crawlers_version}" >/dev/null && tar xzf crawler-user-agents-*.tgz)
mkdir -p "$work/crate/src"
cat > "$work/crate/Cargo.toml" <<TOML
[package]
name = "fetch-referers"
version = "0.0.0"
edition = "2021"
[dependencies]
referer-parser-rs = "=${referers_version}"
TOML
: > "$work/crate/src/lib.rs"
(cd "$work/crate" && cargo fetch --quiet)
referers_yml="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path "*referer-parser-rs-${referers_version}/tests/referers.yml" | head -1)"

python3 - "$work/package/crawler-user-agents.json" "$referers_yml" "$crawlers_version" <<'PY'
import json, sys, yaml
crawlers, referers, version = sys.argv[1:4]
patterns = [entry["pattern"] for entry in json.load(open(crawlers))]
with open("processor/data/crawler-patterns.txt", "w") as out:
    out.write("# Crawler user-agent patterns (regex, case-insensitive), one per line, from the\n")
    out.write(f"# npm package crawler-user-agents {version} (MIT); refresh with scripts/update-link-data.sh.\n")
    out.write("\n".join(patterns) + "\n")
hosts = {}
for medium, sources in yaml.safe_load(open(referers)).items():
    for name, spec in sources.items():
        for domain in spec.get("domains", []):
            hosts.setdefault(domain, [medium, name])
items = sorted(hosts.items())
with open("processor/data/referers.json", "w") as out:
    out.write("{\n" + ",\n".join(json.dumps(k) + ":" + json.dumps(v, separators=(",", ":")) for k, v in items) + "\n}\n")
print(f"{len(patterns)} crawler patterns, {len(items)} referrer hosts")
PY
