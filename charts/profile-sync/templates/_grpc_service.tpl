{{/*
The Services of a gRPC component: a ClusterIP Service for callers inside the cluster and a
headless one for the gateway. gRPC keeps one HTTP/2 connection open, so behind a ClusterIP all
of the gateway's calls would reach a single pod; through the headless Service Envoy resolves
every pod and balances each call.

include "profile-sync.grpcServices" (dict "root" $ "component" "extender" "port" 50051)
*/}}
{{- define "profile-sync.grpcServices" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "profile-sync.componentName" $ctx }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "profile-sync.labels" $ctx | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "profile-sync.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: grpc
      port: {{ .port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    {{- if .root.Values.metrics.enabled }}
    - name: metrics
      port: {{ .root.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "profile-sync.componentName" (dict "root" .root "component" (printf "%s-headless" .component)) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "profile-sync.labels" $ctx | nindent 4 }}
spec:
  type: ClusterIP
  clusterIP: None
  # A pod that is not ready yet is not resolved: the gateway only calls ready pods.
  publishNotReadyAddresses: false
  selector:
    {{- include "profile-sync.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: grpc
      port: {{ .port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
{{- end -}}
