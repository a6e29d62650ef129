"""What the fuzz suite tried and what came back: counts for the summary, bodies and
tokens for the leak check.

One recorder per test session (`RECORDER`); the conftest prints its summary at the
end of the run and writes it as JSON beside the stack's logs.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Bounded so the suite finishes in a few minutes on two shared cores; raise them
# for a longer local run, e.g. FUZZ_EXAMPLES=300 FUZZ_SEED=random.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
# A fixed seed makes a run reproducible (and CI deterministic); "random" draws anew.
SEED = os.environ.get("FUZZ_SEED", "20261126")
DERANDOMIZE = SEED != "random"

# What a stack trace or an internal type looks like in a response body.
TRACE_MARKERS = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|<class '|"
    r"\bat [\w.$]+\([\w]+\.java:\d+\)|goroutine \d+ \[",
)
# Bare HTTP reason phrases say nothing about what was wrong with the request.
REASON_PHRASES = frozenset(
    {
        "bad request",
        "not found",
        "payload too large",
        "unauthorized",
        "forbidden",
        "internal server error",
        "",
    }
)


@dataclass
class FuzzRecorder:
    cases: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    bodies: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)

    def record(self, suite: str, target: str, kind: str, status: str, body: str = "") -> None:
        """One case: `kind` is valid/invalid, `status` the HTTP status or gRPC code."""
        self.cases[(suite, target, kind)] += 1
        self.statuses[(suite, status)] += 1
        if body:
            self.bodies.append(body)

    def token(self, value: str) -> str:
        self.tokens.add(value)
        return value

    def summary(self) -> dict[str, Any]:
        suites: dict[str, dict[str, Any]] = {}
        for (suite, target, kind), count in sorted(self.cases.items()):
            entry = suites.setdefault(
                suite, {"cases": 0, "valid": 0, "invalid": 0, "targets": {}, "outcomes": {}}
            )
            entry["cases"] += count
            entry[kind] = entry.get(kind, 0) + count
            entry["targets"][target] = entry["targets"].get(target, 0) + count
        for (suite, status), count in sorted(self.statuses.items()):
            suites.setdefault(suite, {"outcomes": {}})["outcomes"][status] = count
        total = sum(self.cases.values())
        return {"examplesPerTarget": EXAMPLES, "seed": SEED, "totalCases": total, "suites": suites}

    def lines(self) -> list[str]:
        summary = self.summary()
        lines = [f"fuzz cases tried: {summary['totalCases']} (seed {SEED}, {EXAMPLES}/target)"]
        for name, suite in summary["suites"].items():
            outcomes = ", ".join(f"{k}: {v}" for k, v in suite["outcomes"].items())
            lines.append(
                f"  {name}: {suite.get('cases', 0)} cases over {len(suite.get('targets', {}))} "
                f"targets ({suite.get('valid', 0)} valid, {suite.get('invalid', 0)} invalid); "
                f"outcomes {outcomes}"
            )
        return lines

    def write(self, path: pathlib.Path) -> None:
        path.write_text(json.dumps(self.summary(), indent=2) + "\n")


RECORDER = FuzzRecorder()


def problem_in(status: int, body: str) -> str | None:
    """Why this answer breaks the rules (None when it keeps them): no 5xx, no stack
    trace, and a 4xx whose JSON body says what was wrong."""
    if status >= 500:
        return f"server error {status}: {body[:300]}"
    if TRACE_MARKERS.search(body):
        return f"a stack trace or internal type in the body: {body[:300]}"
    if 400 <= status < 500:
        try:
            parsed = json.loads(body)
        except ValueError:
            return f"{status} without a JSON body: {body[:300]!r}"
        if not isinstance(parsed, dict) or not isinstance(parsed.get("code"), int):
            return f"{status} body is not {{code, message}}: {body[:300]}"
        message = parsed.get("message")
        if not isinstance(message, str) or message.strip().lower() in REASON_PHRASES:
            return f"{status} body does not name the problem: {body[:300]}"
    return None
