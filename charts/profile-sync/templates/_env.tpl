{{/*
Environment of the Python services. The names are the ones the services read (README,
"Configuration"); tests/chart checks that the two never drift apart.
*/}}

{{/* Where a gRPC service listens, how many calls it runs at once, how it logs and stops. Usage: include "profile-sync.serverEnv" (dict "root" $ "port" .Values.extender.port "maxConcurrentRpcs" .Values.notifier.maxConcurrentRpcs) (the last is optional: grpcMaxConcurrentRpcs otherwise) */}}
{{- define "profile-sync.serverEnv" -}}
- name: GRPC_HOST
  value: "0.0.0.0"
- name: GRPC_PORT
  value: {{ .port | quote }}
- name: METRICS_PORT
  value: {{ ternary .root.Values.metrics.port -1 .root.Values.metrics.enabled | quote }}
- name: SHUTDOWN_GRACE_SECONDS
  value: {{ .root.Values.shutdownGraceSeconds | quote }}
- name: GRPC_MAX_CONCURRENT_RPCS
  value: {{ .maxConcurrentRpcs | default .root.Values.grpcMaxConcurrentRpcs | quote }}
- name: LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
{{- end -}}

{{/* The Secret and key holding the app's client secret. */}}
{{- define "profile-sync.azureSecretName" -}}
{{- if .Values.graphEmulator.enabled -}}
{{- .Values.graphEmulator.name -}}
{{- else -}}
{{- .Values.azure.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "profile-sync.azureSecretKey" -}}
{{- ternary "client-secret" .Values.azure.existingSecretKey .Values.graphEmulator.enabled -}}
{{- end -}}

{{/*
The Entra ID app registration: whose tokens callers must present and, with "withSecret", the
credentials to get the app's own tokens. Usage: include "profile-sync.entraEnv" (dict "root" $ "withSecret" true)
*/}}
{{- define "profile-sync.entraEnv" -}}
{{- $values := .root.Values -}}
{{- if $values.graphEmulator.enabled }}
{{- /* The emulator's release is the one source of its tenant and app. */}}
- name: AZURE_TENANT_ID
  valueFrom:
    secretKeyRef:
      name: {{ $values.graphEmulator.name }}
      key: tenant-id
- name: AZURE_CLIENT_ID
  valueFrom:
    secretKeyRef:
      name: {{ $values.graphEmulator.name }}
      key: client-id
- name: AZURE_AUTHORITY_HOST
  value: {{ include "profile-sync.emulatorUrl" .root | quote }}
- name: AZURE_CA_BUNDLE
  value: {{ printf "%s/ca.pem" (include "profile-sync.emulatorCaDir" .root) | quote }}
{{- else }}
- name: AZURE_TENANT_ID
  value: {{ $values.azure.tenantId | quote }}
- name: AZURE_CLIENT_ID
  value: {{ $values.azure.clientId | quote }}
- name: AZURE_AUTHORITY_HOST
  value: {{ $values.azure.authorityHost | quote }}
{{- end }}
{{- if .withSecret }}
- name: AZURE_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "profile-sync.azureSecretName" .root }}
      key: {{ include "profile-sync.azureSecretKey" .root }}
{{- end }}
{{- end -}}

{{/* The Redis / ElastiCache URL, from the values or from a Secret. */}}
{{- define "profile-sync.redisEnv" -}}
- name: REDIS_URL
{{- if .Values.redis.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else }}
  value: {{ .Values.redis.url | quote }}
{{- end }}
- name: REDIS_CLUSTER
  value: {{ .Values.redis.cluster | default "auto" | toString | quote }}
{{- end -}}

{{/* Where the differ keeps snapshots; the emulator's staging default is a throwaway directory. */}}
{{- define "profile-sync.snapshotStore" -}}
{{- if .Values.differ.snapshotStore -}}
{{- .Values.differ.snapshotStore -}}
{{- else -}}
/tmp/snapshots
{{- end -}}
{{- end -}}

{{/* Everything the differ reads, for the sync Job and the differ server alike. */}}
{{- define "profile-sync.differEnv" -}}
{{ include "profile-sync.entraEnv" (dict "root" . "withSecret" true) | trim }}
{{ include "profile-sync.redisEnv" . }}
- name: EXTENDER_ADDR
  value: {{ include "profile-sync.extenderAddr" . | quote }}
- name: NOTIFIER_ADDR
  value: {{ include "profile-sync.notifierAddr" . | quote }}
- name: SNAPSHOT_STORE
  value: {{ include "profile-sync.snapshotStore" . | quote }}
- name: SHARD_COUNT
  value: {{ .Values.differ.shards | quote }}
- name: SNAPSHOT_PART_SIZE
  value: {{ .Values.differ.snapshotPartSize | quote }}
- name: SNAPSHOT_RETENTION
  value: {{ .Values.differ.snapshotRetention | quote }}
- name: COMPARE_BATCH
  value: {{ .Values.differ.compareBatch | quote }}
- name: PUBLISH_BATCH
  value: {{ .Values.differ.publishBatch | quote }}
- name: SYNC_LOCK_TTL_SECONDS
  value: {{ .Values.differ.lockTtlSeconds | quote }}
- name: DELETE_THRESHOLD_PERCENT
  value: {{ .Values.differ.deletes.thresholdPercent | quote }}
- name: DELETE_THRESHOLD_COUNT
  value: {{ .Values.differ.deletes.thresholdCount | quote }}
{{- if hasPrefix "s3://" (include "profile-sync.snapshotStore" .) }}
{{- with .Values.differ.s3 }}
- name: S3_REGION
  value: {{ .region | quote }}
- name: S3_SSE
  value: {{ .sse | quote }}
{{- with .kmsKeyId }}
- name: S3_SSE_KMS_KEY_ID
  value: {{ . | quote }}
{{- end }}
{{- with .endpointUrl }}
- name: S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.differ.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Where an on-demand sync (POST /v1/syncs) runs: differ.server.syncMode with the CronJob, in the
server itself with the sweepers (there is no CronJob to make a Job from; the sweepers hold
their shards' locks nearly all the time, so an on-demand run mostly answers that one is going).
*/}}
{{- define "profile-sync.differSyncMode" -}}
{{- ternary .Values.differ.server.syncMode "in-process" (eq .Values.differ.mode "cronjob") -}}
{{- end -}}

{{/* What only the differ server reads: where on-demand syncs run. */}}
{{- define "profile-sync.differServerEnv" -}}
- name: SYNC_MODE
  value: {{ include "profile-sync.differSyncMode" . | quote }}
{{- if eq (include "profile-sync.differSyncMode" .) "kubernetes" }}
- name: CRONJOB_NAME
  value: {{ include "profile-sync.componentName" (dict "root" . "component" "differ") | quote }}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: SYNC_JOB_START_SECONDS
  value: {{ .Values.differ.server.jobStartSeconds | quote }}
{{- end }}
{{ include "profile-sync.differEnv" . }}
{{- end -}}

{{/* The emulator's CA certificate, for the pods that call it (and nothing else of its Secret). */}}
{{- define "profile-sync.emulatorCaVolume" -}}
{{- if .Values.graphEmulator.enabled }}
- name: graph-emulator-ca
  secret:
    secretName: {{ .Values.graphEmulator.name }}
    items:
      - key: ca.pem
        path: ca.pem
{{- end }}
{{- end -}}

{{- define "profile-sync.emulatorCaVolumeMount" -}}
{{- if .Values.graphEmulator.enabled }}
- name: graph-emulator-ca
  mountPath: {{ include "profile-sync.emulatorCaDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Everything the extender reads. */}}
{{- define "profile-sync.extenderEnv" -}}
{{ include "profile-sync.entraEnv" (dict "root" . "withSecret" true) | trim }}
{{ include "profile-sync.redisEnv" . }}
- name: GRAPH_URL
  value: {{ ternary (printf "%s/v1.0" (include "profile-sync.emulatorUrl" .)) .Values.graph.url .Values.graphEmulator.enabled | quote }}
- name: SYNC_USERS
  value: {{ .Values.graph.syncUsers | quote }}
- name: PROFILE_RECHECK_HOURS
  value: {{ .Values.graph.profileRecheckHours | quote }}
{{- /* Empty: the quota follows the tenant's size (see graph.quotaPer10s). */}}
- name: GRAPH_QUOTA_PER_10S
  value: {{ get .Values.graph "quotaPer10s" | default "" | quote }}
- name: GRAPH_BUDGET_SHARE
  value: {{ .Values.graph.budgetShare | quote }}
- name: GRAPH_MAX_CONCURRENCY
  value: {{ .Values.graph.maxConcurrency | quote }}
- name: GRAPH_WRITE_QUOTA_PER_150S
  value: {{ .Values.graph.writeQuotaPer150s | quote }}
- name: GRAPH_MAX_ATTEMPTS
  value: {{ .Values.graph.maxAttempts | quote }}
- name: GRAPH_TIMEOUT_SECONDS
  value: {{ .Values.graph.timeoutSeconds | quote }}
- name: SHARD_COUNT
  value: {{ .Values.differ.shards | quote }}
{{- with .Values.extender.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The Secret holding the webhook subscribers, if any. */}}
{{- define "profile-sync.subscribersSecretName" -}}
{{- if .Values.notifier.existingSubscribersSecret -}}
{{- .Values.notifier.existingSubscribersSecret -}}
{{- else if .Values.notifier.subscribers -}}
{{- include "profile-sync.componentName" (dict "root" . "component" "subscribers") -}}
{{- end -}}
{{- end -}}

{{- define "profile-sync.subscribersSecretKey" -}}
{{- ternary .Values.notifier.existingSubscribersSecretKey "subscribers.json" (not (empty .Values.notifier.existingSubscribersSecret)) -}}
{{- end -}}

{{/* Everything the notifier reads. */}}
{{- define "profile-sync.notifierEnv" -}}
{{ include "profile-sync.entraEnv" (dict "root" . "withSecret" false) | trim }}
{{ include "profile-sync.redisEnv" . }}
- name: NOTIFIER_STREAM_KEY
  value: {{ .Values.notifier.streamKey | quote }}
- name: NOTIFIER_MAX_EVENTS
  value: {{ .Values.notifier.maxEvents | quote }}
- name: NOTIFIER_MAX_AGE_SECONDS
  value: {{ .Values.notifier.maxAgeSeconds | quote }}
{{- if .Values.notifier.dedupeTtlSeconds }}
- name: NOTIFIER_DEDUPE_TTL_SECONDS
  value: {{ .Values.notifier.dedupeTtlSeconds | quote }}
{{- end }}
- name: NOTIFIER_HEARTBEAT_SECONDS
  value: {{ .Values.notifier.heartbeatSeconds | quote }}
- name: NOTIFIER_MAX_SUBSCRIBERS
  value: {{ .Values.notifier.maxSubscribers | quote }}
- name: NOTIFIER_DEAD_LETTER_MAX
  value: {{ .Values.notifier.deadLetterMax | quote }}
- name: NOTIFIER_MAX_WAITING_CALLS
  value: {{ .Values.notifier.maxWaitingCalls | quote }}
- name: NOTIFIER_MAX_WAITING_CALLS_PER_CALLER
  value: {{ .Values.notifier.maxWaitingCallsPerCaller | quote }}
- name: NOTIFIER_REDIS_MAX_CONNECTIONS
  value: {{ .Values.notifier.redisMaxConnections | quote }}
- name: NOTIFIER_REDIS_PUBLISH_CONNECTIONS
  value: {{ .Values.notifier.redisPublishConnections | quote }}
{{- with .Values.notifier.webhooks }}
- name: NOTIFIER_WEBHOOK_BATCH_SIZE
  value: {{ .batchSize | quote }}
- name: NOTIFIER_WEBHOOK_MAX_BATCH_BYTES
  value: {{ .maxBatchBytes | quote }}
- name: NOTIFIER_WEBHOOK_TIMEOUT_SECONDS
  value: {{ .timeoutSeconds | quote }}
- name: NOTIFIER_WEBHOOK_MAX_ATTEMPTS
  value: {{ .maxAttempts | quote }}
- name: NOTIFIER_WEBHOOK_BACKOFF_SECONDS
  value: {{ .backoffSeconds | quote }}
- name: NOTIFIER_WEBHOOK_BACKOFF_MAX_SECONDS
  value: {{ .backoffMaxSeconds | quote }}
- name: NOTIFIER_LEASE_SECONDS
  value: {{ .leaseSeconds | quote }}
- name: NOTIFIER_SUBSCRIBER_POLL_SECONDS
  value: {{ .pollSeconds | quote }}
- name: NOTIFIER_WEBHOOK_ALLOWED_DESTINATIONS
  value: {{ join "," .allowedDestinations | quote }}
{{- if .caBundleConfigMap }}
- name: NOTIFIER_WEBHOOK_CA_BUNDLE
  value: {{ printf "/etc/profile-sync/webhook-ca/%s" .caBundleKey | quote }}
{{- end }}
{{- end }}
{{- if include "profile-sync.subscribersSecretName" . }}
- name: NOTIFIER_SUBSCRIBERS_FILE
  value: {{ printf "/etc/profile-sync/subscribers/%s" (include "profile-sync.subscribersSecretKey" .) | quote }}
{{- end }}
{{- with .Values.notifier.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "profile-sync.notifierVolumes" -}}
{{ include "profile-sync.emulatorCaVolume" . | trim }}
{{- with .Values.notifier.webhooks.caBundleConfigMap }}
- name: webhook-ca
  configMap:
    name: {{ . }}
    items:
      - key: {{ $.Values.notifier.webhooks.caBundleKey }}
        path: {{ $.Values.notifier.webhooks.caBundleKey }}
{{- end }}
{{- with include "profile-sync.subscribersSecretName" . }}
- name: subscribers
  secret:
    secretName: {{ . }}
    items:
      - key: {{ include "profile-sync.subscribersSecretKey" $ }}
        path: {{ include "profile-sync.subscribersSecretKey" $ }}
{{- end }}
{{- end -}}

{{- define "profile-sync.notifierVolumeMounts" -}}
{{ include "profile-sync.emulatorCaVolumeMount" . | trim }}
{{- if .Values.notifier.webhooks.caBundleConfigMap }}
- name: webhook-ca
  mountPath: /etc/profile-sync/webhook-ca
  readOnly: true
{{- end }}
{{- if include "profile-sync.subscribersSecretName" . }}
- name: subscribers
  mountPath: /etc/profile-sync/subscribers
  readOnly: true
{{- end }}
{{- end -}}
