{{/* vim: set filetype=mustache: */}}

{{- define "eventide.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name prefix: the release name, plus the chart name unless the release
name already contains it. Role suffixes (-query-api is the longest) must fit
in 63 characters, so the prefix is cut at 50.
*/}}
{{- define "eventide.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "eventide.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "eventide.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventide.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "eventide.labels" -}}
helm.sh/chart: {{ include "eventide.chart" . }}
{{ include "eventide.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eventide
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component: (dict "root" $ "component" "ingest") */}}
{{- define "eventide.componentLabels" -}}
{{ include "eventide.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "eventide.componentSelectorLabels" -}}
{{ include "eventide.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* metadata.annotations for every object, with extra ones: (dict "root" $ "extra" map) */}}
{{- define "eventide.annotations" -}}
{{- $all := merge (deepCopy (default (dict) .extra)) (deepCopy (default (dict) .root.Values.commonAnnotations)) -}}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{- define "eventide.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eventide.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "eventide.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
The roles that run as Deployments. Adding one (e.g. delivery) is a values
block plus a line here.
*/}}
{{- define "eventide.roles" -}}
ingest:
  component: ingest
  command: ingest
  listenEnv: EVENTIDE_INGEST_LISTEN
  autoscaling: hpa
  keys: true
processor:
  component: processor
  command: processor
  listenEnv: EVENTIDE_PROCESSOR_LISTEN
  autoscaling: keda
  # The processor serves no authenticated API, but `eventide processor` still
  # refuses to start without a keys file (or --insecure-no-auth).
  keys: true
queryApi:
  component: query-api
  command: query-api
  listenEnv: EVENTIDE_QUERY_LISTEN
  autoscaling: hpa
  keys: true
{{- end -}}

{{/* Seconds of the drain deadline of a role: (dict "root" $ "values" $roleValues) */}}
{{- define "eventide.shutdownSeconds" -}}
{{- if kindIs "invalid" .values.shutdownTimeoutSeconds -}}
{{- .root.Values.shutdown.timeoutSeconds | int -}}
{{- else -}}
{{- .values.shutdownTimeoutSeconds | int -}}
{{- end -}}
{{- end -}}

{{/* The grace period of a role, checked against preStop + drain deadline. */}}
{{- define "eventide.gracePeriod" -}}
{{- $drain := include "eventide.shutdownSeconds" . | int -}}
{{- $preStop := .root.Values.shutdown.preStopSleepSeconds | int -}}
{{- $minimum := add $preStop $drain -}}
{{- if kindIs "invalid" .values.terminationGracePeriodSeconds -}}
{{- add $minimum (.root.Values.shutdown.marginSeconds | int) -}}
{{- else -}}
{{- $given := .values.terminationGracePeriodSeconds | int -}}
{{- if lt $given $minimum -}}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must cover shutdown.preStopSleepSeconds + the drain deadline (%d + %d = %d), or pods are killed mid-drain" .key $given $preStop $drain $minimum) -}}
{{- end -}}
{{- $given -}}
{{- end -}}
{{- end -}}

{{/* Is a replica count owned by an autoscaler? (dict "root" $ "key" "ingest") -> "true" or "" */}}
{{- define "eventide.autoscaled" -}}
{{- $v := index .root.Values .key -}}
{{- if and (hasKey $v "autoscaling") $v.autoscaling.enabled -}}true{{- end -}}
{{- if and (hasKey $v "keda") $v.keda.enabled -}}true{{- end -}}
{{- end -}}

{{/* The KEDA maximum: processor.keda.maxReplicas or the partition count, never above it. */}}
{{- define "eventide.kedaMaxReplicas" -}}
{{- $partitions := .Values.kafka.partitions | int -}}
{{- $keda := .Values.processor.keda -}}
{{- if kindIs "invalid" $keda.maxReplicas -}}
{{- $partitions -}}
{{- else -}}
{{- if gt ($keda.maxReplicas | int) $partitions -}}
{{- fail (printf "processor.keda.maxReplicas (%d) exceeds kafka.partitions (%d): consumers beyond the partition count sit idle" ($keda.maxReplicas | int) $partitions) -}}
{{- end -}}
{{- $keda.maxReplicas | int -}}
{{- end -}}
{{- end -}}

{{/* librdkafka security.protocol from the SASL and TLS switches. */}}
{{- define "eventide.kafkaSecurityProtocol" -}}
{{- $k := .Values.kafka -}}
{{- if and $k.sasl.enabled $k.tls.enabled -}}SASL_SSL
{{- else if $k.sasl.enabled -}}SASL_PLAINTEXT
{{- else if $k.tls.enabled -}}SSL
{{- end -}}
{{- end -}}

{{- define "eventide.kafkaTlsDir" -}}/etc/eventide/kafka-tls{{- end -}}

{{/*
EVENTIDE_KAFKA_OPTIONS, one property per line (values may hold commas and
`=`): the extra properties, then security. Secrets stay in
Secrets: the SASL credentials are environment variables from secretKeyRef,
referenced here as $(VAR), which the kubelet expands.
*/}}
{{- define "eventide.kafkaOptions" -}}
{{- $k := .Values.kafka -}}
{{- $opts := list -}}
{{- range $key, $value := $k.options -}}
{{- $opts = append $opts (printf "%s=%v" $key $value) -}}
{{- end -}}
{{- $protocol := include "eventide.kafkaSecurityProtocol" . -}}
{{- if $protocol -}}
{{- $opts = append $opts (printf "security.protocol=%s" $protocol) -}}
{{- end -}}
{{- if $k.sasl.enabled -}}
{{- $opts = append $opts (printf "sasl.mechanism=%s" $k.sasl.mechanism) -}}
{{- $opts = append $opts "sasl.username=$(EVENTIDE_KAFKA_SASL_USERNAME)" -}}
{{- $opts = append $opts "sasl.password=$(EVENTIDE_KAFKA_SASL_PASSWORD)" -}}
{{- end -}}
{{- if and $k.tls.enabled $k.tls.existingSecret -}}
{{- $dir := include "eventide.kafkaTlsDir" . -}}
{{- $opts = append $opts (printf "ssl.ca.location=%s/%s" $dir $k.tls.caKey) -}}
{{- if $k.tls.certKey -}}
{{- $opts = append $opts (printf "ssl.certificate.location=%s/%s" $dir $k.tls.certKey) -}}
{{- $opts = append $opts (printf "ssl.key.location=%s/%s" $dir $k.tls.keyKey) -}}
{{- end -}}
{{- end -}}
{{- join "\n" $opts -}}
{{- end -}}

{{/* Environment shared by every role and hook Job: (dict "root" $ "component" "ingest") */}}
{{- define "eventide.commonEnv" -}}
{{- $v := .root.Values -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: EVENTIDE_LOG_FORMAT
  value: {{ $v.logFormat | quote }}
{{- with $v.logLevel }}
- name: RUST_LOG
  value: {{ . | quote }}
{{- end }}
- name: EVENTIDE_DATA_DIR
  value: {{ $v.dataDir.path | quote }}
- name: EVENTIDE_KAFKA_BROKERS
  value: {{ $v.kafka.brokers | quote }}
{{- if $v.kafka.sasl.enabled }}
- name: EVENTIDE_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret | quote }}
      key: {{ $v.kafka.sasl.usernameKey | quote }}
- name: EVENTIDE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret | quote }}
      key: {{ $v.kafka.sasl.passwordKey | quote }}
{{- end }}
{{- with (include "eventide.kafkaOptions" .root) }}
- name: EVENTIDE_KAFKA_OPTIONS
  value: {{ . | quote }}
{{- end }}
{{- if $v.kafka.propertiesSecret.existingSecret }}
- name: EVENTIDE_KAFKA_PROPERTIES_FILE
  value: {{ printf "%s/%s" (include "eventide.kafkaPropertiesDir" .root) $v.kafka.propertiesSecret.key | quote }}
{{- end }}
- name: EVENTIDE_PARTITIONS
  value: {{ $v.kafka.partitions | quote }}
- name: EVENTIDE_LOW_VOLUME_PARTITIONS
  value: {{ $v.kafka.lowVolumePartitions | quote }}
- name: EVENTIDE_REPLICATION_FACTOR
  value: {{ $v.kafka.replicationFactor | quote }}
- name: EVENTIDE_RETENTION
  value: {{ $v.kafka.retention | quote }}
- name: EVENTIDE_TOPIC_PREFIX
  value: {{ $v.kafka.topicPrefix | quote }}
{{- with $v.schemaRegistry.url }}
- name: EVENTIDE_SCHEMA_REGISTRY_URL
  value: {{ . | quote }}
- name: EVENTIDE_SCHEMA_REGISTRY_AUTO_REGISTER
  value: {{ $v.schemaRegistry.autoRegister | quote }}
{{- $auth := $v.schemaRegistry.auth }}
{{- if eq $auth.type "basic" }}
- name: EVENTIDE_SCHEMA_REGISTRY_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "schemaRegistry.auth.existingSecret is required with auth.type basic" $auth.existingSecret | quote }}
      key: {{ $auth.usernameKey | quote }}
- name: EVENTIDE_SCHEMA_REGISTRY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $auth.existingSecret | quote }}
      key: {{ $auth.passwordKey | quote }}
{{- else if eq $auth.type "bearer" }}
- name: EVENTIDE_SCHEMA_REGISTRY_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ required "schemaRegistry.auth.existingSecret is required with auth.type bearer" $auth.existingSecret | quote }}
      key: {{ $auth.tokenKey | quote }}
{{- end }}
{{- end }}
{{- if $v.scylla.enabled }}
- name: EVENTIDE_SCYLLA_CONTACT_POINTS
  value: {{ join "," $v.scylla.contactPoints | quote }}
- name: EVENTIDE_SCYLLA_KEYSPACE
  value: {{ $v.scylla.keyspace | quote }}
- name: EVENTIDE_SCYLLA_REPLICATION_FACTOR
  value: {{ $v.scylla.replicationFactor | quote }}
{{- with $v.scylla.datacenter }}
- name: EVENTIDE_SCYLLA_DATACENTER
  value: {{ . | quote }}
{{- end }}
- name: EVENTIDE_SCYLLA_CONSISTENCY
  value: {{ $v.scylla.consistency | quote }}
- name: EVENTIDE_SCYLLA_SERIAL_CONSISTENCY
  value: {{ $v.scylla.serialConsistency | quote }}
{{- if $v.scylla.auth.enabled }}
- name: EVENTIDE_SCYLLA_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "scylla.auth.existingSecret is required when scylla.auth.enabled" $v.scylla.auth.existingSecret | quote }}
      key: {{ $v.scylla.auth.usernameKey | quote }}
- name: EVENTIDE_SCYLLA_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.scylla.auth.existingSecret | quote }}
      key: {{ $v.scylla.auth.passwordKey | quote }}
{{- end }}
{{- if $v.scylla.tls.enabled }}
{{- $dir := include "eventide.scyllaTlsDir" .root }}
- name: EVENTIDE_SCYLLA_TLS_CA
  value: {{ printf "%s/%s" $dir $v.scylla.tls.caKey | quote }}
{{- if $v.scylla.tls.certKey }}
- name: EVENTIDE_SCYLLA_TLS_CERT
  value: {{ printf "%s/%s" $dir $v.scylla.tls.certKey | quote }}
- name: EVENTIDE_SCYLLA_TLS_KEY
  value: {{ printf "%s/%s" $dir $v.scylla.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "eventide-%s" .component | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)"
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "eventide.scyllaTlsDir" -}}/etc/eventide/scylla-tls{{- end -}}

{{- define "eventide.scyllaTlsVolume" -}}
{{- if and .Values.scylla.enabled .Values.scylla.tls.enabled -}}
- name: scylla-tls
  secret:
    secretName: {{ required "scylla.tls.existingSecret is required when scylla.tls.enabled" .Values.scylla.tls.existingSecret | quote }}
    defaultMode: 0440
{{- end -}}
{{- end -}}

{{- define "eventide.scyllaTlsVolumeMount" -}}
{{- if and .Values.scylla.enabled .Values.scylla.tls.enabled -}}
- name: scylla-tls
  mountPath: {{ include "eventide.scyllaTlsDir" . }}
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "eventide.kafkaPropertiesDir" -}}/etc/eventide/kafka-properties{{- end -}}

{{- define "eventide.kafkaTlsVolume" -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.existingSecret -}}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.existingSecret | quote }}
    defaultMode: 0440
{{- end }}
{{- with .Values.kafka.propertiesSecret.existingSecret }}
- name: kafka-properties
  secret:
    secretName: {{ . | quote }}
    defaultMode: 0440
{{- end -}}
{{- end -}}

{{- define "eventide.kafkaTlsVolumeMount" -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.existingSecret -}}
- name: kafka-tls
  mountPath: {{ include "eventide.kafkaTlsDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.kafka.propertiesSecret.existingSecret }}
- name: kafka-properties
  mountPath: {{ include "eventide.kafkaPropertiesDir" . }}
  readOnly: true
{{- end -}}
{{- end -}}

{{/* The API keys Secret's name, or "" without authentication: auth.keys, then auth.existingSecret. */}}
{{- define "eventide.keysSecretName" -}}
{{- if not .Values.auth.insecureNoAuth -}}
{{- if .Values.auth.keys -}}
{{- printf "%s-keys" (include "eventide.fullname" .) -}}
{{- else if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecret -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "eventide.rulesConfigMapName" -}}
{{- if .Values.rules.existingConfigMap -}}
{{- .Values.rules.existingConfigMap -}}
{{- else if .Values.rules.content -}}
{{- printf "%s-rules" (include "eventide.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "eventide.destinationsConfigMapName" -}}
{{- if .Values.destinations.existingConfigMap -}}
{{- .Values.destinations.existingConfigMap -}}
{{- else if .Values.destinations.content -}}
{{- printf "%s-destinations" (include "eventide.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "eventide.destinationsSecretName" -}}
{{- if .Values.destinations.existingSecret -}}
{{- .Values.destinations.existingSecret -}}
{{- else if .Values.destinations.secretEnv -}}
{{- printf "%s-destination-secrets" (include "eventide.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context, volumes and scheduling shared by Deployments and Jobs. */}}
{{- define "eventide.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "eventide.scratchVolumes" -}}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.dataDir.sizeLimit }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpDir.sizeLimit }}
{{- end -}}

{{- define "eventide.scratchVolumeMounts" -}}
- name: data
  mountPath: {{ .Values.dataDir.path }}
- name: tmp
  mountPath: /tmp
{{- end -}}
