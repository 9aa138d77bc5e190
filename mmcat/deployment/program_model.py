"""A ``torch.export`` program (.pt2) of a detector or segmentor run with
its config's pre- and post-processing (:class:`ProgramModel`)."""
import json
import os.path as osp
from typing import List, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

from .exported_model import DeploymentError, ExportedModel, unloadable

#: What export.py stores beside a torch.export program (output names and
#: the smallest H and W it takes), in the .pt2 file's extra files.
PROGRAM_META = 'mmcat_program.json'


def run_program(program: nn.Module, img: torch.Tensor) -> List[np.ndarray]:
    """A loaded ``torch.export`` program's outputs for ``img``, as numpy
    arrays in the program's order."""
    with torch.no_grad():
        outs = program(img)
    outs = outs if isinstance(outs, (tuple, list)) else (outs, )
    return [o.numpy() for o in outs]


class ProgramModel(ExportedModel):
    """An exported detector or segmentor as a ``torch.export`` program.

    Args:
        program_file: the .pt2 file ``tools/deployment/export.py
            --format torch-export`` wrote.
        cfg: the config it was exported from.
    """

    def __init__(self, program_file: str, cfg: Union[str, Config]) -> None:
        if not osp.isfile(program_file):
            raise DeploymentError(f'program file {program_file!r} not found')
        extra = {PROGRAM_META: ''}
        try:
            program = torch.export.load(program_file, extra_files=extra)
        except Exception as e:  # noqa: BLE001 - named in the message
            raise unloadable(
                program_file, 'a torch.export program this torch', e,
                'tools/deployment/export.py --format torch-export') from e
        meta = json.loads(extra[PROGRAM_META] or '{}')
        if 'outputs' not in meta or 'min_size' not in meta:
            raise DeploymentError(
                f'{program_file!r} has no output names: it was not written '
                f'by tools/deployment/export.py (or by an older version); '
                f'export it again')
        self._outputs: List[str] = list(meta['outputs'])
        self.min_size: int = int(meta['min_size'])
        self.program = program.module()
        self._setup(cfg)

    @property
    def input_names(self) -> List[str]:
        return ['img']

    @property
    def output_names(self) -> List[str]:
        return list(self._outputs)

    def run(self, img: torch.Tensor) -> List[np.ndarray]:
        """The program's outputs for ``img`` (B, 3, H, W), H and W at least
        :attr:`min_size`."""
        h, w = img.shape[-2:]
        if min(h, w) < self.min_size:
            raise DeploymentError(
                f'the preprocessed image is {h}x{w}, below {self.min_size}, '
                f'the smallest H and W this torch.export program takes; use '
                f'the ONNX export for it, or a test pipeline that resizes to '
                f'at least {self.min_size}')
        return run_program(self.program, img)
