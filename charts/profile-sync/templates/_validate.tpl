{{/*
Every misconfiguration the schema cannot express, collected and reported at once, so an
installer fixes them all in one go. Called from validate.yaml.
*/}}
{{- define "profile-sync.validateValues" -}}
{{- $errors := list -}}
{{- $v := .Values -}}

{{- /* The files the gateway needs: its configuration (committed) and the descriptor set and
files it serves, copied into the chart before it is packaged. */ -}}
{{- $missing := list -}}
{{- range (list "envoy.yaml" "profilesync.pb") -}}
{{- if not ($.Files.Get (printf "files/%s" .)) -}}
{{- $missing = append $missing (printf "files/%s" .) -}}
{{- end -}}
{{- end -}}
{{- if .Files.Get "files/envoy.yaml" -}}
{{- range (include "profile-sync.gatewayServedFiles" . | fromJsonArray) -}}
{{- if not ($.Files.Get (printf "files/static/%s" .)) -}}
{{- $missing = append $missing (printf "files/static/%s" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $missing -}}
{{- $errors = append $errors (printf "%s missing from the chart: run `make chart-test` (or `python scripts/chart_test.py prepare`) before packaging it" (join ", " $missing)) -}}
{{- end -}}

{{- /* Entra ID, or the emulator standing in for it. */ -}}
{{- if $v.graphEmulator.enabled -}}
{{- range $key := list "tenantId" "clientId" "existingSecret" -}}
{{- if get $v.azure $key -}}
{{- $errors = append $errors (printf "azure.%s: leave it empty with graphEmulator.enabled (the services use the emulator's tenant and app)" $key) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- if not $v.azure.tenantId -}}
{{- $errors = append $errors "azure.tenantId is required: the Directory (tenant) id of your Entra ID tenant" -}}
{{- end -}}
{{- if not $v.azure.clientId -}}
{{- $errors = append $errors "azure.clientId is required: the Application (client) id of the profile-sync app registration" -}}
{{- end -}}
{{- if not $v.azure.existingSecret -}}
{{- $errors = append $errors (printf "azure.existingSecret is required: a Secret with the app's client secret under the key %q (kubectl create secret generic NAME --from-literal=%s=...)" $v.azure.existingSecretKey $v.azure.existingSecretKey) -}}
{{- end -}}
{{- end -}}

{{- /* Redis / ElastiCache. */ -}}
{{- if and $v.redis.url $v.redis.existingSecret -}}
{{- $errors = append $errors "redis.url and redis.existingSecret are both set: set only one" -}}
{{- else if not (or $v.redis.url $v.redis.existingSecret) -}}
{{- $errors = append $errors "redis.url or redis.existingSecret is required: where Redis / ElastiCache is (rediss://host:6379/0)" -}}
{{- end -}}
{{- with $v.redis.url -}}
{{- if regexMatch "^rediss?://[^/]*@" . -}}
{{- $errors = append $errors "redis.url must not carry credentials: put the whole URL in a Secret and name it in redis.existingSecret" -}}
{{- end -}}
{{- if and (hasPrefix "redis://" .) (not $v.redis.allowInsecure) -}}
{{- $errors = append $errors "redis.url uses redis:// (no TLS): use rediss:// (ElastiCache in-transit encryption), or set redis.allowInsecure=true for a test Redis" -}}
{{- end -}}
{{- end -}}

{{- /* Snapshots must outlive the sync pods. */ -}}
{{- if not $v.graphEmulator.enabled -}}
{{- if not $v.differ.snapshotStore -}}
{{- $errors = append $errors "differ.snapshotStore is required: the S3 location of the snapshots, s3://bucket/prefix" -}}
{{- else if not (hasPrefix "s3://" $v.differ.snapshotStore) -}}
{{- $errors = append $errors (printf "differ.snapshotStore must be s3://bucket/prefix, got %q: a directory in a sync pod is gone when the pod ends" $v.differ.snapshotStore) -}}
{{- end -}}
{{- end -}}

{{- if hasPrefix "s3://" $v.differ.snapshotStore -}}
{{- if not $v.differ.s3.region -}}
{{- $errors = append $errors "differ.s3.region is required with an s3:// snapshot store: the bucket's AWS region (e.g. eu-west-1)" -}}
{{- end -}}
{{- if regexMatch "^s3:///" $v.differ.snapshotStore -}}
{{- $errors = append $errors (printf "differ.snapshotStore %q names no bucket: s3://bucket/prefix" $v.differ.snapshotStore) -}}
{{- end -}}
{{- end -}}
{{- if and $v.differ.s3.kmsKeyId (not (hasPrefix "aws:kms" $v.differ.s3.sse)) -}}
{{- $errors = append $errors (printf "differ.s3.kmsKeyId needs differ.s3.sse aws:kms or aws:kms:dsse, not %q" $v.differ.s3.sse) -}}
{{- end -}}

{{- /* On-demand syncs in cluster mode create Jobs through the Kubernetes API. */ -}}
{{- if and $v.differ.server.enabled (eq (include "profile-sync.differSyncMode" .) "kubernetes") (not $v.differ.rbac.create) (not $v.differ.serviceAccount.name) -}}
{{- $errors = append $errors "differ.server.syncMode=kubernetes needs differ.rbac.create=true, or differ.serviceAccount.name naming an account you granted get on the CronJob and create on jobs" -}}
{{- end -}}

{{- /* Paced sweeps: after a sweeper stops, its shard stays locked for the lock's TTL. */ -}}
{{- if and (eq $v.differ.mode "sweeper") (le (int $v.differ.intervalSeconds) (int $v.differ.lockTtlSeconds)) -}}
{{- $errors = append $errors (printf "differ.intervalSeconds (%d) must exceed differ.lockTtlSeconds (%d): when a sweeper stops, its shard stays locked that long, and its replacement could not keep the interval" (int $v.differ.intervalSeconds) (int $v.differ.lockTtlSeconds)) -}}
{{- end -}}

{{- /* Shards. */ -}}
{{- if gt (int $v.differ.parallelism) (int $v.differ.shards) -}}
{{- $errors = append $errors (printf "differ.parallelism (%d) cannot exceed differ.shards (%d)" (int $v.differ.parallelism) (int $v.differ.shards)) -}}
{{- end -}}

{{- /* Shutdown: readiness fails, the preStop pause passes, in-flight calls finish, then SIGKILL. */ -}}
{{- range $component := list "extender" "notifier" -}}
{{- $grace := int (get (get $v $component) "terminationGracePeriodSeconds") -}}
{{- if le $grace (add (int $v.shutdownGraceSeconds) 3) -}}
{{- $errors = append $errors (printf "%s.terminationGracePeriodSeconds (%d) must exceed shutdownGraceSeconds (%d) plus the 3 s preStop pause" $component $grace (int $v.shutdownGraceSeconds)) -}}
{{- end -}}
{{- end -}}
{{- if le (int $v.differ.server.terminationGracePeriodSeconds) (add (int $v.shutdownGraceSeconds) 3) -}}
{{- $errors = append $errors (printf "differ.server.terminationGracePeriodSeconds (%d) must exceed shutdownGraceSeconds (%d) plus the 3 s preStop pause" (int $v.differ.server.terminationGracePeriodSeconds) (int $v.shutdownGraceSeconds)) -}}
{{- end -}}
{{- if le (int $v.gateway.terminationGracePeriodSeconds) (int $v.gateway.preStopSleepSeconds) -}}
{{- $errors = append $errors (printf "gateway.terminationGracePeriodSeconds (%d) must exceed gateway.preStopSleepSeconds (%d)" (int $v.gateway.terminationGracePeriodSeconds) (int $v.gateway.preStopSleepSeconds)) -}}
{{- end -}}

{{- /* Autoscaling bounds. */ -}}
{{- range $component := list "extender" "notifier" "gateway" -}}
{{- $autoscaling := get (get $v $component) "autoscaling" -}}
{{- if and $autoscaling.enabled (gt (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) -}}
{{- $errors = append $errors (printf "%s.autoscaling.minReplicas (%d) cannot exceed maxReplicas (%d)" $component (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) -}}
{{- end -}}
{{- end -}}

{{- /* The dashboard and the alerts read the services' metrics, sync outcomes from the differ server. */ -}}
{{- range $key := list "grafanaDashboard" "prometheusRule" -}}
{{- if and (get $v.metrics $key).enabled (not $v.metrics.enabled) -}}
{{- $errors = append $errors (printf "metrics.%s.enabled needs metrics.enabled: its queries read the services' metrics" $key) -}}
{{- end -}}
{{- end -}}
{{- if and $v.metrics.prometheusRule.enabled (not $v.differ.server.enabled) -}}
{{- $errors = append $errors "metrics.prometheusRule.enabled needs differ.server.enabled: the differ server exports the sync outcomes the alerts watch (without it ProfileSyncNoSuccessfulSync always fires)" -}}
{{- end -}}

{{- /* Ports: the metrics port is shared by every pod, so it must differ from theirs. */ -}}
{{- $ports := dict "extender.port" $v.extender.port "notifier.port" $v.notifier.port "differ.server.port" $v.differ.server.port "gateway.port" $v.gateway.port "gateway.adminPort" $v.gateway.adminPort -}}
{{- range $key, $port := $ports -}}
{{- if and $v.metrics.enabled (eq (int $port) (int $v.metrics.port)) -}}
{{- $errors = append $errors (printf "%s (%d) is also metrics.port: pick another port for one of them" $key (int $port)) -}}
{{- end -}}
{{- end -}}
{{- if eq (int $v.gateway.port) (int $v.gateway.adminPort) -}}
{{- $errors = append $errors (printf "gateway.port and gateway.adminPort are both %d" (int $v.gateway.port)) -}}
{{- end -}}

{{- /* Webhook subscribers. */ -}}
{{- if and $v.notifier.subscribers $v.notifier.existingSubscribersSecret -}}
{{- $errors = append $errors "notifier.subscribers and notifier.existingSubscribersSecret are both set: set only one" -}}
{{- end -}}
{{- $names := list -}}
{{- range $i, $subscriber := $v.notifier.subscribers -}}
{{- if has $subscriber.name $names -}}
{{- $errors = append $errors (printf "notifier.subscribers[%d].name %q is used twice: subscriber names must be unique" $i $subscriber.name) -}}
{{- end -}}
{{- $names = append $names $subscriber.name -}}
{{- if and (hasPrefix "http://" $subscriber.url) (not $v.notifier.allowInsecureWebhooks) -}}
{{- $errors = append $errors (printf "notifier.subscribers[%d].url uses http://: webhooks carry profile data, use https:// (or set notifier.allowInsecureWebhooks=true for a test receiver)" $i) -}}
{{- end -}}
{{- end -}}

{{- if le (int $v.notifier.maxConcurrentRpcs) (int $v.notifier.maxWaitingCalls) -}}
{{- $errors = append $errors (printf "notifier.maxConcurrentRpcs (%v) must be larger than notifier.maxWaitingCalls (%v): streams at their cap would refuse every other call" $v.notifier.maxConcurrentRpcs $v.notifier.maxWaitingCalls) -}}
{{- end -}}
{{- with $v.notifier.webhooks -}}
{{- if le (float64 .leaseSeconds) (float64 .timeoutSeconds) -}}
{{- $errors = append $errors (printf "notifier.webhooks.leaseSeconds (%v) must be longer than notifier.webhooks.timeoutSeconds (%v): a lease ending mid-request lets two replicas deliver at once" .leaseSeconds .timeoutSeconds) -}}
{{- end -}}
{{- if lt (float64 .backoffMaxSeconds) (float64 .backoffSeconds) -}}
{{- $errors = append $errors (printf "notifier.webhooks.backoffMaxSeconds (%v) must be at least notifier.webhooks.backoffSeconds (%v)" .backoffMaxSeconds .backoffSeconds) -}}
{{- end -}}
{{- end -}}

{{- /* Exposure. */ -}}
{{- if and $v.gateway.ingress.enabled (not $v.gateway.ingress.host) -}}
{{- $errors = append $errors "gateway.ingress.host is required when gateway.ingress.enabled is true" -}}
{{- end -}}

{{- if $errors -}}
{{- fail (printf "\n\nprofile-sync: %d problem(s) to fix:\n  - %s\n" (len $errors) (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}
