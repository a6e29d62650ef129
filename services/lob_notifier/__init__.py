"""The LOB notifier: the durable change log the LOB app reads (Redis Streams),
named subscribers, and webhook push.

Modules:
- `settings`: settings from the environment; `subscribers_file`: the
  NOTIFIER_SUBSCRIBERS_FILE format; `subscriber_rules`: what names, URLs and
  secrets must look like;
- `redis_keys`: the Redis key layout; `cursors`: cursor syntax and order;
- `change_log`: the log (idempotent appends, retention, reads that never skip);
  `tail`: the one blocking reader per process that waiting calls share;
- `subscribers`: subscribers' settings, positions, status and dead letters in
  Redis; `admin`: creating and removing them (API and file); `status`: their
  delivery status and gauges;
- `lease`: one replica at a time per subscriber; `signatures`: HMAC-SHA256
  webhook signatures; `webhook`: one signed POST; `delivery`: the workers that
  push webhooks in order, with retries and dead letters;
- `servicer`, `subscriber_api`, `messages`: the gRPC API; `json_lines`: the
  REST change stream's JSON lines; `metrics`: Prometheus;
- `__main__`: the process (`python -m services.lob_notifier`); `collector`: its
  garbage-collection settings.

docs/notifier.md is the user's guide, including the webhook receiver's side.
"""
