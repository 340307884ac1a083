"""The evaluation suites by name: the embedded `hares-mini` and `dabs-mini`, the real `hares` and `dabs`, and
`hear` (the scene tasks of a folder of hear-preprocess task folders, found under the data root)."""

from __future__ import annotations

from ssl_lightning.eval.dabs import DABS_MINI_SUITE, DABS_SUITE
from ssl_lightning.eval.hares import HARES_SUITE
from ssl_lightning.eval.hear_suite import hear_suite
from ssl_lightning.eval.suites import HARES_MINI_SUITE, Suite

SUITES: dict[str, Suite] = {
    suite.name: suite for suite in (HARES_MINI_SUITE, HARES_SUITE, DABS_MINI_SUITE, DABS_SUITE)
}
NAMES = (*SUITES, "hear")


def get_suite(name: str, data_root: str | None = None) -> Suite:
    """The suite called `name` (`hear` reads its tasks from `data_root`); the known ones in the error."""
    if name == "hear":
        if data_root is None:
            raise ValueError(
                "the hear suite reads its tasks from --data_root: pass the hear-preprocess tasks/ folder"
            )
        return hear_suite(data_root)
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; available suites: {', '.join(NAMES)}")
    return SUITES[name]
