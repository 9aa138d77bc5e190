"""The analysis package is for the tools: ``import mmcat`` leaves it out, and
the tools share one way of building a model from a config."""
import subprocess
import sys

import torch.nn as nn

from mmcat.analysis import (DEFAULT_INPUT_SIZES, count_parameters,
                            default_input_size, model_parts)


def test_import_mmcat_leaves_analysis_out():
    code = ('import sys, mmcat\n'
            'print(sorted(m for m in sys.modules '
            "if m.startswith('mmcat.analysis')))\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == '[]'


def test_default_input_sizes():
    """Detection at the size of the CAT paper's FLOPs, segmentation at
    ADE20K's crop; a config naming no scope counts as detection."""
    assert default_input_size('mmdet') == (800, 1280)
    assert default_input_size('mmseg') == (512, 512)
    assert default_input_size('mmpretrain') == DEFAULT_INPUT_SIZES['mmdet']


def test_model_parts_and_parameters():
    model = nn.Module()
    model.backbone = nn.Linear(4, 3)
    model.decode_head = nn.Linear(3, 2, bias=False)
    model.neck = None
    assert [name for name, _ in model_parts(model)] == ['backbone',
                                                       'decode_head']
    assert count_parameters(model) == 4 * 3 + 3 + 3 * 2
    assert count_parameters(model.decode_head) == 6
