"""``tools/generate_demo_data.py``: its command line writes both datasets."""
from __future__ import annotations

import os

from pycocotools.coco import COCO
from tool_loader import load_tool


def test_cli(tmp_path, capsys) -> None:
    tool = load_tool('tools/generate_demo_data.py')
    tool.main(['--out', str(tmp_path), '--num-train', '2', '--num-val', '1',
               '--image-size', '48', '64', '--num-classes', '4',
               '--noise', '0', '1', '--max-blur', '0'])
    out = capsys.readouterr().out
    assert 'COCO' in out and 'ADE20K' in out
    coco = COCO(str(tmp_path / 'coco_demo' / 'annotations' /
                    'instances_train2017.json'))
    assert len(coco.getImgIds()) == 2 and len(coco.getCatIds()) == 4
    assert coco.loadImgs(1)[0]['height'] == 48
    assert coco.loadImgs(1)[0]['width'] == 64
    assert len(os.listdir(tmp_path / 'ade_demo' / 'ADEChallengeData2016' /
                          'images' / 'validation')) == 1
