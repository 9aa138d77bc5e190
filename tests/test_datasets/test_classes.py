"""The demo class names and palette, read without loading the generator."""
from __future__ import annotations

import os.path as osp
import subprocess
import sys

import pytest

from mmcat.datasets.classes import (DEFAULT_NUM_CLASSES, SHAPE_CLASSES,
                                    STUFF_CLASSES, ade_classes, class_palette,
                                    shape_classes)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_class_names() -> None:
    assert shape_classes() == SHAPE_CLASSES[:DEFAULT_NUM_CLASSES]
    assert shape_classes(2) == ('circle', 'square')
    assert ade_classes(3) == STUFF_CLASSES + ('circle', 'square', 'triangle')
    with pytest.raises(ValueError, match='num_classes must be in 1..8'):
        shape_classes(len(SHAPE_CLASSES) + 1)


def test_palette_is_fixed_and_distinct() -> None:
    palette = class_palette(len(ade_classes()))
    assert palette == class_palette(len(ade_classes()))
    assert len(set(palette)) == len(palette)
    assert all(0 <= c <= 255 for rgb in palette for c in rgb)


def test_registering_the_datasets_does_not_load_the_generator() -> None:
    code = ('import sys, mmcat.datasets; '
            'print("mmcat.datasets.synthetic" in sys.modules)')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == 'False'
