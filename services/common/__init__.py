"""Runtime shared by every profile-sync service: configuration, logging,
the gRPC server bootstrap, error mapping, input validation, metrics, Redis."""
