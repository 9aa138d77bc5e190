"""The model index (``model-index.yml``, ``configs/metafile.yml``): every
config it lists exists and builds, its parameter counts are the built
models', and its results are the README's results table, figure for figure
(the README is the source; the index is checked against it)."""
import os.path as osp
import re
from typing import Dict, Tuple

import pytest
import yaml
from config_testkit import REPO_ROOT, load, no_weight_init, register_scope
from mmengine.registry import MODELS, init_default_scope

import mmcat  # noqa: F401  (registers CAT)

#: ``12.3``, ``41.6 / 38.6`` (box / mask), ``40.6 (42.1)`` (single-scale
#: (multi-scale + flip)) or ``38.2 / 34.7 (1x)`` (a figure of the config
#: with that schedule).
CELL_RE = re.compile(r'^(?P<a>[\d.]+)(?: / (?P<b>[\d.]+))?'
                     r'(?: \((?P<note>[^)]*)\))?$')
SCHEDULES = ('ms-1x', '1x', '80k', '160k')


def _load_yaml(path: str) -> dict:
    with open(osp.join(REPO_ROOT, path), encoding='utf-8') as f:
        return yaml.safe_load(f)


def _with_schedule(config: str, schedule: str) -> str:
    for old in SCHEDULES:
        if f'_{old}_' in config:
            return config.replace(f'_{old}_', f'_{schedule}_', 1)
    raise ValueError(f'{config}: no schedule in the name')


def _metrics(config: str, cell: str) -> Tuple[str, Dict[str, float]]:
    """The config a README cell's figures belong to, and the figures under
    the model index's metric names."""
    match = CELL_RE.match(cell.strip())
    assert match, f'README results cell {cell!r} ({config}) not understood'
    a, b, note = match.group('a', 'b', 'note')
    metrics: Dict[str, float] = {}
    if note and not re.fullmatch(r'[\d.]+', note):
        config = _with_schedule(config, note)
        note = None
    if config.startswith('sem-fpn'):
        metrics['mIoU'] = float(a)
        if note:
            metrics['mIoU(ms+flip)'] = float(note)
    else:
        metrics['box AP'] = float(a)
        if b:
            metrics['mask AP'] = float(b)
    return config, metrics


def readme_results() -> Dict[str, dict]:
    """Config name -> ``dict(metrics=..., params=...)`` from README.md's
    results table (CAT-S, CAT-B and the two ResNet columns)."""
    with open(osp.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    section = text.split('\n## Results\n', 1)[1].split('\n## ', 1)[0]
    rows = [line for line in section.splitlines()
            if line.startswith('| ') and '`' in line]
    assert len(rows) >= 8, section
    results: Dict[str, dict] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        cat_s = cells[1].strip('`')
        params = [p.strip() for p in cells[6].split('/')]
        columns = [('cat_s', cells[2], params[0]),
                   ('cat_b', cells[3], params[1]), ('r50', cells[4], None),
                   ('r101', cells[5], None)]
        for backbone, cell, param in columns:
            config, metrics = _metrics(
                cat_s.replace('cat_s', backbone, 1), cell)
            entry = results.setdefault(config, dict(metrics={}))
            for key, value in metrics.items():
                # a baseline quoted in two rows must be quoted alike
                assert entry['metrics'].get(key, value) == value, config
                entry['metrics'][key] = value
            if param:
                entry['params'] = param
    return results


def index_models() -> Dict[str, dict]:
    """Config name -> its model entry, through ``model-index.yml``."""
    index = _load_yaml('model-index.yml')
    models: Dict[str, dict] = {}
    for path in index['Import']:
        for model in _load_yaml(path)['Models']:
            config = model['Config']
            assert config.startswith('configs/'), config
            name = config[len('configs/'):]
            assert name not in models, f'{name} listed twice'
            models[name] = model
    return models


MODELS_LISTED = index_models()


def test_index_results_are_the_readmes() -> None:
    readme = readme_results()
    index = {
        name: {k: float(v) for r in model.get('Results', [])
               for k, v in r['Metrics'].items()}
        for name, model in MODELS_LISTED.items()
    }
    assert {n for n, m in index.items() if m} == set(readme), (
        'configs with results differ between README.md and the index')
    for name, entry in readme.items():
        assert index[name] == entry['metrics'], name
        if 'params' in entry:
            assert MODELS_LISTED[name]['Metadata']['Parameters'] == \
                entry['params'], name


def test_index_entries_are_well_formed() -> None:
    meta = _load_yaml('configs/metafile.yml')
    collections = {c['Name'] for c in meta['Collections']}
    tasks = {'Object Detection': 'COCO', 'Instance Segmentation': 'COCO',
             'Semantic Segmentation': 'ADE20K'}
    for name, model in MODELS_LISTED.items():
        assert model['Name'] == osp.splitext(name)[0]
        assert model['In Collection'] in collections, name
        for result in model.get('Results', []):
            assert tasks[result['Task']] == result['Dataset'], name
        if 'Weights' in model:
            assert model['Weights'].startswith('https://download.openmmlab'), \
                name


@pytest.mark.parametrize('name', sorted(MODELS_LISTED))
def test_listed_config_builds(name: str) -> None:
    assert osp.isfile(osp.join(REPO_ROOT, 'configs', name)), name
    cfg = load(name)
    register_scope(cfg.default_scope)
    init_default_scope(cfg.default_scope)
    with no_weight_init():
        model = MODELS.build(cfg.model)
    params = sum(p.numel() for p in model.parameters())
    listed = MODELS_LISTED[name]['Metadata'].get('Parameters')
    if listed is not None:
        assert listed == f'{params / 1e6:.1f}M', name
