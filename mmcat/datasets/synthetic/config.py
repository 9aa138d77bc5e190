"""What a synthetic scene may contain."""
from __future__ import annotations

from dataclasses import dataclass

from ..classes import DEFAULT_NUM_CLASSES, shape_classes

__all__ = ['SceneConfig']


@dataclass(frozen=True)
class SceneConfig:
    """What a scene may contain.

    Args:
        height, width: image size in pixels.
        num_classes: how many of :data:`SHAPE_CLASSES` are used.
        min_objects, max_objects: instances tried per image (uniform); a
            placement that would hide an earlier instance too much is retried
            and finally dropped, so an image has at least one instance.
        min_scale, max_scale: an object's diameter as a fraction of the
            shorter image side (log-uniform).
        min_visible: the least visible fraction of an instance's in-image
            area after occlusion.
        min_pixels: the least visible pixel count of an instance.
        max_distractors: unlabelled blobs drawn behind the instances.
        noise: range of the additive Gaussian noise's sigma (0..255 scale).
        max_blur: largest Gaussian blur radius in pixels.
    """
    height: int = 128
    width: int = 128
    num_classes: int = DEFAULT_NUM_CLASSES
    min_objects: int = 1
    max_objects: int = 5
    min_scale: float = 0.12
    max_scale: float = 0.45
    min_visible: float = 0.4
    min_pixels: int = 20
    max_distractors: int = 1
    noise: tuple[float, float] = (2.0, 8.0)
    max_blur: float = 0.8

    def __post_init__(self) -> None:
        shape_classes(self.num_classes)  # validates
        if self.height < 32 or self.width < 32:
            raise ValueError('images must be at least 32x32')
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError('need 1 <= min_objects <= max_objects')
        if not 0 < self.min_scale <= self.max_scale <= 1:
            raise ValueError('need 0 < min_scale <= max_scale <= 1')
