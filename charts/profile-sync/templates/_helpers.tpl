{{/*
Names, labels and the pieces every pod shares.
*/}}

{{/* The chart name, cut at 63 characters (the DNS label limit). */}}
{{- define "profile-sync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release-qualified name, cut at 63 characters. A release named like the chart is not
repeated ("profile-sync", not "profile-sync-profile-sync").
*/}}
{{- define "profile-sync.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The name of one component's resources: fullname-component, cut at 63 characters. The prefix is
cut first so the component suffix (what tells resources apart) always survives.
Usage: include "profile-sync.componentName" (dict "root" $ "component" "extender")
*/}}
{{- define "profile-sync.componentName" -}}
{{- $suffix := printf "-%s" .component -}}
{{- $prefix := include "profile-sync.fullname" .root | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" -}}
{{- printf "%s%s" $prefix $suffix -}}
{{- end -}}

{{- define "profile-sync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that never change for the life of a release: what selectors match. */}}
{{- define "profile-sync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "profile-sync.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every label of a component's resources. */}}
{{- define "profile-sync.labels" -}}
helm.sh/chart: {{ include "profile-sync.chart" .root }}
{{ include "profile-sync.selectorLabels" . }}
app.kubernetes.io/part-of: profile-sync
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{/* The label that lets a pod outside the release call the gateway when allowExternal is off. */}}
{{- define "profile-sync.clientLabel" -}}
{{- printf "%s-client" (include "profile-sync.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* registry/repository:tag or registry/repository@digest. Usage: include "profile-sync.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) */}}
{{- define "profile-sync.imageRef" -}}
{{- $repository := .image.repository -}}
{{- if .image.registry -}}
{{- $repository = printf "%s/%s" .image.registry .image.repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .default .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "profile-sync.image" -}}
{{- include "profile-sync.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) -}}
{{- end -}}

{{/*
The ServiceAccount a component runs as. Usage:
include "profile-sync.serviceAccountName" (dict "root" $ "component" "extender" "serviceAccount" .Values.extender.serviceAccount)
*/}}
{{- define "profile-sync.serviceAccountName" -}}
{{- if .serviceAccount.create -}}
{{- default (include "profile-sync.componentName" .) .serviceAccount.name -}}
{{- else -}}
{{- default "default" .serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Kubernetes Service names the components reach each other by. */}}
{{- define "profile-sync.extenderAddr" -}}
{{- printf "%s:%d" (include "profile-sync.componentName" (dict "root" . "component" "extender")) (int .Values.extender.port) -}}
{{- end -}}

{{- define "profile-sync.notifierAddr" -}}
{{- printf "%s:%d" (include "profile-sync.componentName" (dict "root" . "component" "notifier")) (int .Values.notifier.port) -}}
{{- end -}}

{{- define "profile-sync.emulatorHost" -}}
{{- printf "%s.%s.svc" .Values.graphEmulator.name .Release.Namespace -}}
{{- end -}}

{{- define "profile-sync.emulatorUrl" -}}
{{- printf "https://%s:%d" (include "profile-sync.emulatorHost" .) (int .Values.graphEmulator.port) -}}
{{- end -}}

{{/* Where the emulator's CA certificate is mounted in the pods that trust it. */}}
{{- define "profile-sync.emulatorCaDir" -}}/etc/profile-sync/graph-emulator{{- end -}}

{{/* A soft anti-affinity by host unless the component sets its own affinity. */}}
{{- define "profile-sync.affinity" -}}
{{- if .affinity -}}
{{- toYaml .affinity -}}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "profile-sync.selectorLabels" . | nindent 12 }}
{{- end -}}
{{- end -}}

{{/* Prometheus scrape annotations of a pod serving metrics. */}}
{{- define "profile-sync.scrapeAnnotations" -}}
{{- if and .Values.metrics.enabled .Values.metrics.scrapeAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}

{{/* The writable /tmp every container gets (the root filesystem is read-only). */}}
{{- define "profile-sync.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolumeSizeLimit }}
{{- end -}}

{{- define "profile-sync.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}
