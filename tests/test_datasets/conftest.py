"""Tiny generated datasets shared by the dataset tests."""
from __future__ import annotations

from typing import NamedTuple

import pytest

from mmcat.datasets.synthetic import SceneConfig, write_ade, write_coco


class Demo(NamedTuple):
    """Where the tiny datasets are and how they were made."""
    root: str
    seed: int
    cfg: SceneConfig


@pytest.fixture(scope='session')
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A folder with coco_demo/ (8 train, 6 val) and ade_demo/ (4, 6)."""
    out = str(tmp_path_factory.mktemp('demo'))
    # Not square, to catch height/width mix-ups.
    cfg = SceneConfig(height=72, width=96)
    write_coco(out, seed=3, num_train=8, num_val=6, cfg=cfg)
    write_ade(out, seed=3, num_train=4, num_val=6, cfg=cfg)
    return Demo(out, 3, cfg)
