{{/*
A Deployment of one of the Python gRPC services (extender, notifier, differ server).

include "profile-sync.grpcDeployment" (dict
  "root" $                       the chart context
  "component" "extender"         resource name suffix and component label
  "values" .Values.extender      replicaCount, resources, scheduling, autoscaling
  "serviceAccount" ...           the component's serviceAccount values
  "args" (list ...)              the container's command
  "port" 50051                   gRPC port (probes, Service)
  "env" "..."                    rendered env entries
  "volumes" "..."                extra rendered volumes (optional)
  "volumeMounts" "..."           extra rendered volume mounts (optional)
  "automountToken" false         whether the pod needs the Kubernetes API
  "checksum" "..."               rolls the pods when referenced configuration changes (optional))
*/}}
{{- define "profile-sync.grpcDeployment" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "profile-sync.componentName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "profile-sync.labels" $ctx | nindent 4 }}
spec:
  {{- if not (and (hasKey $values "autoscaling") $values.autoscaling.enabled) }}
  replicas: {{ $values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "profile-sync.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "profile-sync.labels" $ctx | nindent 8 }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $annotations := include "profile-sync.scrapeAnnotations" $root | fromYaml }}
      {{- with .checksum }}
      {{- $_ := set $annotations "checksum/config" . }}
      {{- end }}
      {{- $annotations = merge (deepCopy $values.podAnnotations) $annotations }}
      {{- with $annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "profile-sync.serviceAccountName" (merge (dict "serviceAccount" .serviceAccount) $ctx) }}
      automountServiceAccountToken: {{ .automountToken }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
      {{- with $values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      affinity:
        {{- include "profile-sync.affinity" (merge (dict "affinity" $values.affinity) $ctx) | nindent 8 }}
      {{- with $values.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "profile-sync.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- toYaml .args | nindent 12 }}
          env:
            {{- include "profile-sync.serverEnv" (dict "root" $root "port" .port "maxConcurrentRpcs" (get $values "maxConcurrentRpcs")) | nindent 12 }}
            {{- .env | trim | nindent 12 }}
          ports:
            - name: grpc
              containerPort: {{ .port }}
              protocol: TCP
            {{- if $root.Values.metrics.enabled }}
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
            {{- end }}
          # The gRPC health service answers NOT_SERVING from the moment SIGTERM arrives, so
          # readiness fails first and the pod leaves the Service before it stops.
          startupProbe:
            grpc:
              port: {{ .port }}
            periodSeconds: 2
            failureThreshold: 30
          readinessProbe:
            grpc:
              port: {{ .port }}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          livenessProbe:
            grpc:
              port: {{ .port }}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          lifecycle:
            preStop:
              exec:
                # Endpoints are removed while the pod keeps serving; only then SIGTERM.
                command: ["sleep", "3"]
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- include "profile-sync.tmpVolumeMount" $root | nindent 12 }}
            {{- with .volumeMounts | trim }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "profile-sync.tmpVolume" $root | nindent 8 }}
        {{- with .volumes | trim }}
        {{- . | nindent 8 }}
        {{- end }}
{{- end -}}
