"""Tests of the rendered Helm chart (helm/eventide).

Run by scripts/validate-deploy.sh (HELM set to its helm binary):

    python -m unittest -v scripts/deploy/test_chart.py

Each test renders the chart with `helm template` and asserts properties of the
objects Kubernetes would receive: every Deployment is probed, sized, non-root
and given a grace period that covers its drain; the processor never runs more
replicas than partitions; each optional feature adds or removes exactly its
own objects; wrong values fail the install.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "helm", "eventide")
PRODUCTION = os.path.join(CHART, "values-production.yaml")
HELM = os.environ.get("HELM", os.path.join(ROOT, ".cache", "tools", "helm", "helm"))
KUBE_VERSION = os.environ.get("KUBE_VERSION", "1.37.0")
RELEASE = "eventide"
NAMESPACE = "eventide"

# role key in values -> (Deployment name, port, listen variable)
ROLES = {
    "ingest": ("eventide-ingest", 8080, "EVENTIDE_INGEST_LISTEN"),
    "processor": ("eventide-processor", 8082, "EVENTIDE_PROCESSOR_LISTEN"),
    "queryApi": ("eventide-query-api", 8081, "EVENTIDE_QUERY_LISTEN"),
}


class RenderError(Exception):
    pass


def helm_template(*value_sets, production=False, kube_version=KUBE_VERSION, chart=CHART, extra=()):
    """Render the chart; value_sets are dicts applied in order after the values files."""
    cmd = [HELM, "template", RELEASE, chart, "--namespace", NAMESPACE, "--kube-version", kube_version]
    if production:
        cmd += ["-f", PRODUCTION]
    files = []
    try:
        for values in value_sets:
            handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
            json.dump(values, handle)  # JSON is YAML
            handle.close()
            files.append(handle.name)
            cmd += ["-f", handle.name]
        result = subprocess.run(cmd + list(extra), capture_output=True, text=True, check=False)
    finally:
        for name in files:
            os.unlink(name)
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return result.stdout


def exported_metrics():
    """Every metric name a crate's source writes as a string literal."""
    names = set()
    for crate in ("src", "ingest/src", "processor/src", "query-api/src", "http-serve/src", "telemetry/src", "schemas/src"):
        for root, _, files in os.walk(os.path.join(ROOT, crate)):
            for name in files:
                if name.endswith(".rs"):
                    with open(os.path.join(root, name), encoding="utf-8") as handle:
                        names.update(re.findall(r'"((?:eventide|process)_[a-z0-9_]+)"', handle.read()))
    return names


def render(*value_sets, **kwargs):
    return [doc for doc in yaml.safe_load_all(helm_template(*value_sets, **kwargs)) if doc]


def by_kind(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


def ids(objects):
    return {(obj["kind"], obj["metadata"]["name"]) for obj in objects}


def find(objects, kind, name):
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind}/{name} among {sorted(ids(objects))}")


def container(obj):
    (only,) = obj["spec"]["template"]["spec"]["containers"]
    return only


def env(obj):
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(obj)["env"]}


def seconds(duration):
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, f"unparsable duration {duration!r}"
    value, unit = int(match.group(1)), match.group(2)
    return {"ms": value / 1000, "s": value, "m": value * 60}[unit]


def labels_match(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


class Defaults(unittest.TestCase):
    """Properties that must hold for the default and the production values."""

    @classmethod
    def setUpClass(cls):
        cls.renders = {"default": render(), "production": render(production=True)}

    def each(self):
        for name, objects in self.renders.items():
            with self.subTest(values=name):
                yield name, objects

    def test_one_deployment_per_role_with_its_subcommand(self):
        for _, objects in self.each():
            deployments = {obj["metadata"]["name"]: obj for obj in by_kind(objects, "Deployment")}
            self.assertEqual(set(deployments), {name for name, _, _ in ROLES.values()})
            for key, (name, port, listen) in ROLES.items():
                main = container(deployments[name])
                self.assertEqual(main["args"], [{"queryApi": "query-api"}.get(key, key)])
                self.assertEqual(main["ports"], [{"name": "http", "containerPort": port, "protocol": "TCP"}])
                self.assertEqual(env(deployments[name])[listen], f"0.0.0.0:{port}")

    def test_every_deployment_has_meaningful_probes(self):
        for _, objects in self.each():
            for deployment in by_kind(objects, "Deployment"):
                main = container(deployment)
                with self.subTest(deployment=deployment["metadata"]["name"]):
                    self.assertEqual(main["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "http"})
                    self.assertEqual(main["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "http"})
                    self.assertEqual(main["startupProbe"]["httpGet"]["path"], "/healthz")
                    # Readiness reacts faster than liveness restarts.
                    self.assertLessEqual(
                        main["readinessProbe"]["periodSeconds"] * main["readinessProbe"]["failureThreshold"],
                        main["livenessProbe"]["periodSeconds"] * main["livenessProbe"]["failureThreshold"],
                    )

    def test_every_deployment_has_resources(self):
        for _, objects in self.each():
            for deployment in by_kind(objects, "Deployment"):
                resources = container(deployment)["resources"]
                with self.subTest(deployment=deployment["metadata"]["name"]):
                    self.assertIn("cpu", resources["requests"])
                    self.assertIn("memory", resources["requests"])
                    self.assertIn("memory", resources["limits"])

    def test_every_pod_runs_non_root_read_only_without_capabilities(self):
        for _, objects in self.each():
            for obj in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
                pod = obj["spec"]["template"]["spec"]
                with self.subTest(obj=(obj["kind"], obj["metadata"]["name"])):
                    self.assertIs(pod["securityContext"]["runAsNonRoot"], True)
                    self.assertGreater(pod["securityContext"]["runAsUser"], 0)
                    self.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
                    self.assertIs(pod["automountServiceAccountToken"], False)
                    for item in pod["containers"]:
                        context = item["securityContext"]
                        self.assertIs(context["runAsNonRoot"], True)
                        self.assertIs(context["readOnlyRootFilesystem"], True)
                        self.assertIs(context["allowPrivilegeEscalation"], False)
                        self.assertEqual(context["capabilities"]["drop"], ["ALL"])
                        # The read-only root needs writable volumes for the data dir and /tmp.
                        mounts = {m["mountPath"]: m["name"] for m in item["volumeMounts"]}
                        volumes = {v["name"]: v for v in pod["volumes"]}
                        self.assertIn("emptyDir", volumes[mounts["/tmp"]])
                        data_dir = {e["name"]: e.get("value") for e in item["env"]}["EVENTIDE_DATA_DIR"]
                        self.assertIn("emptyDir", volumes[mounts[data_dir]])

    def test_grace_period_covers_prestop_and_drain(self):
        for _, objects in self.each():
            for deployment in by_kind(objects, "Deployment"):
                pod = deployment["spec"]["template"]["spec"]
                main = container(deployment)
                pre_stop = main["lifecycle"]["preStop"]["sleep"]["seconds"]
                drain = seconds(env(deployment)["EVENTIDE_SHUTDOWN_TIMEOUT"])
                with self.subTest(deployment=deployment["metadata"]["name"]):
                    self.assertGreater(pre_stop, 0, "endpoints need time to drop the pod before SIGTERM")
                    self.assertGreaterEqual(pod["terminationGracePeriodSeconds"], pre_stop + drain)

    def test_rollouts_never_drop_below_the_desired_count(self):
        for _, objects in self.each():
            for deployment in by_kind(objects, "Deployment"):
                strategy = deployment["spec"]["strategy"]
                with self.subTest(deployment=deployment["metadata"]["name"]):
                    self.assertEqual(strategy["type"], "RollingUpdate")
                    self.assertEqual(strategy["rollingUpdate"]["maxUnavailable"], 0)
                    self.assertGreater(deployment["spec"]["minReadySeconds"], 0)

    def test_pods_spread_over_zones_and_nodes(self):
        for _, objects in self.each():
            for deployment in by_kind(objects, "Deployment"):
                pod = deployment["spec"]["template"]
                spread = pod["spec"]["topologySpreadConstraints"]
                with self.subTest(deployment=deployment["metadata"]["name"]):
                    self.assertEqual(
                        {c["topologyKey"] for c in spread},
                        {"topology.kubernetes.io/zone", "kubernetes.io/hostname"},
                    )
                    for constraint in spread:
                        self.assertTrue(labels_match(constraint["labelSelector"]["matchLabels"], pod["metadata"]["labels"]))
                        self.assertEqual(constraint["matchLabelKeys"], ["pod-template-hash"])

    def test_selectors_and_references_resolve(self):
        for _, objects in self.each():
            deployments = by_kind(objects, "Deployment")
            pod_labels = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments}
            services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
            for deployment in deployments:
                selector = deployment["spec"]["selector"]["matchLabels"]
                self.assertTrue(labels_match(selector, deployment["spec"]["template"]["metadata"]["labels"]))
            for name, service in services.items():
                matched = [d for d, labels in pod_labels.items() if labels_match(service["spec"]["selector"], labels)]
                self.assertEqual(matched, [name], f"Service {name} must select exactly its Deployment")
                self.assertEqual(service["spec"]["ports"][0]["targetPort"], "http")
            for pdb in by_kind(objects, "PodDisruptionBudget"):
                matched = [d for d, labels in pod_labels.items() if labels_match(pdb["spec"]["selector"]["matchLabels"], labels)]
                self.assertEqual(matched, [pdb["metadata"]["name"]])
            for policy in by_kind(objects, "NetworkPolicy"):
                matched = [d for d, labels in pod_labels.items() if labels_match(policy["spec"]["podSelector"]["matchLabels"], labels)]
                self.assertEqual(matched, [policy["metadata"]["name"]])
            for scaler in by_kind(objects, "HorizontalPodAutoscaler") + by_kind(objects, "ScaledObject"):
                target = scaler["spec"]["scaleTargetRef"]
                self.assertEqual(target["kind"], "Deployment")
                self.assertIn(target["name"], pod_labels)
            for ingress in by_kind(objects, "Ingress"):
                for rule in ingress["spec"]["rules"]:
                    for path in rule["http"]["paths"]:
                        backend = path["backend"]["service"]
                        self.assertIn(backend["name"], services)
                        self.assertEqual(backend["port"], {"name": "http"})
            for monitor in by_kind(objects, "ServiceMonitor"):
                selected = [n for n, s in services.items() if labels_match(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
                self.assertEqual(sorted(selected), sorted(services), "ServiceMonitor scrapes every role")
                self.assertEqual(monitor["spec"]["endpoints"][0]["path"], "/metrics")
            accounts = {a["metadata"]["name"] for a in by_kind(objects, "ServiceAccount")}
            for deployment in deployments:
                self.assertIn(deployment["spec"]["template"]["spec"]["serviceAccountName"], accounts)

    def test_every_object_is_labelled_and_namespaced(self):
        for _, objects in self.each():
            for obj in objects:
                labels = obj["metadata"]["labels"]
                with self.subTest(obj=(obj["kind"], obj["metadata"]["name"])):
                    self.assertEqual(obj["metadata"]["namespace"], NAMESPACE)
                    self.assertEqual(labels["app.kubernetes.io/name"], "eventide")
                    self.assertEqual(labels["app.kubernetes.io/instance"], RELEASE)
                    self.assertEqual(labels["app.kubernetes.io/managed-by"], "Helm")

    def test_pods_log_json_and_processors_join_statically(self):
        for _, objects in self.each():
            for deployment in by_kind(objects, "Deployment"):
                self.assertEqual(env(deployment)["EVENTIDE_LOG_FORMAT"], "json")
            processor = find(objects, "Deployment", "eventide-processor")
            self.assertEqual(env(processor)["EVENTIDE_INSTANCE_ID"], {"fieldRef": {"fieldPath": "metadata.name"}})

    def test_hook_jobs_run_before_install_and_upgrade(self):
        for name, objects in self.each():
            jobs = {job["metadata"]["name"]: job for job in by_kind(objects, "Job")}
            expected = {"eventide-create-topics"} | ({"eventide-migrate"} if name == "production" else set())
            self.assertEqual(set(jobs), expected)
            for job in jobs.values():
                annotations = job["metadata"]["annotations"]
                self.assertEqual(annotations["helm.sh/hook"], "pre-install,pre-upgrade")
                self.assertIn("before-hook-creation", annotations["helm.sh/hook-delete-policy"])
                self.assertEqual(job["spec"]["template"]["spec"]["restartPolicy"], "Never")
                self.assertEqual(container(job)["args"], [job["metadata"]["name"].removeprefix("eventide-")])
            topics = env(jobs["eventide-create-topics"])
            partitions = "12" if name == "production" else "6"
            self.assertEqual(topics["EVENTIDE_PARTITIONS"], partitions)
            self.assertEqual(topics["EVENTIDE_REPLICATION_FACTOR"], "3")


class ShutdownBudget(unittest.TestCase):
    def test_grace_period_follows_the_drain_deadline(self):
        objects = render({"shutdown": {"timeoutSeconds": 90, "preStopSleepSeconds": 7, "marginSeconds": 3}})
        for deployment in by_kind(objects, "Deployment"):
            self.assertEqual(env(deployment)["EVENTIDE_SHUTDOWN_TIMEOUT"], "90s")
            self.assertEqual(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 100)
            self.assertEqual(container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"], 7)

    def test_a_role_can_have_its_own_deadline(self):
        objects = render({"processor": {"shutdownTimeoutSeconds": 120}})
        processor = find(objects, "Deployment", "eventide-processor")
        self.assertEqual(env(processor)["EVENTIDE_SHUTDOWN_TIMEOUT"], "120s")
        self.assertEqual(processor["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 135)
        ingest = find(objects, "Deployment", "eventide-ingest")
        self.assertEqual(env(ingest)["EVENTIDE_SHUTDOWN_TIMEOUT"], "30s")

    def test_a_grace_period_shorter_than_the_drain_is_refused(self):
        with self.assertRaisesRegex(RenderError, "terminationGracePeriodSeconds"):
            render({"ingest": {"terminationGracePeriodSeconds": 39}})
        objects = render({"ingest": {"terminationGracePeriodSeconds": 40}})
        ingest = find(objects, "Deployment", "eventide-ingest")
        self.assertEqual(ingest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 40)

    def test_older_clusters_get_an_exec_sleep(self):
        objects = render(kube_version="1.29.0")
        for deployment in by_kind(objects, "Deployment"):
            self.assertEqual(container(deployment)["lifecycle"]["preStop"], {"exec": {"command": ["/bin/sleep", "10"]}})


class ProcessorReplicas(unittest.TestCase):
    def test_replicas_up_to_the_partition_count_render(self):
        for partitions in (1, 3, 12):
            objects = render({"kafka": {"partitions": partitions}, "processor": {"replicas": partitions}})
            processor = find(objects, "Deployment", "eventide-processor")
            self.assertEqual(processor["spec"]["replicas"], partitions)

    def test_replicas_above_the_partition_count_fail(self):
        for partitions in (1, 3, 12):
            with self.subTest(partitions=partitions):
                with self.assertRaisesRegex(RenderError, r"processor.replicas \(\d+\) exceeds kafka.partitions"):
                    render({"kafka": {"partitions": partitions}, "processor": {"replicas": partitions + 1}})

    def test_keda_maximum_is_the_partition_count(self):
        objects = render({"kafka": {"partitions": 9}, "processor": {"keda": {"enabled": True}}})
        scaler = find(objects, "ScaledObject", "eventide-processor")
        self.assertEqual(scaler["spec"]["maxReplicaCount"], 9)
        trigger = scaler["spec"]["triggers"][0]
        self.assertEqual(trigger["type"], "kafka")
        self.assertEqual(trigger["metadata"]["consumerGroup"], "eventide-processor")
        self.assertEqual(trigger["metadata"]["allowIdleConsumers"], "false")
        self.assertNotIn("replicas", find(objects, "Deployment", "eventide-processor")["spec"])

    def test_keda_maximum_above_the_partition_count_fails(self):
        with self.assertRaisesRegex(RenderError, "maxReplicas"):
            render({"kafka": {"partitions": 4}, "processor": {"keda": {"enabled": True, "maxReplicas": 5}}})
        objects = render({"kafka": {"partitions": 4}, "processor": {"keda": {"enabled": True, "maxReplicas": 3}}})
        self.assertEqual(find(objects, "ScaledObject", "eventide-processor")["spec"]["maxReplicaCount"], 3)

    def test_processor_has_no_hpa(self):
        objects = render(production=True)
        hpas = {obj["spec"]["scaleTargetRef"]["name"] for obj in by_kind(objects, "HorizontalPodAutoscaler")}
        self.assertEqual(hpas, {"eventide-ingest", "eventide-query-api"})


# feature name -> (values that turn it on, values that turn it off, the objects
# it owns, or {"default": ..., "production": ...} when that depends on the rest)
FEATURES = {
    "ingest HPA": (
        {"ingest": {"autoscaling": {"enabled": True}}},
        {"ingest": {"autoscaling": {"enabled": False}}},
        {("HorizontalPodAutoscaler", "eventide-ingest")},
    ),
    "query-api HPA": (
        {"queryApi": {"autoscaling": {"enabled": True}}},
        {"queryApi": {"autoscaling": {"enabled": False}}},
        {("HorizontalPodAutoscaler", "eventide-query-api")},
    ),
    "processor KEDA": (
        {"processor": {"keda": {"enabled": True}}},
        {"processor": {"keda": {"enabled": False}}},
        {
            "default": {("ScaledObject", "eventide-processor")},
            # Production authenticates to Kafka: KEDA needs the credentials too.
            "production": {("ScaledObject", "eventide-processor"), ("TriggerAuthentication", "eventide-processor")},
        },
    ),
    "ingest PDB": (
        {"ingest": {"pdb": {"enabled": True}}},
        {"ingest": {"pdb": {"enabled": False}}},
        {("PodDisruptionBudget", "eventide-ingest")},
    ),
    "processor PDB": (
        {"processor": {"pdb": {"enabled": True}}},
        {"processor": {"pdb": {"enabled": False}}},
        {("PodDisruptionBudget", "eventide-processor")},
    ),
    "query-api PDB": (
        {"queryApi": {"pdb": {"enabled": True}}},
        {"queryApi": {"pdb": {"enabled": False}}},
        {("PodDisruptionBudget", "eventide-query-api")},
    ),
    "ingest Ingress": (
        {"ingest": {"ingress": {"enabled": True}}},
        {"ingest": {"ingress": {"enabled": False}}},
        {("Ingress", "eventide-ingest")},
    ),
    "query-api Ingress": (
        {"queryApi": {"ingress": {"enabled": True}}},
        {"queryApi": {"ingress": {"enabled": False}}},
        {("Ingress", "eventide-query-api")},
    ),
    "ServiceMonitor": (
        {"metrics": {"serviceMonitor": {"enabled": True}}},
        {"metrics": {"serviceMonitor": {"enabled": False}}},
        {("ServiceMonitor", "eventide")},
    ),
    "NetworkPolicy": (
        {"networkPolicy": {"enabled": True}},
        {"networkPolicy": {"enabled": False}},
        {("NetworkPolicy", name) for name, _, _ in ROLES.values()},
    ),
    "rules ConfigMap": (
        {"rules": {"content": "[[rule]]\nname = \"long-training\"\n"}},
        {"rules": {"content": ""}},
        {("ConfigMap", "eventide-rules")},
    ),
    "destinations ConfigMap": (
        {"destinations": {"content": "[[destination]]\nname = \"crm\"\n"}},
        {"destinations": {"content": ""}},
        {("ConfigMap", "eventide-destinations")},
    ),
    "destination secrets": (
        {"destinations": {"secretEnv": {"CRM_TOKEN": "s3cret"}}},
        {"destinations": {"secretEnv": {}}},
        {("Secret", "eventide-destination-secrets")},
    ),
    "API keys Secret": (
        {"auth": {"keys": "[[key]]\napp = \"web\"\nsha256 = \"00\"\n"}},
        {"auth": {"keys": ""}},
        {("Secret", "eventide-keys")},
    ),
    "ScyllaDB migrate Job": (
        {"scylla": {"enabled": True, "contactPoints": ["scylla:9042"]}},
        {"scylla": {"enabled": False}},
        {("Job", "eventide-migrate")},
    ),
    "topic creation Job": (
        {"kafka": {"createTopics": {"enabled": True}}},
        {"kafka": {"createTopics": {"enabled": False}}},
        {("Job", "eventide-create-topics")},
    ),
    "ServiceAccount": (
        {"serviceAccount": {"create": True}},
        {"serviceAccount": {"create": False, "name": "existing"}},
        {("ServiceAccount", "eventide")},
    ),
}


class Toggles(unittest.TestCase):
    """Each optional feature adds or removes exactly its own objects, from either starting point."""

    def check(self, production):
        for feature, (on, off, owned) in FEATURES.items():
            if isinstance(owned, dict):
                owned = owned["production" if production else "default"]
            with self.subTest(feature=feature, production=production):
                with_it = ids(render(on, production=production))
                without = ids(render(off, production=production))
                self.assertEqual(with_it - without, owned)
                self.assertEqual(without - with_it, set())

    def test_from_default_values(self):
        self.check(production=False)

    def test_from_production_values(self):
        self.check(production=True)

    def test_keda_with_kafka_credentials_adds_its_trigger_authentication(self):
        sasl = {"kafka": {"sasl": {"enabled": True, "existingSecret": "kafka-creds"}}}
        without = ids(render(sasl))
        with_it = ids(render(sasl, {"processor": {"keda": {"enabled": True}}}))
        self.assertEqual(with_it - without, {("ScaledObject", "eventide-processor"), ("TriggerAuthentication", "eventide-processor")})

    def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(self):
        objects = render({"ingest": {"autoscaling": {"enabled": True}}})
        self.assertNotIn("replicas", find(objects, "Deployment", "eventide-ingest")["spec"])
        self.assertEqual(find(objects, "Deployment", "eventide-query-api")["spec"]["replicas"], 2)

    def test_files_are_mounted_where_their_variables_point(self):
        on = {}
        for feature in ("rules ConfigMap", "destinations ConfigMap", "API keys Secret", "destination secrets"):
            for key, value in FEATURES[feature][0].items():
                on.setdefault(key, {}).update(value)
        objects = render(on)
        for name, _, _ in ROLES.values():
            deployment = find(objects, "Deployment", name)
            variables = env(deployment)
            mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
            volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
            files = {k: v for k, v in variables.items() if k.endswith("_FILE")}
            # Every single service needs the keys file (`eventide processor` too, for now).
            expected = {"EVENTIDE_KEYS_FILE"}
            if name == "eventide-processor":
                expected |= {"EVENTIDE_RULES_FILE", "EVENTIDE_DESTINATIONS_FILE"}
            self.assertEqual(set(files), expected, name)
            for path in files.values():
                directory, file_name = os.path.split(path)
                volume = volumes[mounts[directory]]
                source = volume.get("configMap") or volume.get("secret")
                name_key = "name" if "configMap" in volume else "secretName"
                owner = find(objects, "ConfigMap" if "configMap" in volume else "Secret", source[name_key])
                self.assertIn(file_name, owner["data"])
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            self.assertTrue(any(k.startswith("checksum/") for k in annotations), "pods roll when their files change")
        processor = find(objects, "Deployment", "eventide-processor")
        self.assertEqual(container(processor)["envFrom"], [{"secretRef": {"name": "eventide-destination-secrets"}}])

    def test_existing_secret_is_used_by_name(self):
        objects = render({"auth": {"existingSecret": "api-keys", "secretKey": "keys.toml"}})
        self.assertFalse(by_kind(objects, "Secret"))
        for deployment in by_kind(objects, "Deployment"):
            volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
            self.assertEqual(volumes["keys"]["secret"]["secretName"], "api-keys")
            self.assertEqual(env(deployment)["EVENTIDE_KEYS_FILE"], "/etc/eventide/keys/keys.toml")
            self.assertNotIn("EVENTIDE_INSECURE_NO_AUTH", env(deployment))

    def test_no_keys_needs_an_explicit_insecure_switch(self):
        with self.assertRaisesRegex(RenderError, "need API keys"):
            render({"auth": {"existingSecret": "", "keys": ""}})
        objects = render({"auth": {"existingSecret": "", "insecureNoAuth": True}})
        for deployment in by_kind(objects, "Deployment"):
            self.assertEqual(env(deployment)["EVENTIDE_INSECURE_NO_AUTH"], "true")
            self.assertNotIn("EVENTIDE_KEYS_FILE", env(deployment))
            self.assertNotIn("keys", {v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]})


class Kafka(unittest.TestCase):
    def test_credentials_stay_in_secrets(self):
        objects = render(production=True)
        for obj in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
            items = container(obj)["env"]
            names = [item["name"] for item in items]
            variables = env(obj)
            with self.subTest(obj=obj["metadata"]["name"]):
                options = dict(pair.split("=", 1) for pair in variables["EVENTIDE_KAFKA_OPTIONS"].split("\n"))
                self.assertEqual(options["security.protocol"], "SASL_SSL")
                self.assertEqual(options["sasl.mechanism"], "SCRAM-SHA-512")
                # $(VAR) is only expanded for variables defined earlier in the list.
                for key, var in (("sasl.username", "EVENTIDE_KAFKA_SASL_USERNAME"), ("sasl.password", "EVENTIDE_KAFKA_SASL_PASSWORD")):
                    self.assertEqual(options[key], f"$({var})")
                    self.assertLess(names.index(var), names.index("EVENTIDE_KAFKA_OPTIONS"))
                    self.assertEqual(variables[var]["secretKeyRef"]["name"], "eventide-kafka-sasl")
                mounts = {m["mountPath"] for m in container(obj)["volumeMounts"]}
                self.assertIn(os.path.dirname(options["ssl.ca.location"]), mounts)

    def test_security_protocol_follows_the_switches(self):
        cases = {
            (False, False): None,
            (True, False): "SASL_PLAINTEXT",
            (False, True): "SSL",
            (True, True): "SASL_SSL",
        }
        for (sasl, tls), protocol in cases.items():
            with self.subTest(sasl=sasl, tls=tls):
                objects = render({"kafka": {"sasl": {"enabled": sasl, "existingSecret": "creds"}, "tls": {"enabled": tls}}})
                variables = env(find(objects, "Deployment", "eventide-ingest"))
                options = variables.get("EVENTIDE_KAFKA_OPTIONS", "")
                if protocol is None:
                    self.assertNotIn("security.protocol", options)
                else:
                    self.assertIn(f"security.protocol={protocol}", options.split("\n"))

    def test_mutual_tls_points_at_the_mounted_files(self):
        objects = render({"kafka": {"tls": {"enabled": True, "existingSecret": "kafka-tls", "certKey": "tls.crt", "keyKey": "tls.key"}}})
        options = env(find(objects, "Deployment", "eventide-processor"))["EVENTIDE_KAFKA_OPTIONS"].split("\n")
        self.assertIn("ssl.certificate.location=/etc/eventide/kafka-tls/tls.crt", options)
        self.assertIn("ssl.key.location=/etc/eventide/kafka-tls/tls.key", options)


    def test_a_properties_secret_is_mounted_and_named_by_its_file(self):
        objects = render({"kafka": {"propertiesSecret": {"existingSecret": "kafka-client", "key": "client.properties"}}})
        for obj in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
            with self.subTest(obj=obj["metadata"]["name"]):
                path = env(obj)["EVENTIDE_KAFKA_PROPERTIES_FILE"]
                self.assertEqual(path, "/etc/eventide/kafka-properties/client.properties")
                mounts = {m["name"]: m["mountPath"] for m in container(obj)["volumeMounts"]}
                self.assertEqual(mounts["kafka-properties"], os.path.dirname(path))
                volumes = {v["name"]: v for v in obj["spec"]["template"]["spec"]["volumes"]}
                self.assertEqual(volumes["kafka-properties"]["secret"]["secretName"], "kafka-client")

    def test_registry_credentials_and_lookup_only_come_from_values_and_the_secret(self):
        base = {"schemaRegistry": {"url": "https://registry.example:8081", "autoRegister": False}}
        for kind, expected in (
            ("basic", {"EVENTIDE_SCHEMA_REGISTRY_USERNAME": "user", "EVENTIDE_SCHEMA_REGISTRY_PASSWORD": "secret"}),
            ("bearer", {"EVENTIDE_SCHEMA_REGISTRY_TOKEN": "bearer-token"}),
        ):
            auth = {"type": kind, "existingSecret": "registry", "usernameKey": "user", "passwordKey": "secret", "tokenKey": "bearer-token"}
            objects = render(base, {"schemaRegistry": {"auth": auth}})
            for obj in by_kind(objects, "Deployment"):
                with self.subTest(kind=kind, obj=obj["metadata"]["name"]):
                    variables = env(obj)
                    self.assertEqual(variables["EVENTIDE_SCHEMA_REGISTRY_URL"], "https://registry.example:8081")
                    self.assertEqual(variables["EVENTIDE_SCHEMA_REGISTRY_AUTO_REGISTER"], "false")
                    for name, key in expected.items():
                        self.assertEqual(variables[name]["secretKeyRef"], {"name": "registry", "key": key})
                    for name in ("EVENTIDE_SCHEMA_REGISTRY_USERNAME", "EVENTIDE_SCHEMA_REGISTRY_TOKEN"):
                        if name not in expected:
                            self.assertNotIn(name, variables)
        with self.assertRaises(RenderError):
            render(base, {"schemaRegistry": {"auth": {"type": "basic"}}})
        with self.assertRaises(RenderError):
            render(base, {"schemaRegistry": {"auth": {"type": "digest", "existingSecret": "registry"}}})

    def test_dashboard_and_alerts_query_only_metrics_the_code_exports(self):
        exported = exported_metrics()
        self.assertIn("eventide_http_request_seconds", exported)
        objects = render(production=True)
        (dashboard,) = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]
        self.assertEqual(dashboard["metadata"]["labels"]["grafana_dashboard"], "1")
        board = json.loads(dashboard["data"]["eventide.json"])
        titles = [p["title"] for p in board["panels"] if p["type"] == "row"]
        self.assertEqual(titles, ["Ingest", "Processor", "Freshness", "Rules", "Delivery", "Query API", "Processes"])
        queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        (rule,) = by_kind(objects, "PrometheusRule")
        alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
        self.assertEqual(
            set(alerts),
            {"EventideConsumerLagGrowing", "EventideStale", "EventideDeadLettersGrowing",
             "EventideDestinationFailing", "EventideDestinationPaused", "EventideHttpErrors",
             "EventidePodNotReady"},
        )
        for expr in queries + list(alerts.values()):
            with self.subTest(expr=expr):
                named = set(re.findall(r"\b((?:eventide|process)_[a-z0-9_]+)", expr))
                self.assertTrue(named or "kube_pod_status_ready" in expr, expr)
                for metric in named:
                    base = re.sub(r"_(bucket|sum|count)$", "", metric)
                    self.assertIn(base, exported, f"{expr} names {metric}, which no crate exports")

    def test_dashboard_and_alerts_are_off_by_default(self):
        objects = render()
        self.assertFalse(by_kind(objects, "PrometheusRule"))
        self.assertFalse([o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")])

    def test_option_values_keep_their_commas(self):
        objects = render({"kafka": {"options": {"client.id": "a,b=c"}}})
        options = env(find(objects, "Deployment", "eventide-ingest"))["EVENTIDE_KAFKA_OPTIONS"].split("\n")
        self.assertIn("client.id=a,b=c", options)


class Scylla(unittest.TestCase):
    SECURED = {
        "scylla": {
            "enabled": True,
            "contactPoints": ["scylla-client:9142"],
            "datacenter": "eu-west-1",
            "auth": {"enabled": True, "existingSecret": "scylla-creds"},
            "tls": {"enabled": True, "existingSecret": "scylla-tls", "certKey": "tls.crt", "keyKey": "tls.key"},
        }
    }

    def test_credentials_come_from_the_existing_secret_and_tls_files_are_mounted(self):
        objects = render(self.SECURED)
        for obj in [find(objects, "Deployment", "eventide-processor"), find(objects, "Deployment", "eventide-query-api"), find(objects, "Job", "eventide-migrate")]:
            variables = env(obj)
            with self.subTest(obj=obj["metadata"]["name"]):
                for var, key in (("EVENTIDE_SCYLLA_USERNAME", "username"), ("EVENTIDE_SCYLLA_PASSWORD", "password")):
                    self.assertEqual(variables[var]["secretKeyRef"], {"name": "scylla-creds", "key": key})
                self.assertEqual(variables["EVENTIDE_SCYLLA_DATACENTER"], "eu-west-1")
                self.assertEqual(variables["EVENTIDE_SCYLLA_CONSISTENCY"], "LOCAL_QUORUM")
                self.assertEqual(variables["EVENTIDE_SCYLLA_SERIAL_CONSISTENCY"], "LOCAL_SERIAL")
                mounts = {m["mountPath"] for m in container(obj)["volumeMounts"]}
                for var in ("EVENTIDE_SCYLLA_TLS_CA", "EVENTIDE_SCYLLA_TLS_CERT", "EVENTIDE_SCYLLA_TLS_KEY"):
                    self.assertIn(os.path.dirname(variables[var]), mounts)
                secrets = {v["secret"]["secretName"] for v in obj["spec"]["template"]["spec"]["volumes"] if "secret" in v}
                self.assertIn("scylla-tls", secrets)

    def test_without_auth_or_tls_nothing_is_rendered_for_them(self):
        objects = render({"scylla": {"enabled": True, "contactPoints": ["scylla:9042"]}})
        variables = env(find(objects, "Deployment", "eventide-processor"))
        for var in ("EVENTIDE_SCYLLA_USERNAME", "EVENTIDE_SCYLLA_PASSWORD", "EVENTIDE_SCYLLA_TLS_CA", "EVENTIDE_SCYLLA_DATACENTER"):
            self.assertNotIn(var, variables)


class Console(unittest.TestCase):
    def test_off_by_default(self):
        variables = env(find(render(), "Deployment", "eventide-query-api"))
        self.assertNotIn("EVENTIDE_CONSOLE", variables)

    def test_replicas_share_the_session_secret(self):
        objects = render({"queryApi": {"console": {"enabled": True, "existingSecret": "console", "sessionTtl": "8h"}}})
        variables = env(find(objects, "Deployment", "eventide-query-api"))
        self.assertEqual(variables["EVENTIDE_CONSOLE"], "true")
        self.assertEqual(variables["EVENTIDE_CONSOLE_SESSION_TTL"], "8h")
        self.assertEqual(variables["EVENTIDE_CONSOLE_SECRET"]["secretKeyRef"], {"name": "console", "key": "console-secret"})
        for other in ("eventide-ingest", "eventide-processor"):
            self.assertNotIn("EVENTIDE_CONSOLE", env(find(objects, "Deployment", other)))

    def test_several_replicas_without_a_shared_secret_are_refused(self):
        with self.assertRaisesRegex(RenderError, "console.existingSecret"):
            render({"queryApi": {"console": {"enabled": True}}})
        objects = render({"queryApi": {"replicas": 1, "console": {"enabled": True}}})
        self.assertNotIn("EVENTIDE_CONSOLE_SECRET", env(find(objects, "Deployment", "eventide-query-api")))


class Schema(unittest.TestCase):
    """A wrong value fails at install, before anything reaches the cluster."""

    BAD = {
        "replicas as text": {"ingest": {"replicas": "two"}},
        "misspelt key": {"ingest": {"replica": 3}},
        "unknown top-level key": {"kafak": {"brokers": "k:9092"}},
        "zero partitions": {"kafka": {"partitions": 0}},
        "broker without port": {"kafka": {"brokers": "kafka"}},
        "empty brokers": {"kafka": {"brokers": ""}},
        "unknown log format": {"logFormat": "xml"},
        "unknown SASL mechanism": {"kafka": {"sasl": {"enabled": True, "mechanism": "GSSAPI", "existingSecret": "s"}}},
        "SASL without a Secret": {"kafka": {"sasl": {"enabled": True}}},
        "Scylla without contact points": {"scylla": {"enabled": True}},
        "root allowed": {"podSecurityContext": {"runAsNonRoot": False}},
        "no resource requests": {"processor": {"resources": {"requests": None}}},
        "no memory limit": {"ingest": {"resources": {"limits": None}}},
        "Recreate strategy": {"queryApi": {"strategy": {"type": "Recreate"}}},
        "probe without a handler": {"ingest": {"readinessProbe": {"httpGet": None}}},
        "no liveness probe": {"queryApi": {"livenessProbe": None}},
        "negative drain": {"shutdown": {"timeoutSeconds": -1}},
        "duration without unit": {"processor": {"flushInterval": "1"}},
        "HPA min above max": {"ingest": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}},
        "line break in a Kafka option": {"kafka": {"options": {"client.id": "a\nb"}}},
    }

    def test_wrong_values_fail(self):
        for name, values in self.BAD.items():
            with self.subTest(case=name):
                with self.assertRaises(RenderError):
                    render(values)


class Notes(unittest.TestCase):
    """NOTES.txt tells how to reach the APIs. Rendered through a copy of the
    chart, because `helm template` leaves NOTES.txt out."""

    def notes(self, *value_sets, production=False):
        tmp = tempfile.mkdtemp()
        try:
            chart = os.path.join(tmp, "eventide")
            shutil.copytree(CHART, chart)
            shutil.copy(os.path.join(chart, "templates", "NOTES.txt"), os.path.join(chart, "notes.txt"))
            with open(os.path.join(chart, "templates", "notes-preview.yaml"), "w", encoding="utf-8") as handle:
                handle.write('notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n')
            out = helm_template(*value_sets, production=production, chart=chart, extra=["--show-only", "templates/notes-preview.yaml"])
            return yaml.safe_load(out)["notes"]
        finally:
            shutil.rmtree(tmp)

    def test_default_notes_port_forward_and_warn(self):
        text = self.notes()
        self.assertIn("kubectl -n eventide port-forward svc/eventide-ingest 8080:8080", text)
        self.assertIn("kubectl -n eventide port-forward svc/eventide-query-api 8081:8081", text)
        self.assertIn("scylla.enabled is false", text)
        self.assertIn("create secret generic eventide-api-keys --from-file=keys.toml=./keys.toml", text)

    def test_production_notes_give_the_ingress_urls(self):
        text = self.notes(production=True)
        self.assertIn("https://events.example.com/", text)
        self.assertIn("https://query.example.com/", text)
        self.assertIn("KEDA scales 3..12", text)
        self.assertNotIn("WARNING", text)


if __name__ == "__main__":
    unittest.main()
