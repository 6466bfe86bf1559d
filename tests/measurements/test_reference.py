"""The one table: synthetic labels and measurements read the same ranges and axis classes."""

from __future__ import annotations

import numpy as np

from qheart.data.synth import findings as F
from qheart.data.synth import ranges
from qheart.measurements import reference


def test_synth_ranges_are_the_reference_table():
    assert ranges.NORMAL_RANGES is reference.NORMAL_RANGES
    assert ranges.FEATURES == reference.FEATURES == tuple(reference.NORMAL_RANGES)
    assert ranges.qtc_bazett is reference.qtc_bazett


def test_axis_classes_agree_with_the_synthetic_labels():
    short = {F.AXIS_NORMAL: "normal", F.AXIS_LEFT: "left", F.AXIS_RIGHT: "right",
             F.AXIS_EXTREME: "extreme"}  # fmt: skip
    for angle in np.arange(-180.0, 180.5, 0.5):
        assert reference.axis_class(angle) == short[F.axis_label(angle)], angle


def test_range_labels_and_corrections():
    qrs = reference.NORMAL_RANGES["qrs duration"]
    assert qrs.label(69.9) == reference.BELOW
    assert qrs.label(110.0) == reference.WITHIN
    assert qrs.label(110.1) == reference.ABOVE
    assert reference.qtc_bazett(400.0, 1000.0) == 400.0
    assert abs(reference.qtc_fridericia(400.0, 640.0) - 400.0 / 0.64 ** (1 / 3)) < 1e-9
    assert reference.qtc_fridericia(400.0, 640.0) < reference.qtc_bazett(400.0, 640.0)
