"""Validate rendered Kubernetes objects with `kubernetes-validate --strict`.

    validate_objects.py FILE          validate every object in FILE
    validate_objects.py --list FILE   print kind/name of every object

Custom resources (ServiceMonitor, ScaledObject, TriggerAuthentication) have no
schema in kubernetes-validate, which only ships the built-in API: they are
skipped here with the reason printed, and checked by scripts/deploy/
test_chart.py instead. Any other object the validator has no schema for is a
failure, not a warning.
"""

import os
import subprocess
import sys
import tempfile

import yaml

CUSTOM_RESOURCES = {
    ("monitoring.coreos.com", "ServiceMonitor"): "Prometheus Operator CRD",
    ("monitoring.coreos.com", "PrometheusRule"): "Prometheus Operator CRD",
    ("keda.sh", "ScaledObject"): "KEDA CRD",
    ("keda.sh", "TriggerAuthentication"): "KEDA CRD",
}


def load(path):
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def group(obj):
    api = obj.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def main(argv):
    if argv[:1] == ["--list"]:
        for obj in load(argv[1]):
            print(f'{obj["kind"]}/{obj["metadata"]["name"]}')
        return 0
    (path,) = argv
    objects = load(path)
    if not objects:
        print(f"{path}: no objects rendered")
        return 1
    builtin = []
    for obj in objects:
        reason = CUSTOM_RESOURCES.get((group(obj), obj["kind"]))
        if reason:
            print(
                f'skipped {obj["kind"]}/{obj["metadata"]["name"]} ({obj["apiVersion"]}): '
                f"{reason}; kubernetes-validate has no schema for custom resources offline"
            )
        else:
            builtin.append(obj)
    version = os.environ.get("KUBE_VERSION", "1.37.0")
    validator = os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
        yaml.safe_dump_all(builtin, out, sort_keys=False)
    try:
        result = subprocess.run(
            [validator, "--strict", "--kubernetes-version", version, out.name],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        os.unlink(out.name)
    lines = (result.stdout + result.stderr).splitlines()
    passed = [line for line in lines if line.startswith("INFO") and " passed " in line]
    problems = [line for line in lines if line.startswith(("WARN", "ERROR"))]
    for line in problems:
        print(line.replace(out.name, path))
    print(f"{len(passed)} of {len(builtin)} objects valid against Kubernetes {version} (strict)")
    ok = result.returncode == 0 and not problems and len(passed) == len(builtin)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
