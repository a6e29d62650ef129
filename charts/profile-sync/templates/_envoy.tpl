{{/*
The REST gateway's Envoy configuration: files/envoy.yaml, the bootstrap
services/gateway/envoy_config.py renders for the embedded default, written as a template by
`make chart-envoy` (python scripts/chart_test.py envoy) and committed. The values set its ports
and limits and turn its parts (request guard, OpenAPI document, console, differ's routes,
metrics listener) on and off; its backends are the headless Services. The request guard's
Lua source is files/request-guard.lua, a link to services/gateway/request_guard.lua.
*/}}
{{- define "profile-sync.envoyConfig" -}}
{{- tpl (.Files.Get "files/envoy.yaml") . -}}
{{- end -}}

{{/* A backend's address in the configuration: its headless Service, every ready pod a host. */}}
{{- define "profile-sync.gatewayBackendHost" -}}
{{- $service := include "profile-sync.componentName" (dict "root" .root "component" (printf "%s-headless" .component)) -}}
{{- printf "%s.%s.svc.%s" $service .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* The files the configuration's routes serve (the OpenAPI document, the console's pages):
their ConfigMap keys, the names under files/static/. A JSON list. */}}
{{- define "profile-sync.gatewayServedFiles" -}}
{{- $config := include "profile-sync.envoyConfig" . | fromYaml -}}
{{- $listener := index $config.static_resources.listeners 0 -}}
{{- $manager := (index (index $listener.filter_chains 0).filters 0).typed_config -}}
{{- $names := list -}}
{{- range (index $manager.route_config.virtual_hosts 0).routes -}}
{{- with dig "direct_response" "body" "filename" "" . -}}
{{- $names = append $names (base .) -}}
{{- end -}}
{{- end -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{/* Envoy's log line format (spdlog flags; %j is the message escaped for a JSON string). */}}
{{- define "profile-sync.envoyLogFormat" -}}
{"time":"%Y-%m-%dT%T.%e%z","level":"%l","service":"gateway","logger":"envoy.%n","message":"%j"}
{{- end -}}
