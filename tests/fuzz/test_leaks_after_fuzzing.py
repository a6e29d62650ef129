"""After the fuzz suite (this module runs after the test_fuzz_* ones): nothing the
stack printed, answered or counted carries a secret, a key or a token it was sent."""

from __future__ import annotations

from fuzz_recorder import RECORDER
from fuzz_target import FuzzTarget
from secret_scan import find_leaks, scrape_metrics, stack_secrets


def test_no_secret_in_logs_error_bodies_or_metrics(fuzz_target: FuzzTarget) -> None:
    stack = fuzz_target.stack
    places = {
        "process logs": stack.logs_text(),
        "error bodies": "\n".join(RECORDER.bodies),
        **scrape_metrics(stack),
    }
    assert places["process logs"], "the stack printed nothing"
    assert find_leaks(stack_secrets(stack, RECORDER.tokens), places) == []
