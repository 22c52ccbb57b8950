"""Mergeable statistics and normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from magicvl.scoring.normalize import Moments, normalize, transform


def test_merged_moments_equal_moments_of_the_whole():
    rng = np.random.default_rng(1)
    parts = [rng.normal(3, 2, size=n) for n in (1, 7, 100, 0, 33)]
    merged = Moments()
    for p in parts:
        merged = merged.merge(Moments.of(p))
    whole = Moments.of(np.concatenate(parts))
    assert merged.n == whole.n == 141
    assert merged.mean == pytest.approx(whole.mean)
    assert merged.std == pytest.approx(whole.std)
    assert (merged.min, merged.max) == (whole.min, whole.max)


def test_moments_ignore_nan_and_round_trip():
    m = Moments.of(np.array([1.0, np.nan, 3.0]))
    assert (m.n, m.mean, m.min, m.max) == (2, 2.0, 1.0, 3.0)
    assert Moments.from_dict(m.to_dict()) == m


def test_minmax_and_zscore():
    v = np.array([10.0, 20.0, 30.0, np.nan])
    m = Moments.of(v)
    np.testing.assert_allclose(normalize(v, m, "minmax")[:3], [0.0, 0.5, 1.0])
    z = normalize(v, m, "zscore")
    assert z[1] == pytest.approx(0.5) and z[0] < 0.5 < z[2] and np.isnan(z[3])
    assert z[0] == pytest.approx(1 - z[2])


def test_constant_metric_normalises_to_half():
    v = np.array([4.0, 4.0])
    assert normalize(v, Moments.of(v), "minmax").tolist() == [0.5, 0.5]
    assert normalize(v, Moments.of(v), "zscore").tolist() == [0.5, 0.5]


def test_log1p_transform():
    np.testing.assert_allclose(transform(np.array([0.0, np.e - 1]), True), [0.0, 1.0])
    assert transform(np.array([5.0]), False)[0] == 5.0
