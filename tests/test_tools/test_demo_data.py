"""``tools/demo.py`` makes its data once and again only when what it asks
for (seed, image counts, scene parameters) has changed."""
import json
import os.path as osp

import pytest

from tool_loader import load_tool


@pytest.mark.parametrize('kind', ['coco', 'ade'])
def test_demo_data_is_remade_only_when_its_settings_change(
        kind, tmp_path, monkeypatch, capsys) -> None:
    demo = load_tool('tools/demo.py')
    monkeypatch.setattr(demo, 'DEMO_NUM_TRAIN', 2)
    monkeypatch.setattr(demo, 'DEMO_NUM_VAL', 1)
    out = str(tmp_path)
    demo.ensure_data(kind, out, seed=0)
    assert 'generating' in capsys.readouterr().out
    demo.ensure_data(kind, out, seed=0)
    assert 'using the' in capsys.readouterr().out

    monkeypatch.setattr(demo, 'DEMO_SCENES',
                        dict(demo.DEMO_SCENES, max_objects=2))
    demo.ensure_data(kind, out, seed=0)
    assert 'making it again' in capsys.readouterr().out
    demo.ensure_data(kind, out, seed=1)
    assert 'making it again' in capsys.readouterr().out
    if kind == 'coco':
        with open(osp.join(out, 'coco_demo', 'annotations',
                           'instances_train2017.json')) as f:
            info = json.load(f)['info']
        assert info['seed'] == 1 and info['config']['max_objects'] == 2
