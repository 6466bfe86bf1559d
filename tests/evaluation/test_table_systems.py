"""`qheart evaluate --table`'s systems: each is a valid config that differs from Q-HEART's."""

from __future__ import annotations

import pytest

from qheart.cli.evaluate import SYSTEMS
from qheart.training.instruct_config import TrainConfig


@pytest.mark.parametrize("system", sorted(set(SYSTEMS) - {"qheart"}))
def test_every_table_system_is_a_valid_change_of_the_preset(system: str) -> None:
    base = TrainConfig.from_name("cpu-small")
    changed = base.with_overrides(SYSTEMS[system])
    assert changed.model != base.model  # a typo in a field name would fail above or here
