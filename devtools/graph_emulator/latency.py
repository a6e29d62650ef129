"""How long a profile read takes: a log-normal distribution fitted to a median and a p99.

    profile = ProfileLatency.fitted(median_ms=300, p99_ms=1500)
    seconds = profile.draw(rng)      # 0.3 s half the time, above 1.5 s one time in a hundred

SharePoint-backed properties (``aboutMe``, ``skills``, ...) are read from SharePoint Online for
each user, so in a real tenant those reads are slow and uneven: most answer in a few hundred
milliseconds and a few take seconds. A log-normal has that shape (positive, long right tail)
and is fixed by two figures a user can measure in their own tenant: the median and the p99.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

#: The standard normal's 99th percentile: p99 = median * exp(sigma * Z_99).
Z_99: Final = NormalDist().inv_cdf(0.99)
#: No single draw waits longer than this; Graph's gateway gives up on a request long before.
MAX_DRAW_SECONDS: Final = 120.0


@dataclass(frozen=True)
class ProfileLatency:
    #: Parameters of the underlying normal (of ln seconds); ``mu`` is ln(median).
    mu: float
    sigma: float

    @classmethod
    def fitted(cls, median_ms: int, p99_ms: int) -> ProfileLatency | None:
        """The log-normal with this median and p99; None when the median is 0 (no latency).

        ``p99_ms`` must be at least ``median_ms`` (the config checks it); equal figures give
        a fixed latency.
        """
        if median_ms <= 0:
            return None
        if p99_ms < median_ms:
            raise ValueError(f"p99 ({p99_ms} ms) is below the median ({median_ms} ms)")
        median = median_ms / 1000
        return cls(mu=math.log(median), sigma=math.log(p99_ms / median_ms) / Z_99)

    def draw(self, rng: random.Random) -> float:
        """One latency, in seconds."""
        return min(rng.lognormvariate(self.mu, self.sigma), MAX_DRAW_SECONDS)

    def quantile(self, share: float) -> float:
        """The latency (seconds) below which ``share`` of the draws fall."""
        return math.exp(self.mu + self.sigma * NormalDist().inv_cdf(share))
