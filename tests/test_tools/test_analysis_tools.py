"""The analysis CLIs (get_flops, benchmark_fps, compare_results) run as
subprocesses on real configs and real mmengine logs."""
import json
import os.path as osp
import statistics
import sys

import pytest
import torch

from mmcat.analysis.flops import cpsa_macs, ipsa_macs, padded
from tool_loader import load_tool
from tools_testkit import run_tool, tail

TOOLS = 'tools/analysis_tools'
FCOS = 'configs/fcos_cat_s_1x_coco.py'
SEG_CONFIG = """\
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmcat'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='CAT', arch='small'),
    neck=dict(in_channels=[96, 192, 384, 768]))
"""


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def test_get_flops_fcos(tmp_path):
    log, out = str(tmp_path / 'log.txt'), str(tmp_path / 'flops.json')
    rc = run_tool(['python', f'{TOOLS}/get_flops.py', FCOS, '--shape', '100',
                   '130', '--out-json', out], log)
    text = _read(log)
    assert rc == 0, tail(log)
    assert 'multiply-adds' in text
    for part in ('whole model', 'backbone', 'neck', 'bbox_head'):
        assert part in text
    assert 'stages.0.blocks.0.cpsa.attn' in text
    assert 'MSA Eq.1 G' in text

    data = json.loads(_read(out))
    assert data['shape'] == [100, 130]
    assert data['params'] > 40e6
    assert data['parts']['backbone']['macs'] < data['macs']
    layers = data['attention_layers']
    assert len(layers) == 18  # CAT-S: 6 CABs x (IPSA, CPSA, IPSA)
    first = layers[0]  # stage 0 sees ceil(100/4) x ceil(130/4) = 25 x 33
    assert (first['h'], first['w'], first['c']) == (25, 33, 96)
    assert first['padded'] == [28, 35]
    assert first['paper'] == ipsa_macs(28, 35, 96)
    for layer in layers:
        hp, wp = padded(layer['h'], 7), padded(layer['w'], 7)
        fn = ipsa_macs if layer['type'] == 'IPSA' else cpsa_macs
        assert layer['counted'] == layer['paper'] == fn(hp, wp, layer['c'])


def test_benchmark_fps_fcos(tmp_path):
    """2 images per call, 3 timed calls: the FPS is the batch over the median
    call time, and the printed and written figures agree."""
    log, out = str(tmp_path / 'log.txt'), str(tmp_path / 'fps.json')
    rc = run_tool(['python', f'{TOOLS}/benchmark_fps.py', FCOS, '--shape',
                   '64', '64', '--batch', '2', '--num-iters', '3',
                   '--warmup', '1', '--out-json', out], log)
    text = _read(log)
    assert rc == 0, tail(log)
    data = json.loads(_read(out))
    times = data['times_s']
    assert data['iters'] == len(times) == 3 and data['batch'] == 2
    assert all(t > 0 for t in times)
    median = statistics.median(times)
    assert data['fps'] == pytest.approx(2 / median)
    assert data['median_ms'] == pytest.approx(1e3 * median)
    assert (data['min_ms'], data['max_ms']) == pytest.approx(
        (1e3 * min(times), 1e3 * max(times)))
    assert f'FPS: {data["fps"]:.3g}' in text
    assert 'input: 2x3x64x64, mode tensor' in text
    assert 'warm-up 1 calls, timed 3 calls' in text
    assert data['mode'] == 'tensor' and data['shape'] == [64, 64]


def test_benchmark_fps_segmentor_test_step(tmp_path):
    """Predict mode on a segmentor; --max-seconds 0 stops after one of the
    50 timed calls."""
    config = tmp_path / 'fpn_cat_s_ade20k.py'
    config.write_text(SEG_CONFIG)
    log, out = str(tmp_path / 'log.txt'), str(tmp_path / 'fps.json')
    rc = run_tool(['python', f'{TOOLS}/benchmark_fps.py', str(config),
                   '--shape', '64', '64', '--num-iters', '50', '--warmup',
                   '0', '--mode', 'predict', '--max-seconds', '0',
                   '--out-json', out], log)
    assert rc == 0, tail(log)
    text = _read(log)
    assert 'EncoderDecoder' in text and 'mode predict' in text
    data = json.loads(_read(out))
    assert data['iters'] == len(data['times_s']) == 1
    assert data['mode'] == 'predict'
    assert f'FPS: {data["fps"]:.3g}' in text


@pytest.mark.parametrize('mode', ['tensor', 'predict'])
def test_benchmark_fps_times_the_work_it_names(mode):
    """One timed call of each mode on FCOS, batch 2 at 64x96: the network's
    raw maps (tensor) or post-processed detections at the image size
    (predict)."""
    from mmcat.analysis import model_from_config
    built = model_from_config(FCOS, None, (64, 96))
    call = load_tool(f'{TOOLS}/benchmark_fps.py').build_call(
        built.model, mode, built.scope, built.input_size, 2,
        torch.device('cpu'))
    with torch.inference_mode():
        out = call()
    if mode == 'tensor':
        cls_scores = out[0]
        assert [tuple(c.shape) for c in cls_scores[:2]] == [
            (2, 80, 8, 12), (2, 80, 4, 6)]
    else:
        assert len(out) == 2
        for sample in out:
            assert sample.img_shape == (64, 96)
            assert sample.pred_instances.bboxes.shape[1] == 4


def _toy_runs():
    """``run_toy`` of tests/test_analysis/test_compare.py (a real Runner)."""
    return load_tool('tests/test_analysis/test_compare.py').run_toy


def test_compare_results_cli(tmp_path):
    run_toy = _toy_runs()
    dirs = [str(tmp_path / 'cat'), str(tmp_path / 'resnet')]
    metrics = [run_toy(dirs[0], 'cli_cat', init=0.2, lr=0.05),
               run_toy(dirs[1], 'cli_resnet', init=1.5, lr=0.01)]
    out_dir = str(tmp_path / 'cmp')
    log = str(tmp_path / 'log.txt')
    rc = run_tool(['python', f'{TOOLS}/compare_results.py', *dirs,
                   '--names', 'CAT', 'ResNet', '--out-dir', out_dir], log)
    assert rc == 0, tail(log)
    text = _read(log)
    diff = metrics[1]['toy/mae'] - metrics[0]['toy/mae']
    assert 'ResNet - CAT' in text and f'{diff:+.4f}' in text
    for ext in ('png', 'json', 'md'):
        assert osp.isfile(osp.join(out_dir, f'comparison.{ext}'))
    with open(osp.join(out_dir, 'comparison.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_compare_results_cli_error(tmp_path, monkeypatch, capsys):
    """A missing run: a one-line error and exit code 1 (in-process)."""
    module = load_tool(f'{TOOLS}/compare_results.py')
    monkeypatch.setattr(sys, 'argv', ['compare_results.py',
                                      str(tmp_path / 'missing')])
    assert module.main() == 1
    assert 'no such work dir' in capsys.readouterr().err
