{{/* Chart name, overridable with nameOverride. */}}
{{- define "stacksense.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart> unless the release name already contains the chart's. */}}
{{- define "stacksense.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "stacksense.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "exporter"). */}}
{{- define "stacksense.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stacksense.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Common labels; call with (dict "ctx" $ "component" "exporter"), component optional. */}}
{{- define "stacksense.labels" -}}
helm.sh/chart: {{ include "stacksense.chart" .ctx }}
{{ include "stacksense.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: stacksense
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Name of a component's resources: <fullname>-<component>. */}}
{{- define "stacksense.componentName" -}}
{{- printf "%s-%s" (include "stacksense.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "stacksense.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stacksense.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference. */}}
{{- define "stacksense.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The router's Secret (chart-made or existing). */}}
{{- define "stacksense.routerSecretName" -}}
{{- if .Values.router.existingSecret }}
{{- .Values.router.existingSecret }}
{{- else }}
{{- include "stacksense.componentName" (dict "ctx" . "component" "router") }}
{{- end }}
{{- end }}

{{/* The exporter's SSH key Secret (chart-made or existing); empty when there is none. */}}
{{- define "stacksense.exporterSecretName" -}}
{{- if .Values.exporter.existingSecret }}
{{- .Values.exporter.existingSecret }}
{{- else if .Values.exporter.sshKeys }}
{{- include "stacksense.componentName" (dict "ctx" . "component" "exporter") }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by the three workloads; call with (dict "ctx" $ "values" .Values.x). */}}
{{- define "stacksense.podSpecCommon" -}}
serviceAccountName: {{ include "stacksense.serviceAccountName" .ctx }}
automountServiceAccountToken: {{ .ctx.Values.serviceAccount.automountServiceAccountToken }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* HTTP probes on the Prometheus-style health endpoints. */}}
{{- define "stacksense.healthProbes" -}}
livenessProbe:
  httpGet:
    path: /-/healthy
    port: http
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 4
readinessProbe:
  httpGet:
    path: /-/ready
    port: http
  periodSeconds: 10
  timeoutSeconds: 5
{{- end }}
