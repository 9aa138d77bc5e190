"""Class names and palette of the synthetic demo datasets.

Kept apart from the generator (:mod:`mmcat.datasets.synthetic`) so that the
registered datasets read them without loading it.
"""
from __future__ import annotations

__all__ = [
    'SHAPE_CLASSES', 'STUFF_CLASSES', 'DEFAULT_NUM_CLASSES', 'shape_classes',
    'ade_classes', 'class_palette'
]

#: All shape ("thing") classes; a dataset uses the first ``num_classes``.
SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star', 'ring', 'cross',
                 'ellipse', 'hexagon')
#: ADE's background ("stuff") classes, labels 1 and 2 in the PNGs.
STUFF_CLASSES = ('wall', 'floor')
DEFAULT_NUM_CLASSES = 6


def shape_classes(num_classes: int = DEFAULT_NUM_CLASSES) -> tuple[str, ...]:
    """The first ``num_classes`` shape class names (COCO categories)."""
    if not 1 <= num_classes <= len(SHAPE_CLASSES):
        raise ValueError(f'num_classes must be in 1..{len(SHAPE_CLASSES)}, '
                         f'got {num_classes}')
    return SHAPE_CLASSES[:num_classes]


def ade_classes(num_classes: int = DEFAULT_NUM_CLASSES) -> tuple[str, ...]:
    """ADE class names: the stuff classes, then the shape classes.

    Label ``i + 1`` in the PNGs is ``ade_classes()[i]``; with
    ``reduce_zero_label=True`` it becomes label ``i``.
    """
    return STUFF_CLASSES + shape_classes(num_classes)


def class_palette(num: int) -> list[tuple[int, int, int]]:
    """A fixed, well spread RGB palette of ``num`` colours."""
    palette = []
    for i in range(num):
        hue = (i * 0.618033988749895) % 1.0
        rgb = _hsv_to_rgb(hue, 0.75, 0.95)
        palette.append(tuple(int(round(c * 255)) for c in rgb))
    return palette


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    """HSV in [0, 1] to RGB in [0, 1]."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
            (v, p, q)][i]
