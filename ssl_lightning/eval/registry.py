"""The evaluation suites by name: the embedded `hares-mini` and the real `hares`."""

from __future__ import annotations

from ssl_lightning.eval.hares import HARES_SUITE
from ssl_lightning.eval.suites import HARES_MINI_SUITE, Suite

SUITES: dict[str, Suite] = {suite.name: suite for suite in (HARES_MINI_SUITE, HARES_SUITE)}


def get_suite(name: str) -> Suite:
    """The suite called `name`, with the list of known suites in the error."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; available suites: {', '.join(SUITES)}")
    return SUITES[name]
