"""tools/deployment/benchmark_ort.py: PyTorch eager and onnxruntime timed
side by side on the same exported network, with what onnxruntime made of
the graph."""
import os.path as osp
import re

import pytest
from tool_loader import REPO_ROOT, load_tool

pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')


def test_demo_backbone_table_and_graph(tmp_path, capsys):
    tool = load_tool('tools/deployment/benchmark_ort.py')
    graph = str(tmp_path / 'optimised.onnx')
    assert tool.main([osp.join(REPO_ROOT, 'configs', 'demo',
                               'fcos_cat_demo.py'),
                      '--backbone-only', '--shape', '64', '96', '--repeats',
                      '2', '--warmup', '0', '--threads', '1', '--graph-out',
                      graph]) == 0
    out = capsys.readouterr().out
    # the same outputs before anything is timed
    diff = float(re.search(r'max \|diff\| ([0-9.e+-]+)', out).group(1))
    assert diff < 1e-4
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r'^\| (eager|eager-plain|onnxruntime) \| ([0-9.]+) \| ([0-9.]+) \| '
        r'([0-9.]+) \|', out, re.M)}
    assert set(rows) == {'eager', 'eager-plain', 'onnxruntime'}
    assert rows['eager'][2] == '1.00'
    # the optimised graph was kept and its op types counted: the demo CAT's
    # 4 blocks x 3 attentions each have their softmax
    assert osp.isfile(graph)
    assert re.search(r'^  Softmax: 12 -> 12 \*$', out, re.M)
    assert tool.op_counts(graph).get('Softmax') == 12
