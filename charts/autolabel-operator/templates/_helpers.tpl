{{/* Names and labels shared by the templates. */}}

{{- define "autolabel-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "autolabel-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Cluster-scoped objects carry the namespace, so releases in several namespaces do not collide. */}}
{{- define "autolabel-operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "autolabel-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "autolabel-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "autolabel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "autolabel-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "autolabel-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: autolabel-operator
{{- end }}

{{- define "autolabel-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "autolabel-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference from {repository, tag}; the tag defaults to the chart's appVersion. */}}
{{- define "autolabel-operator.image" -}}
{{- printf "%s:%s" .image.repository (default .appVersion .image.tag) }}
{{- end }}

{{- define "autolabel-operator.workerNamespaces" -}}
{{- $namespaces := .Values.worker.namespaces | default (list .Release.Namespace) }}
{{- toJson $namespaces }}
{{- end }}
