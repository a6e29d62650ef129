{{/*
The REST gateway's Envoy configuration: the same bootstrap services/gateway/envoy_config.py
renders for the embedded default (tests/chart compares the two), with the backends at the
headless Services and Envoy's statistics served as Prometheus metrics on the metrics port.

The routes come from files/rest-routes.json: the methods with a google.api.http rule in the
descriptor set, written next to it by `make chart-test` (scripts/chart_test.py prepare).
*/}}

{{/* The gRPC services behind the gateway, in the order envoy_config.py lists them. */}}
{{- define "profile-sync.gatewayBackends" -}}
{{- $backends := list (dict "service" "profilesync.v1.ProfileExtender" "component" "extender" "port" .Values.extender.port) -}}
{{- if .Values.differ.server.enabled -}}
{{- $backends = append $backends (dict "service" "profilesync.v1.SnapshotDiffer" "component" "differ" "port" .Values.differ.server.port) -}}
{{- end -}}
{{- $backends = append $backends (dict "service" "profilesync.v1.LobNotifier" "component" "notifier" "port" .Values.notifier.port) -}}
{{- toJson $backends -}}
{{- end -}}

{{/* Envoy's log line format (spdlog flags; %j is the message escaped for a JSON string). */}}
{{- define "profile-sync.envoyLogFormat" -}}
{"time":"%Y-%m-%dT%T.%e%z","level":"%l","service":"gateway","logger":"envoy.%n","message":"%j"}
{{- end -}}

{{/* HTTP statuses Envoy answers itself -> the gRPC code its JSON error body carries. */}}
{{- define "profile-sync.envoyLocalReplyCodes" -}}
[[400, 3], [404, 5], [413, 3], [429, 8], [431, 3], [503, 14], [504, 4]]
{{- end -}}

{{- define "profile-sync.envoyStatusMapper" -}}
- filter:
    status_code_filter:
      comparison:
        op: {{ .op }}
        value:
          default_value: {{ .status }}
          runtime_key: unused
  body_format_override:
    json_format:
      code: {{ .code }}
      message: "%LOCAL_REPLY_BODY%"
    content_type: application/json
{{- end -}}

{{/* The request guard's Lua source, when the guard is on and the chart carries it. */}}
{{- define "profile-sync.requestGuard" -}}
{{- if .Values.gateway.requestGuard -}}
{{- .Files.Get "files/request-guard.lua" -}}
{{- end -}}
{{- end -}}

{{/*
The routes the gateway answers itself (health, the OpenAPI document, the console), as the
embedded default renders them (files/gateway-routes.json), less those the values turn off.
A JSON list; files they serve are mounted from the gateway's ConfigMap.
*/}}
{{- define "profile-sync.gatewayLocalRoutes" -}}
{{- $routes := list -}}
{{- range (.Files.Get "files/gateway-routes.json" | default "[]" | fromJsonArray) -}}
{{- $path := coalesce (get .match "path") (get .match "prefix") -}}
{{- if and (hasPrefix "/console" $path) (not $.Values.gateway.console) -}}
{{- else if and (eq $path "/openapi.json") (not $.Values.gateway.openapi) -}}
{{- else -}}
{{- $routes = append $routes . -}}
{{- end -}}
{{- end -}}
{{- toJson $routes -}}
{{- end -}}

{{/* The files those routes serve: ConfigMap keys (their names under files/static/). */}}
{{- define "profile-sync.gatewayServedFiles" -}}
{{- $names := list -}}
{{- range (include "profile-sync.gatewayLocalRoutes" . | fromJsonArray) -}}
{{- with get (get (get . "direct_response" | default dict) "body" | default dict) "filename" -}}
{{- $names = append $names (base .) -}}
{{- end -}}
{{- end -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{/* Refusals Envoy makes with an empty body or a bare reason phrase, given a message: a request
its HTTP codec could not parse, a method it does not route, a body over the size limit. */}}
{{- define "profile-sync.envoyProtocolErrorMappers" -}}
{{- $headers := list
  (dict "header" (dict "name" ":path" "present_match" true "invert_match" true) "message" "malformed HTTP request (%RESPONSE_CODE_DETAILS%)")
  (dict "header" (dict "name" ":method" "string_match" (dict "safe_regex" (dict "regex" "GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT")) "invert_match" true) "message" "HTTP method %REQ(:METHOD)% is not supported")
}}
{{- range $headers }}
- filter:
    and_filter:
      filters:
        - status_code_filter:
            comparison:
              op: EQ
              value:
                default_value: 400
                runtime_key: unused
        - header_filter:
            header:
              {{- toYaml .header | nindent 14 }}
  body_format_override:
    json_format:
      code: 3
      message: {{ .message | quote }}
    content_type: application/json
{{- end }}
- filter:
    status_code_filter:
      comparison:
        op: EQ
        value:
          default_value: 413
          runtime_key: unused
  body_format_override:
    json_format:
      code: 3
      message: {{ printf "the request body is larger than %d bytes, the most this gateway accepts" (int .Values.gateway.maxRequestBytes) | quote }}
    content_type: application/json
{{- end -}}

{{- define "profile-sync.envoyConfig" -}}
{{- $gateway := .Values.gateway -}}
{{- $guard := include "profile-sync.requestGuard" . -}}
{{- $localRoutes := include "profile-sync.gatewayLocalRoutes" . | fromJsonArray -}}
{{- $largest := 0 -}}
{{- range (include "profile-sync.gatewayServedFiles" . | fromJsonArray) -}}
{{- $largest = max $largest (len ($.Files.Get (printf "files/static/%s" .))) -}}
{{- end -}}
{{- $routes := .Files.Get "files/rest-routes.json" | fromJson -}}
{{- $backends := include "profile-sync.gatewayBackends" . | fromJsonArray -}}
{{- $types := "type.googleapis.com/envoy.extensions" -}}
# Connections beyond the limit are not accepted instead of exhausting Envoy's memory.
overload_manager:
  resource_monitors:
    - name: envoy.resource_monitors.global_downstream_max_connections
      typed_config:
        "@type": {{ $types }}.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
        max_active_downstream_connections: {{ $gateway.maxConnections }}
admin:
  # Loopback only: the admin interface can change and stop Envoy.
  address:
    socket_address:
      address: 127.0.0.1
      port_value: {{ $gateway.adminPort }}
static_resources:
  listeners:
    - name: rest
      address:
        socket_address:
          address: 0.0.0.0
          port_value: {{ $gateway.port }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": {{ $types }}.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: rest
                codec_type: AUTO
                # Slow clients may not hold connections open by trickling headers.
                request_headers_timeout: 10s
                http2_protocol_options:
                  max_concurrent_streams: {{ $gateway.maxStreamsPerConnection }}
                use_remote_address: true
                # The id in the access log is handed back, so a caller can quote it.
                generate_request_id: true
                always_set_request_id_in_response: true
                access_log:
                  - name: envoy.access_loggers.stdout
                    typed_config:
                      "@type": {{ $types }}.access_loggers.stream.v3.StdoutAccessLog
                      log_format:
                        # No request headers beyond these: Authorization never reaches the log.
                        json_format:
                          time: "%START_TIME%"
                          service: gateway
                          requestId: "%REQ(X-REQUEST-ID)%"
                          method: "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%"
                          path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
                          grpcMethod: "%REQ(:PATH)%"
                          protocol: "%PROTOCOL%"
                          status: "%RESPONSE_CODE%"
                          flags: "%RESPONSE_FLAGS%"
                          details: "%RESPONSE_CODE_DETAILS%"
                          bytesReceived: "%BYTES_RECEIVED%"
                          bytesSent: "%BYTES_SENT%"
                          durationMs: "%DURATION%"
                          upstream: "%UPSTREAM_CLUSTER%"
                          client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
                          userAgent: "%REQ(USER-AGENT)%"
                # Envoy's own errors read like the transcoded ones: {"code", "message"}.
                local_reply_config:
                  mappers:
                    # A service's circuit breaker is full (flag UO): 429 with Retry-After.
                    - filter:
                        response_flag_filter:
                          flags: [UO]
                      status_code: 429
                      headers_to_add:
                        - header:
                            key: retry-after
                            value: "5"
                          append_action: OVERWRITE_IF_EXISTS_OR_ADD
                      body_format_override:
                        json_format:
                          code: 8
                          message: "the gateway is at its limit of calls in flight to this service (GATEWAY_MAX_BACKEND_REQUESTS); retry later"
                        content_type: application/json
                    {{- if $guard }}
                    {{- include "profile-sync.envoyProtocolErrorMappers" . | nindent 20 }}
                    {{- end }}
                    {{- range (include "profile-sync.envoyLocalReplyCodes" . | fromJsonArray) }}
                    {{- include "profile-sync.envoyStatusMapper" (dict "op" "EQ" "status" (index . 0) "code" (index . 1)) | nindent 20 }}
                    {{- end }}
                    {{- include "profile-sync.envoyStatusMapper" (dict "op" "GE" "status" 400 "code" 2) | nindent 20 }}
                route_config:
                  name: rest
                  {{- if $largest }}
                  # Envoy refuses a direct-response body over 4 KiB unless allowed: the largest
                  # served file's size with room to spare.
                  max_direct_response_body_size_bytes: {{ max 4096 (mul $largest 2) }}
                  {{- end }}
                  virtual_hosts:
                    - name: profilesync
                      domains: ["*"]
                      routes:
                        # Answered by the gateway itself: /healthz, /openapi.json, the console.
                        {{- range $localRoutes }}
                        -
                          {{- toYaml . | nindent 26 }}
                        {{- end }}
                        {{- range $backend := $backends }}
                        {{- range $method := (get $routes $backend.service | default list) }}
                        - match:
                            path: {{ $method.path | quote }}
                          route:
                            cluster: {{ $backend.service | splitList "." | last }}
                            {{- if $method.serverStreaming }}
                            # A change stream lives as long as the client reads it.
                            timeout: 0s
                            idle_timeout: {{ printf "%ds" (int $gateway.streamIdleTimeoutSeconds) }}
                            {{- else }}
                            timeout: 90s
                            {{- end }}
                        {{- end }}
                        {{- end }}
                        - match:
                            prefix: /
                          direct_response:
                            status: 404
                            body:
                              inline_string: no such route
                http_filters:
                  # Refuses an oversized body with 413 before anything buffers or transcodes it.
                  - name: envoy.filters.http.buffer
                    typed_config:
                      "@type": {{ $types }}.filters.http.buffer.v3.Buffer
                      max_request_bytes: {{ int $gateway.maxRequestBytes }}
                  {{- if $guard }}
                  # Refuses, by name, what gRPC would answer with INTERNAL: header names outside
                  # [0-9a-z_.-], reserved grpc- and -bin headers, paths and queries not UTF-8.
                  - name: envoy.filters.http.lua
                    typed_config:
                      "@type": {{ $types }}.filters.http.lua.v3.Lua
                      default_source_code:
                        inline_string: |
                          {{- $guard | nindent 26 }}
                  {{- end }}
                  - name: envoy.filters.http.grpc_json_transcoder
                    typed_config:
                      "@type": {{ $types }}.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder
                      proto_descriptor: /etc/envoy/profilesync.pb
                      services:
                        {{- range $backends }}
                        - {{ .service }}
                        {{- end }}
                      convert_grpc_status: true
                      print_options:
                        always_print_primitive_fields: true
                        stream_newline_delimited: true
                      request_validation_options:
                        reject_unknown_method: true
                        reject_unknown_query_parameters: true
                        reject_binding_body_field_collisions: true
                      max_request_body_size: {{ int $gateway.maxRequestBytes }}
                      # A page of 1,000 change events runs to a few MB of JSON (the backends'
                      # gRPC message limit).
                      max_response_body_size: 16777216
                      # A space sent as "+" in a query string (form encoding) is a space.
                      query_param_unescape_plus: true
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": {{ $types }}.filters.http.router.v3.Router
    {{- if .Values.metrics.enabled }}
    # Envoy's statistics for Prometheus, without exposing the rest of the admin interface.
    - name: metrics
      address:
        socket_address:
          address: 0.0.0.0
          port_value: {{ .Values.metrics.port }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": {{ $types }}.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: metrics
                codec_type: AUTO
                request_headers_timeout: 10s
                route_config:
                  name: metrics
                  virtual_hosts:
                    - name: metrics
                      domains: ["*"]
                      routes:
                        - match:
                            path: /metrics
                            headers:
                              - name: ":method"
                                string_match:
                                  exact: GET
                          route:
                            cluster: envoy_admin
                            prefix_rewrite: /stats/prometheus
                        - match:
                            prefix: /
                          direct_response:
                            status: 404
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": {{ $types }}.filters.http.router.v3.Router
    {{- end }}
  clusters:
    {{- range $backends }}
    {{- $name := .service | splitList "." | last }}
    - name: {{ $name }}
      # A headless Service: every ready pod is a host, re-resolved as pods come and go.
      type: STRICT_DNS
      connect_timeout: 5s
      dns_lookup_family: V4_PREFERRED
      # Explicit, not Envoy's default of 1,024: every open change stream is one call.
      circuit_breakers:
        thresholds:
          - priority: DEFAULT
            max_connections: {{ $gateway.maxBackendRequests }}
            max_pending_requests: {{ $gateway.maxBackendRequests }}
            max_requests: {{ $gateway.maxBackendRequests }}
            max_retries: 3
      load_assignment:
        cluster_name: {{ $name }}
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address:
                      address: {{ printf "%s.%s.svc.%s" (include "profile-sync.componentName" (dict "root" $ "component" (printf "%s-headless" .component))) $.Release.Namespace $.Values.clusterDomain }}
                      port_value: {{ .port }}
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": {{ $types }}.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options:
              # Pings keep long-lived change streams from being cut by idle NAT/conntrack
              # entries and detect dead backends.
              connection_keepalive:
                interval: 30s
                timeout: 10s
    {{- end }}
    {{- if .Values.metrics.enabled }}
    - name: envoy_admin
      type: STATIC
      connect_timeout: 1s
      load_assignment:
        cluster_name: envoy_admin
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address:
                      address: 127.0.0.1
                      port_value: {{ $gateway.adminPort }}
    {{- end }}
{{- end -}}
