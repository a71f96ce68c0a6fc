"""The series embedder: shape matching for prices, level-aware vectors for sensors."""
import numpy as np
import pytest

from agentflow.models.series import SeriesEmbeddingHandler


def test_shape_matching_ignores_level_and_amplitude():
  h = SeriesEmbeddingHandler(points=16)
  up = np.linspace(100, 110, 40)
  v = h.embed(None, [up, up * 3 + 50, up[::-1]])
  assert v.shape == (3, 16) and h.dimension == 16
  assert v[0] @ v[1] > 0.999 and v[0] @ v[2] < -0.9


def test_level_mode_sees_spikes_and_shifts_but_not_noise():
  rng = np.random.default_rng(0)
  h = SeriesEmbeddingHandler(points=32, channels=2, scale="level", reference=(20.0, 50.0))
  normal = [np.stack([20 + rng.normal(0, .2, 60), 50 + rng.normal(0, .5, 60)]) for _ in range(5)]
  spike = normal[0].copy()
  spike[0, 30] = 60.0
  shifted = normal[1] * np.array([[1.5], [1.0]])
  v = h.embed(None, normal + [spike, shifted])
  assert h.dimension == 65 and v.shape == (7, 65)
  normal_distance = 1 - (v[:5] @ v[:5].T).min()
  assert normal_distance < 1e-3
  for anomaly in (v[5], v[6]):
    assert 1 - (anomaly @ v[:5].T).max() > 20 * normal_distance


def test_bad_windows_raise():
  h = SeriesEmbeddingHandler(channels=2)
  with pytest.raises(ValueError, match="2 finite channel"):
    h.embed(None, [[1.0, 2.0, 3.0]])
  with pytest.raises(ValueError):
    SeriesEmbeddingHandler(scale="weird")
