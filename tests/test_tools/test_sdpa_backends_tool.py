"""tools/analysis_tools/sdpa_backends.py: the command line the GPU check runs
(here on the CPU at a small size) writes one section per CPSA head count and
dtype, to stdout and --out; bad arguments are one-line errors."""
import os.path as osp
import sys

import pytest
import torch

from tool_loader import load_tool
from tools_testkit import run_tool, tail

TOOL = osp.join('tools', 'analysis_tools', 'sdpa_backends.py')


def test_command_line(tmp_path):
    out, log = tmp_path / 'backends.md', str(tmp_path / 'log.txt')
    rc = run_tool([sys.executable, TOOL, '--models', 'cat_t',
                   '--cpsa-num-heads', '1,7', '--device', 'cpu',
                   '--dtypes', 'fp32,fp16,bf16', '--size', '112x112',
                   '--batch', '1', '--out', str(out)], log)
    assert rc == 0, tail(log)
    text = out.read_text()
    titles = [line for line in text.splitlines() if line.startswith('### ')]
    assert titles == [f'### cat_t, CPSA heads {h}, cpu, {d}, 112x112, '
                      f'batch 1, eval mode, no_grad'
                      for h in (1, 7)
                      for d in ('fp32', 'fp16 (autocast)', 'bf16 (autocast)')]
    assert text.startswith('# SDPA backends\n\nCPU ')
    assert f'torch {torch.__version__}' in text.splitlines()[2]
    assert text.count('| stage | layers | kind |') == 6
    assert '| CPSA |' in text and '| IPSA |' in text
    printed = open(log).read()
    assert titles[-1] in printed and f'written to {out}' in printed


@pytest.mark.parametrize('argv, message', [
    (['--dtypes', 'fp32,fp8'], "--dtypes: unknown 'fp8'"),
    (['--models', 'swin_t'], 'no IPSA/CPSA'),
    (['--cpsa-num-heads', '5'], 'num_heads (5) must divide'),
    (['--cpsa-num-heads', 'one'], 'use integers'),
    (['--size', 'big'], "bad size 'big'"),
    (['--batch', '0'], '--batch must be >= 1'),
])
def test_bad_arguments(argv, message, capsys):
    assert load_tool(TOOL).main(['--device', 'cpu'] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err, err


def test_cuda_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    assert load_tool(TOOL).main(['--device', 'cuda']) == 2
    assert 'sees no CUDA device; use --device cpu' in capsys.readouterr().err
