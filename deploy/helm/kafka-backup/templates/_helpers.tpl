{{- define "kafka-backup.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kafka-backup.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kafka-backup.labels" -}}
{{ include "kafka-backup.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kafka-backup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kafka-backup.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The job file of an empty job value: the example in values.yaml. */}}
{{- define "kafka-backup.exampleJob" -}}
source:
  bootstrap_servers: ["kafka:9092"]
  topics:
    include: ["*"]
storage:
  backend: s3
  bucket: kafka-backups
  region: us-east-1
backup:
  compression: zstd
{{- end -}}

{{/* The job file: the values' job block with mode, backup_id, metrics and logging set by the chart. */}}
{{- define "kafka-backup.jobFile" -}}
{{- $job := deepCopy (default (include "kafka-backup.exampleJob" . | fromYaml) .Values.job) -}}
{{- $_ := set $job "mode" (ternary "restore" "backup" (eq .Values.mode "restore")) -}}
{{- $_ := set $job "backup_id" (default (include "kafka-backup.fullname" .) .Values.backupId) -}}
{{- if ne .Values.mode "restore" -}}
{{- $backup := deepCopy (default dict $job.backup) -}}
{{- $_ := set $backup "continuous" (eq .Values.mode "continuous") -}}
{{- $_ := set $job "backup" $backup -}}
{{- end -}}
{{- $metrics := dict "enabled" true "port" (int .Values.metrics.port) "bind_address" "0.0.0.0" "path" "/metrics" -}}
{{- $_ := set $metrics "keep_alive_seconds" .Values.metrics.keepAliveSeconds -}}
{{- with .Values.metrics.pushgatewayUrl -}}
{{- $_ := set $metrics "pushgateway_url" . -}}
{{- $_ := set $metrics "push_interval_seconds" $.Values.metrics.pushIntervalSeconds -}}
{{- end -}}
{{- $_ := set $job "metrics" $metrics -}}
{{- $_ := set $job "logging" (dict "format" .Values.logging.format "level" .Values.logging.level) -}}
{{- toYaml $job -}}
{{- end -}}

{{/* The pod: one container running kafka-backup on the mounted job file. */}}
{{- define "kafka-backup.podSpec" -}}
serviceAccountName: {{ include "kafka-backup.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
{{- if ne .Values.mode "continuous" }}
restartPolicy: Never
{{- end }}
containers:
  - name: kafka-backup
    image: "{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}"
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args: [{{ ternary "restore" "backup" (eq .Values.mode "restore") | quote }}, "--config", "/etc/kafka-backup/job.yaml"]
    ports:
      - name: http
        containerPort: {{ .Values.metrics.port }}
        protocol: TCP
    {{- if or .Values.credentials.existingSecret }}
    envFrom:
      - secretRef:
          name: {{ .Values.credentials.existingSecret }}
    {{- end }}
    env:
      - name: TMPDIR
        value: /tmp
      {{- with .Values.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    livenessProbe:
      httpGet:
        path: /health
        port: http
      initialDelaySeconds: {{ .Values.probes.liveness.initialDelaySeconds }}
      periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
      failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
    {{- if eq .Values.mode "continuous" }}
    readinessProbe:
      httpGet:
        path: /ready
        port: http
      initialDelaySeconds: {{ .Values.probes.readiness.initialDelaySeconds }}
      periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
      failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
    {{- end }}
    resources:
      {{- toYaml .Values.resources | nindent 6 }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    volumeMounts:
      - name: job
        mountPath: /etc/kafka-backup
        readOnly: true
      - name: tmp
        mountPath: /tmp
volumes:
  - name: job
    configMap:
      name: {{ include "kafka-backup.fullname" . }}
  - name: tmp
    emptyDir: {}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "kafka-backup.podMetadata" -}}
labels:
  {{- include "kafka-backup.selectorLabels" . | nindent 2 }}
  {{- if .Values.workloadIdentity.azure.clientId }}
  azure.workload.identity/use: "true"
  {{- end }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/job-file: {{ include "kafka-backup.jobFile" . | sha256sum }}
  {{- with .Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
