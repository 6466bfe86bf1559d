"""The dipole projection: Dower's matrix against a real recording, and the lead identities."""

from __future__ import annotations

import numpy as np
import pytest

from qheart.data.leads import LEADS
from qheart.data.synth import findings as F
from qheart.data.synth.ecg import simulate_plan
from qheart.data.synth.vcg import LEAD_MATRIX, DOWER_8x3, frontal_axis_deg, territory_direction


def test_dower_projection_of_real_frank_leads_resembles_the_real_12_leads(real_samples):
    """PTB record s0010_re carries Frank X/Y/Z beside its 12 leads: projecting X/Y/Z with Dower's
    coefficients must give each lead's shape (positive correlation, strong for I, II, V4)."""
    wfdb = pytest.importorskip("wfdb")
    from scipy.signal import butter, sosfiltfilt

    record = wfdb.rdrecord(str(real_samples / "ptb-diagnostic" / "s0010_re"))
    names = [n.lower() for n in record.sig_name]
    x = sosfiltfilt(butter(2, [0.5, 40], btype="band", fs=record.fs, output="sos"),
                    record.p_signal, axis=0)  # fmt: skip
    frank = x[:, [names.index("vx"), names.index("vy"), names.index("vz")]]
    corr = {}
    for lead, row in zip(("i", "ii", "v1", "v2", "v3", "v4", "v5", "v6"), DOWER_8x3, strict=True):
        corr[lead] = np.corrcoef(x[:, names.index(lead)], frank @ row)[0, 1]
    assert all(c > 0.2 for c in corr.values()), corr
    assert min(corr["i"], corr["ii"], corr["v4"]) > 0.85, corr


def test_limb_leads_obey_einthoven_and_goldberger():
    sim = simulate_plan(F.Plan(), np.random.default_rng(3))
    i, ii, iii, avr, avl, avf = sim.clean[:6].astype(float)
    assert np.allclose(iii, ii - i, atol=1e-5)
    assert np.allclose(avr + avl + avf, 0.0, atol=1e-5)
    assert np.allclose(avf, ii - i / 2, atol=1e-5)
    assert LEAD_MATRIX.shape == (len(LEADS), 3)


def test_territories_face_their_leads():
    for territory, leads in F.MI_TERRITORY_LEADS.items():
        projection = LEAD_MATRIX @ territory_direction(leads)
        ranked = [LEADS[i] for i in np.argsort(-projection)[: len(leads)]]
        assert len(set(ranked) & set(leads)) * 2 >= len(leads), (territory, ranked)


def test_frontal_axis_is_hexaxial():
    for angle in (-120, -45, 0, 60, 90, 150):
        a = np.deg2rad(angle)
        assert frontal_axis_deg(np.cos(a), np.sqrt(3) / 2 * np.sin(a)) == pytest.approx(angle)
