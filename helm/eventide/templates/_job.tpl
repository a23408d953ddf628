{{/*
A pre-install/pre-upgrade hook Job running one eventide subcommand:
(dict "root" $ "name" "create-topics" "job" $jobValues)
It uses the namespace's default ServiceAccount unless serviceAccount.create is
false (then the named, existing one): a pre-install hook runs before the
chart's own ServiceAccount exists.
*/}}
{{- define "eventide.hookJob" -}}
{{- $root := .root -}}
{{- $ctx := dict "root" $root "component" .name -}}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-%s" (include "eventide.fullname" $root) .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "eventide.componentLabels" $ctx | nindent 4 }}
  annotations:
    {{- with $root.Values.commonAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: {{ .job.backoffLimit }}
  activeDeadlineSeconds: {{ .job.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ .job.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        {{- include "eventide.componentSelectorLabels" $ctx | nindent 8 }}
    spec:
      restartPolicy: Never
      {{- if not $root.Values.serviceAccount.create }}
      serviceAccountName: {{ include "eventide.serviceAccountName" $root }}
      {{- end }}
      automountServiceAccountToken: false
      {{- include "eventide.podSecurity" $root | nindent 6 }}
      containers:
        - name: {{ .name }}
          image: {{ include "eventide.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            - {{ .name }}
          env:
            {{- include "eventide.commonEnv" $ctx | nindent 12 }}
          resources:
            {{- toYaml .job.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- include "eventide.scratchVolumeMounts" $root | nindent 12 }}
            {{- with include "eventide.kafkaTlsVolumeMount" $root }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with include "eventide.scyllaTlsVolumeMount" $root }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "eventide.scratchVolumes" $root | nindent 8 }}
        {{- with include "eventide.kafkaTlsVolume" $root }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with include "eventide.scyllaTlsVolume" $root }}
        {{- . | nindent 8 }}
        {{- end }}
{{- end -}}
