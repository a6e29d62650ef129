"""The REST gateway: Envoy's gRPC-JSON transcoder in front of the three gRPC services."""
