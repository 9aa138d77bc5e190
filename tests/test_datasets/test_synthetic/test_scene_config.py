"""SceneConfig and writer arguments are validated."""
from __future__ import annotations

import pytest

from mmcat.datasets import synthetic
from mmcat.datasets.synthetic import SceneConfig, write_coco


def test_bad_config() -> None:
    with pytest.raises(ValueError):
        SceneConfig(num_classes=len(synthetic.SHAPE_CLASSES) + 1)
    with pytest.raises(ValueError):
        SceneConfig(min_objects=3, max_objects=2)
    with pytest.raises(ValueError):
        SceneConfig(height=16)
    with pytest.raises(ValueError):
        write_coco('unused', mask_format='polygon')
