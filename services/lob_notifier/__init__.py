"""The LOB notifier: the durable change log the LOB app reads (Redis Streams).

Modules: `config` (settings from the environment), `cursors` (cursor syntax),
`change_log` (the log on Redis), `servicer` (the gRPC API), `__main__` (the
process: `python -m services.lob_notifier`).
"""
