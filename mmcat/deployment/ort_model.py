"""An exported detector or segmentor (ONNX) run in onnxruntime with its
config's pre- and post-processing (:class:`OrtModel`)."""
import os.path as osp
from typing import List, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config

from .exported_model import DeploymentError, ExportedModel, unloadable


class OrtModel(ExportedModel):
    """An exported detector or segmentor in an onnxruntime session.

    Args:
        onnx_file: the file ``tools/deployment/export.py`` wrote.
        cfg: the config it was exported from (pipeline, preprocessing,
            post-processing and classes come from it).
        providers: onnxruntime execution providers.
        sess_options: an ``onnxruntime.SessionOptions`` (default: its own
            defaults, graph optimisations on).
    """

    def __init__(self, onnx_file: str, cfg: Union[str, Config],
                 providers: Sequence[str] = ('CPUExecutionProvider', ),
                 sess_options=None) -> None:
        if not osp.isfile(onnx_file):
            raise DeploymentError(f'ONNX file {onnx_file!r} not found')
        import onnxruntime as ort
        try:
            self.session = ort.InferenceSession(
                onnx_file, sess_options, providers=list(providers))
        except Exception as e:  # noqa: BLE001 - named in the message
            raise unloadable(onnx_file, 'an ONNX model onnxruntime', e,
                             'tools/deployment/export.py') from e
        self._setup(cfg)

    @property
    def input_names(self) -> List[str]:
        return [i.name for i in self.session.get_inputs()]

    @property
    def output_names(self) -> List[str]:
        return [o.name for o in self.session.get_outputs()]

    def run(self, img: torch.Tensor) -> List[np.ndarray]:
        """The session's outputs for ``img`` (B, 3, H, W)."""
        return self.session.run(None, {'img': img.numpy()})
