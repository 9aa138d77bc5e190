"""Run comparison on work dirs written by real (tiny) mmengine runs."""
import json
import os.path as osp
import pickle
import struct
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmcat.analysis.compare import compare_runs, parse_run


class ToyRegressor(BaseModel):
    """y = a x + b fitted by SGD; two losses, like a detector's."""

    def __init__(self, init: float) -> None:
        super().__init__()
        self.lin = nn.Linear(1, 1)
        nn.init.constant_(self.lin.weight, init)
        nn.init.zeros_(self.lin.bias)

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.lin(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss_reg=((out - targets)**2).mean(),
                        loss_aux=0.1 * (out - targets).abs().mean())
        return list(zip(out.tolist(), targets.tolist()))


class ToyMetric(BaseMetric):
    """Accuracy-like metrics under a prefix, as mmdet's ``coco/...``."""

    default_prefix = 'toy'

    def process(self, data_batch, data_samples) -> None:
        self.results += [abs(o - t) for o, t in data_samples]

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        mae = sum(results) / len(results)
        return dict(mae=mae, acc=sum(r < 0.5 for r in results) /
                    len(results))


def _dataset() -> list:
    return [dict(inputs=torch.tensor([x / 4]), targets=torch.tensor(x / 2))
            for x in range(8)]


def run_toy(work_dir: str, name: str, init: float, lr: float,
            max_iters: int = 6, val_interval: int = 3) -> Dict[str, float]:
    """Train (validating every ``val_interval``), then test, with a real
    mmengine Runner. Returns the test metrics."""
    loader = dict(dataset=_dataset(), batch_size=4, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='default_collate'))
    runner = Runner(
        model=ToyRegressor(init), work_dir=work_dir, experiment_name=name,
        train_dataloader=loader, val_dataloader=loader,
        test_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=max_iters,
                       val_interval=val_interval),
        val_cfg=dict(), test_cfg=dict(),
        val_evaluator=dict(type=ToyMetric),
        test_evaluator=dict(type=ToyMetric),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=10**6,
                            save_last=False)),
        log_processor=dict(window_size=1, by_epoch=False),
        visualizer=dict(type='Visualizer', name=f'vis_{name}',
                        vis_backends=[dict(type='LocalVisBackend')]),
        default_scope='mmengine', randomness=dict(seed=0))
    runner.train()
    return runner.test()


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('runs')
    dirs = [str(root / 'cat'), str(root / 'resnet')]
    tests = [run_toy(dirs[0], 'cmp_cat', init=0.2, lr=0.05),
             run_toy(dirs[1], 'cmp_resnet', init=1.5, lr=0.01)]
    return dirs, tests


def _png_size(path: str) -> Tuple[int, int]:
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    assert head[12:16] == b'IHDR'
    return struct.unpack('>II', head[16:24])


def test_parse_run_reads_mmengine_logs(two_runs):
    dirs, tests = two_runs
    run = parse_run(dirs[0])
    assert set(run.curves) >= {'loss', 'loss_reg', 'loss_aux', 'lr'}
    assert run.curves['loss']['iter'] == [1, 2, 3, 4, 5, 6]
    # validation after iterations 3 and 6, then the test run
    assert [e['source'] for e in run.evaluations] == ['val', 'val', 'test']
    assert [e['iter'] for e in run.evaluations] == [3, 6, 6]
    assert run.metrics == pytest.approx(tests[0])
    assert set(run.metrics) == {'toy/mae', 'toy/acc'}
    # the scalars file alone: the last validation
    scalars = [f for f in run.files if f.endswith('scalars.json')][0]
    alone = parse_run(scalars, 'alone')
    assert alone.metrics == pytest.approx(run.evaluations[1]['metrics'])


def test_compare_runs_table_and_files(two_runs, tmp_path):
    dirs, tests = two_runs
    out = tmp_path / 'cmp'
    result = compare_runs(dirs, ['CAT', 'ResNet'], str(out))
    rows = {r['metric']: r for r in result['rows']}
    assert set(rows) == {'toy/mae', 'toy/acc'}
    mae_a, mae_b = tests[0]['toy/mae'], tests[1]['toy/mae']
    assert mae_a != mae_b
    row = rows['toy/mae']
    assert row['values'] == pytest.approx(dict(CAT=mae_a, ResNet=mae_b))
    assert row['diff']['ResNet'] == pytest.approx(mae_b - mae_a)
    assert row['rel_diff_pct']['ResNet'] == pytest.approx(
        100 * (mae_b - mae_a) / abs(mae_a))
    assert 'CAT' not in row['diff']
    assert f'{mae_a:.4f}' in result['text']
    assert f'{mae_b - mae_a:+.4f}' in result['text']
    assert '| toy/mae |' in result['markdown']

    files = result['files']
    width, height = _png_size(files['png'])
    assert width > 100 and height > 100
    with open(files['json']) as f:
        saved = json.load(f)
    assert saved['reference'] == 'CAT'
    assert saved['rows'] == json.loads(json.dumps(result['rows']))
    with open(files['md']) as f:
        assert '| metric | CAT | ResNet |' in f.read()


def test_compare_errors(two_runs, tmp_path):
    dirs, _ = two_runs
    with pytest.raises(ValueError):
        compare_runs(dirs, ['only-one'])
    with pytest.raises(FileNotFoundError):
        parse_run(str(tmp_path / 'missing'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError):
        parse_run(str(empty))
    pkl = tmp_path / 'results.pkl'
    pkl.write_bytes(pickle.dumps([{}]))
    with pytest.raises(ValueError, match='work dir'):
        parse_run(str(pkl))


def test_compare_without_out_dir_writes_nothing(two_runs):
    dirs, _ = two_runs
    result = compare_runs(dirs)
    assert result['files'] == {}
    assert result['names'] == [osp.basename(d) for d in dirs]
