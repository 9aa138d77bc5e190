"""Byte-reproducible file output shared by the COCO and ADE20K writers."""
from __future__ import annotations

import json
import os
import os.path as osp
import re
from typing import Any

import numpy as np
from PIL import Image

__all__ = ['save_jpeg', 'save_png', 'dump_json', 'clear']

# Fixed encoder parameters: the same array always gives the same bytes.
_JPEG_KWARGS = dict(format='JPEG', quality=92, subsampling=0, optimize=False)
_PNG_KWARGS = dict(format='PNG', optimize=False, compress_level=6)


def save_jpeg(image: np.ndarray, path: str) -> None:
    """Write an (H, W, 3) uint8 RGB image as JPEG."""
    Image.fromarray(image).save(path, **_JPEG_KWARGS)


def save_png(labels: np.ndarray, path: str) -> None:
    """Write an (H, W) uint8 label map as an 8-bit PNG."""
    Image.fromarray(labels).save(path, **_PNG_KWARGS)


def dump_json(obj: Any, path: str) -> None:
    """Write ``obj`` as compact JSON with sorted keys and a final newline."""
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, sort_keys=True, separators=(',', ':'))
        f.write('\n')


def clear(folder: str, pattern: str) -> None:
    """Remove earlier generated files (those matching ``pattern``) only."""
    if osp.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if re.fullmatch(pattern, name):
                os.remove(osp.join(folder, name))
