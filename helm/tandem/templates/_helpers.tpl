{{/* The chart's name, truncated to the 63 characters of a DNS label. */}}
{{- define "tandem.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name alone when it already contains the chart name
(`helm install tandem helm/tandem` gives "tandem"). */}}
{{- define "tandem.fullname" -}}
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

{{- define "tandem.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tandem.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tandem.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tandem.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tandem
{{- end }}

{{- define "tandem.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tandem.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tandem.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Several replicas need kopf peering; one replica runs standalone (no peering object, no RBAC for it). */}}
{{- define "tandem.peering" -}}
{{- if gt (int .Values.replicaCount) 1 }}{{ default (include "tandem.fullname" .) .Values.peering.name }}{{ end }}
{{- end }}

{{/* The namespaces with job permissions: the watched ones, or none with watchAllNamespaces (cluster-wide
ClusterRole). values.schema.json refuses the other combinations; these checks hold without it too. */}}
{{- define "tandem.watchNamespaces" -}}
{{- $namespaces := uniq (default (list) .Values.watchNamespaces) }}
{{- if and .Values.watchAllNamespaces $namespaces }}
{{- fail "watchAllNamespaces: true needs watchNamespaces: [] (every namespace, or only the ones listed, not both)" }}
{{- end }}
{{- if not (or .Values.watchAllNamespaces $namespaces) }}
{{- fail "watchNamespaces is empty: list the namespaces to watch, or set watchAllNamespaces: true to watch every namespace (pods in all of them, kube-system included)" }}
{{- end }}
{{- toJson $namespaces }}
{{- end }}

{{/*
What the operator does to TrainingJobs and their pods, in the scope it watches: each of watchNamespaces
(a Role), or every namespace with watchAllNamespaces (the ClusterRole). Derived from operator/kube.py and the kopf
watches in operator/handlers.py; tests/helm/test_operator_from_chart.py records the requests the real operator
makes against the local cluster and fails when a rule is missing or unused.
*/}}
{{- define "tandem.jobRules" -}}
# kopf watches the jobs; the operator reads each one before it decides.
- apiGroups: [tandem.dev]
  resources: [trainingjobs]
  verbs: [get, list, watch]
# The operator writes only the status, guarded by the resourceVersion it read.
- apiGroups: [tandem.dev]
  resources: [trainingjobs/status]
  verbs: [patch]
# Each attempt's pods: watched (label tandem.dev/job), created, and deleted on gang teardown; read when a
# create answers 409 (is the pod of that name ours, or a deleted job's?); patched to move a pod that stays
# through an in-place restart to the new attempt (its tandem.dev/attempt label, nothing else).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, delete]
# Rank 0's log tail: the checkpoints a healthy run commits (status.lastCheckpoint).
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# The headless Service that gives rank 0 a stable name: watched (label tandem.dev/job) so that a reconcile reads
# it from memory, read when the watch has not brought it yet, created.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create]
# An Event for every decision, on the TrainingJob.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* kopf's peering object, when replicas share one: kopf lists and watches the peering objects and patches
its own entry into the status of the one named by --peering; the operator's own timers GET that one to
stand by with kopf (operator/peering.py). */}}
{{- define "tandem.peeringRules" -}}
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  verbs: [list, watch]
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  resourceNames: [{{ .name | quote }}]
  verbs: [get, patch]
{{- end }}
