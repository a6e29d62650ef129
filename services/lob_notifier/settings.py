"""The notifier's settings, read once from the environment.

settings = NotifierSettings.from_env(EnvReader())
settings.stream_key           # "profilesync:changes" unless NOTIFIER_STREAM_KEY says otherwise
settings.delivery.max_attempts  # webhook attempts before a batch is dead-lettered
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from services.common.entra import EntraSettings
from services.common.settings import ConfigError, EnvReader, ServerSettings
from services.lob_notifier.destinations import ALLOW_SETTING, DestinationPolicy
from services.lob_notifier.subscribers_file import FileSubscriber, load_subscribers_file

__all__ = ["DEFAULT_PORT", "DeliverySettings", "NotifierSettings"]

DEFAULT_PORT = 50053
_DEFAULT_STREAM_KEY = "profilesync:changes"
_DEFAULT_MAX_EVENTS = 1_000_000
# A week covers a long weekend's outage of a consumer with room to spare.
_DEFAULT_MAX_AGE_SECONDS = 7 * 24 * 3600
# Proxies and load balancers commonly cut connections idle for 60 s.
_DEFAULT_HEARTBEAT_SECONDS = 15
# Open change streams and long-polls one replica serves (they share one Redis
# reader, so the cost is memory: a few kB each), and one caller's share.
_DEFAULT_MAX_WAITING = 10_000
_DEFAULT_MAX_WAITING_PER_CALLER = 1_000
# Concurrent RPCs above the waiting cap, so unary calls (ListChanges without
# a wait, subscriber calls, Publish) are served while streams are at the cap.
_UNARY_HEADROOM = 1_000
# Connections of the readers' pool (short reads; the waiting is done by one
# shared reader) and of the publisher's own pool.
_DEFAULT_REDIS_MAX_CONNECTIONS = 32
_DEFAULT_REDIS_PUBLISH_CONNECTIONS = 4


@dataclass(frozen=True)
class DeliverySettings:
    """How webhooks are pushed (see docs/notifier.md for the receiver's side).

    Retries back off exponentially from `backoff_seconds` up to
    `backoff_max_seconds`, with jitter; after `max_attempts` failed attempts
    the batch is dead-lettered. The defaults retry a batch for about 40 minutes.
    """

    batch_size: int = 100
    max_batch_bytes: int = 1024 * 1024
    timeout_seconds: float = 10.0
    max_attempts: int = 15
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    ca_bundle: str | None = None
    # A replica holding a subscriber's lease renews it every third of this;
    # if the replica dies, another takes over after at most this long.
    lease_seconds: float = 15.0
    # How often each replica looks for subscribers nobody delivers, re-reads
    # the subscribers file, applies the age limit and refreshes gauges.
    poll_seconds: float = 2.0
    dead_letter_max: int = 10_000
    max_subscribers: int = 100
    # Where receivers may be (destinations.py): by default public https only.
    destinations: DestinationPolicy = field(default_factory=DestinationPolicy)
    # Identifies this replica in leases (the pod name in Kubernetes).
    replica: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    @classmethod
    def from_env(cls, env: EnvReader) -> DeliverySettings:
        timeout = env.number("NOTIFIER_WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
        lease = env.number("NOTIFIER_LEASE_SECONDS", 15.0, minimum=1.0)
        if lease <= timeout:
            # A lease shorter than a request could expire mid-request and let
            # a second replica deliver the same subscriber at the same time.
            raise ConfigError(
                f"NOTIFIER_LEASE_SECONDS ({lease:g}) must be longer than "
                f"NOTIFIER_WEBHOOK_TIMEOUT_SECONDS ({timeout:g})"
            )
        backoff = env.number("NOTIFIER_WEBHOOK_BACKOFF_SECONDS", 1.0, minimum=0.01)
        backoff_max = env.number("NOTIFIER_WEBHOOK_BACKOFF_MAX_SECONDS", 300.0, minimum=0.01)
        if backoff_max < backoff:
            raise ConfigError(
                "NOTIFIER_WEBHOOK_BACKOFF_MAX_SECONDS must be at least "
                f"NOTIFIER_WEBHOOK_BACKOFF_SECONDS ({backoff:g}), got {backoff_max:g}"
            )
        return cls(
            batch_size=env.integer("NOTIFIER_WEBHOOK_BATCH_SIZE", 100, minimum=1, maximum=1000),
            max_batch_bytes=env.integer(
                "NOTIFIER_WEBHOOK_MAX_BATCH_BYTES", 1024 * 1024, minimum=1024
            ),
            timeout_seconds=timeout,
            max_attempts=env.integer("NOTIFIER_WEBHOOK_MAX_ATTEMPTS", 15, minimum=1),
            backoff_seconds=backoff,
            backoff_max_seconds=backoff_max,
            ca_bundle=env.optional("NOTIFIER_WEBHOOK_CA_BUNDLE"),
            lease_seconds=lease,
            poll_seconds=env.number("NOTIFIER_SUBSCRIBER_POLL_SECONDS", 2.0, minimum=0.05),
            dead_letter_max=env.integer("NOTIFIER_DEAD_LETTER_MAX", 10_000, minimum=1),
            max_subscribers=env.integer("NOTIFIER_MAX_SUBSCRIBERS", 100, minimum=1),
            destinations=DestinationPolicy.parse(env.optional(ALLOW_SETTING)),
            replica=env.text("HOSTNAME", socket.gethostname()) + f"-{os.getpid()}",
        )


@dataclass(frozen=True)
class NotifierSettings:
    """Everything `python -m services.lob_notifier` needs.

    Open change streams and long-polls are capped per replica
    (`max_waiting_calls`) and per caller (`max_waiting_calls_per_caller`);
    the gRPC server's concurrency limit sits above the first (admission.py).

    Retention: about `max_events` events (XADD MAXLEN ~, so Redis may keep
    slightly more), none older than `max_age_seconds`. `dedupe_ttl_seconds` is
    how long an event id is remembered for dropping republished duplicates;
    it defaults to the age limit, so a duplicate is dropped for as long as
    the original can be read.
    """

    server: ServerSettings
    # The app registration whose tokens callers must present.
    entra: EntraSettings
    redis_url: str
    stream_key: str
    max_events: int
    max_age_seconds: int
    dedupe_ttl_seconds: int
    heartbeat_seconds: int
    delivery: DeliverySettings
    subscribers_file: str | None = None
    file_subscribers: tuple[FileSubscriber, ...] = ()
    max_waiting_calls: int = _DEFAULT_MAX_WAITING
    max_waiting_calls_per_caller: int = _DEFAULT_MAX_WAITING_PER_CALLER
    redis_max_connections: int = _DEFAULT_REDIS_MAX_CONNECTIONS
    redis_publish_connections: int = _DEFAULT_REDIS_PUBLISH_CONNECTIONS

    @classmethod
    def from_env(cls, env: EnvReader) -> NotifierSettings:
        max_age = env.integer("NOTIFIER_MAX_AGE_SECONDS", _DEFAULT_MAX_AGE_SECONDS, minimum=60)
        subscribers_file = env.optional("NOTIFIER_SUBSCRIBERS_FILE")
        max_waiting = env.integer("NOTIFIER_MAX_WAITING_CALLS", _DEFAULT_MAX_WAITING, minimum=1)
        per_caller = env.integer(
            "NOTIFIER_MAX_WAITING_CALLS_PER_CALLER",
            min(max_waiting, _DEFAULT_MAX_WAITING_PER_CALLER),
            minimum=1,
        )
        server = ServerSettings.from_env(
            env,
            default_port=DEFAULT_PORT,
            default_max_concurrent_rpcs=max_waiting + _UNARY_HEADROOM,
        )
        if server.max_concurrent_rpcs <= max_waiting:
            # Streams at their cap would then refuse every other call.
            raise ConfigError(
                f"GRPC_MAX_CONCURRENT_RPCS ({server.max_concurrent_rpcs}) must be larger than "
                f"NOTIFIER_MAX_WAITING_CALLS ({max_waiting})"
            )
        return cls(
            server=server,
            entra=EntraSettings.from_env(env, with_secret=False),
            redis_url=env.text("REDIS_URL"),
            stream_key=env.text("NOTIFIER_STREAM_KEY", _DEFAULT_STREAM_KEY),
            max_events=env.integer("NOTIFIER_MAX_EVENTS", _DEFAULT_MAX_EVENTS, minimum=1),
            max_age_seconds=max_age,
            dedupe_ttl_seconds=env.integer("NOTIFIER_DEDUPE_TTL_SECONDS", max_age, minimum=1),
            heartbeat_seconds=env.integer(
                "NOTIFIER_HEARTBEAT_SECONDS", _DEFAULT_HEARTBEAT_SECONDS, minimum=1, maximum=300
            ),
            delivery=DeliverySettings.from_env(env),
            subscribers_file=subscribers_file,
            file_subscribers=(
                load_subscribers_file(subscribers_file) if subscribers_file is not None else ()
            ),
            max_waiting_calls=max_waiting,
            max_waiting_calls_per_caller=per_caller,
            redis_max_connections=env.integer(
                "NOTIFIER_REDIS_MAX_CONNECTIONS", _DEFAULT_REDIS_MAX_CONNECTIONS, minimum=2
            ),
            redis_publish_connections=env.integer(
                "NOTIFIER_REDIS_PUBLISH_CONNECTIONS", _DEFAULT_REDIS_PUBLISH_CONNECTIONS, minimum=1
            ),
        )
