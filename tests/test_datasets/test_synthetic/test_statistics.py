"""Statistics of generated data: the scenes have the promised variety."""
from __future__ import annotations

from mmcat.datasets import synthetic
from mmcat.datasets.synthetic import (SceneConfig, ade_classes, shape_classes,
                                      write_ade, write_coco)


def test_statistics(tmp_path) -> None:
    cfg = SceneConfig(height=96, width=96)
    summary = write_coco(str(tmp_path), seed=0, num_train=40, num_val=1,
                         cfg=cfg)
    stats = synthetic.coco_statistics(summary['train']['ann_file'])
    print(stats)
    assert stats['images'] == 40
    assert stats['instances'] >= 80
    assert sum(n > 0 for n in stats['per_class'].values()) == len(
        shape_classes())
    assert stats['box_side_min'] <= 0.2 * 96
    assert stats['box_side_max'] >= 0.4 * 96
    assert stats['box_area_max'] >= 8 * stats['box_area_min']
    assert stats['overlapping_pairs'] > 0
    assert summary['train']['occluded'] > 0
    assert stats['polygon_masks'] > 0 and stats['rle_masks'] > 0

    ade = write_ade(str(tmp_path), seed=0, num_train=10, num_val=1, cfg=cfg)
    pixels = synthetic.ade_statistics(ade['train']['ann_dir'],
                                      len(ade_classes()))
    assert pixels['images_with_label'][1] == pixels['images_with_label'][
        2] == 10
    assert sum(f > 0 for f in pixels['pixel_fraction'][3:]) >= 4
