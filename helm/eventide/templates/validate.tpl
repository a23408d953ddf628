{{/* Refuse values that would deploy something broken. Included by deployment.yaml. */}}
{{- define "eventide.validate" -}}
{{- $v := .Values -}}
{{- $partitions := $v.kafka.partitions | int -}}
{{- if and (not $v.processor.keda.enabled) (gt ($v.processor.replicas | int) $partitions) -}}
{{- fail (printf "processor.replicas (%d) exceeds kafka.partitions (%d): a consumer group never gives more consumers than partitions any work" ($v.processor.replicas | int) $partitions) -}}
{{- end -}}
{{- if $v.processor.keda.enabled -}}
{{- $max := include "eventide.kedaMaxReplicas" . | int -}}
{{- if gt ($v.processor.keda.minReplicas | int) $max -}}
{{- fail (printf "processor.keda.minReplicas (%d) exceeds its maximum (%d)" ($v.processor.keda.minReplicas | int) $max) -}}
{{- end -}}
{{- end -}}
{{- range $key := list "ingest" "queryApi" -}}
{{- $a := (index $v $key).autoscaling -}}
{{- if and $a.enabled (gt ($a.minReplicas | int) ($a.maxReplicas | int)) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%d) exceeds maxReplicas (%d)" $key ($a.minReplicas | int) ($a.maxReplicas | int)) -}}
{{- end -}}
{{- end -}}
{{- if not (or $v.auth.insecureNoAuth (include "eventide.keysSecretName" .)) -}}
{{- fail "the services need API keys: set auth.keys (file content), auth.existingSecret (a Secret with the keys file) or, for development only, auth.insecureNoAuth=true" -}}
{{- end -}}
{{- $c := $v.queryApi.console -}}
{{- if and $c.enabled (not $c.existingSecret) (or (gt ($v.queryApi.replicas | int) 1) $v.queryApi.autoscaling.enabled) -}}
{{- fail "queryApi.console.enabled with more than one query API replica needs queryApi.console.existingSecret (a Secret with one session secret for every pod), or each pod would refuse the others' sessions" -}}
{{- end -}}
{{- if and $v.scylla.enabled (not $v.scylla.contactPoints) -}}
{{- fail "scylla.enabled needs scylla.contactPoints" -}}
{{- end -}}
{{- if and $v.kafka.sasl.enabled (not $v.kafka.sasl.existingSecret) -}}
{{- fail "kafka.sasl.enabled needs kafka.sasl.existingSecret (a Secret with the SASL username and password)" -}}
{{- end -}}
{{- if and $v.kafka.tls.certKey (not $v.kafka.tls.keyKey) -}}
{{- fail "kafka.tls.certKey needs kafka.tls.keyKey" -}}
{{- end -}}
{{- if and $v.kafka.tls.certKey (not $v.kafka.tls.existingSecret) -}}
{{- fail "kafka.tls.certKey needs kafka.tls.existingSecret" -}}
{{- end -}}
{{- range $name, $value := $v.kafka.options -}}
{{- if contains "\n" (toString $value) -}}
{{- fail (printf "kafka.options.%s contains a line break, which EVENTIDE_KAFKA_OPTIONS uses as separator" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
