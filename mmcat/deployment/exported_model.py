"""What the runners of exported CAT models share: an image in, a
``DetDataSample`` or ``SegDataSample`` out, as the PyTorch model's
``test_step`` gives them (:class:`ExportedModel`).

The file is what ``tools/deployment/export.py`` writes: input ``img``
(B, 3, H, W), normalised and padded; outputs ``cls_score_i``,
``bbox_pred_i`` [, ``centerness_i``] per FPN level (single-stage detectors)
or ``seg_logits`` (B, num_classes, H, W) (segmentors).

Preprocessing is the config's test pipeline (annotations left out) and the
model's own ``data_preprocessor``; post-processing is the model's own
``bbox_head.predict_by_feat`` (score threshold, NMS, rescaling to the image)
or ``postprocess_result`` (padding removed, resized to the image, argmax).
The model is built from the config for these only: its weights are unused.
"""
import os.path as osp
import re
from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import MODELS, init_default_scope

#: Output name patterns of the exports, by what the file holds.
_DETECTOR_GROUPS = ('cls_score', 'bbox_pred', 'centerness')
_BACKBONE_OUTPUT = re.compile(r'feat\d+$')


class DeploymentError(RuntimeError):
    """An exported file, config or image that cannot be run as asked."""


def unloadable(path: str, what: str, error: Exception,
               how: str) -> DeploymentError:
    """The error for a file that is not ``what`` can load, with the loader's
    first line of reason and the command (``how``) that writes one."""
    reason = str(error).strip().splitlines()[0][:300] if str(error) else ''
    return DeploymentError(
        f'{path!r} is not {what} can load ({type(error).__name__}: '
        f'{reason}); export one with {how}')


def detections_from_outputs(detector: nn.Module, outputs: Sequence,
                            batch_img_metas: Sequence[dict],
                            rescale: bool = True) -> list:
    """MMDetection's results from the raw head outputs of an exported
    single-stage detector: the model's own score threshold and NMS
    (``bbox_head.predict_by_feat`` with its ``test_cfg``).

    Args:
        outputs: the session's outputs, level by level per group:
            cls_score_0.., bbox_pred_0.. [, centerness_0..], each
            (B, C, H_l, W_l).
        batch_img_metas: one meta dict per image (``img_shape``,
            ``scale_factor``, ``ori_shape``, ...), as the data preprocessor
            leaves them.
        rescale: scale the boxes back to ``ori_shape``.

    Returns:
        One ``InstanceData`` (bboxes (N, 4), scores (N,), labels (N,)) per
        image.
    """
    head = detector.bbox_head
    levels = len(head.prior_generator.strides)
    tensors = [torch.as_tensor(np.asarray(o)) for o in outputs]
    groups = [tensors[i:i + levels] for i in range(0, len(tensors), levels)]
    with torch.no_grad():
        return head.predict_by_feat(*groups,
                                    batch_img_metas=list(batch_img_metas),
                                    rescale=rescale)


def image_metas(img_shape: Sequence[int], batch: int = 1,
                ori_shape: Optional[Sequence[int]] = None) -> List[dict]:
    """Meta dicts for a network input of ``img_shape`` (H, W) made from an
    image of ``ori_shape`` (default: the same) by plain resizing, for
    :func:`detections_from_outputs` without a pipeline."""
    h, w = img_shape
    oh, ow = ori_shape if ori_shape is not None else (h, w)
    return [dict(img_shape=(h, w), pad_shape=(h, w),
                 batch_input_shape=(h, w), ori_shape=(oh, ow),
                 scale_factor=(w / ow, h / oh)) for _ in range(batch)]


def test_pipeline_cfg(cfg: Config) -> list:
    """The config's test pipeline without its annotation loading (an image
    given for inference has none)."""
    pipeline = cfg.test_dataloader.dataset.get('pipeline') or cfg.get(
        'test_pipeline')
    if not pipeline:
        raise DeploymentError('the config has no test pipeline '
                              '(test_dataloader.dataset.pipeline)')
    return [dict(t) for t in pipeline
            if not str(t['type']).split('.')[-1].startswith('LoadAnnotations')]


class ExportedModel(ABC):
    """An exported detector or segmentor with its config's pre- and
    post-processing. A subclass loads the file, then calls :meth:`_setup`
    with the config, and gives :attr:`input_names`, :attr:`output_names`
    and :meth:`run`."""

    def _setup(self, cfg: Union[str, Config]) -> None:
        """Model, checks and pipeline from the config the file came from."""
        self.cfg = Config.fromfile(cfg) if isinstance(cfg, str) else cfg
        self.scope = self.cfg.get('default_scope', 'mmdet')
        init_default_scope(self.scope)
        self.model = MODELS.build(self.cfg.model).eval()
        self.kind = self._check_outputs()
        self.pipeline = Compose(test_pipeline_cfg(self.cfg))

    @property
    @abstractmethod
    def input_names(self) -> List[str]:
        """The file's input names (export.py writes one, ``img``)."""
        raise NotImplementedError

    @property
    @abstractmethod
    def output_names(self) -> List[str]:
        """The file's output names, in the order :meth:`run` returns."""
        raise NotImplementedError

    @abstractmethod
    def run(self, img: torch.Tensor) -> List[np.ndarray]:
        """The file's outputs for ``img`` (B, 3, H, W), as numpy arrays."""
        raise NotImplementedError

    def _check_outputs(self) -> str:
        """'detector' or 'segmentor': what the file and the config both
        are; raise when they disagree."""
        inputs = self.input_names
        names = self.output_names
        if inputs != ['img']:
            raise DeploymentError(
                f'the exported model takes {inputs}, not one input "img": it '
                f'was not written by tools/deployment/export.py')
        if names and all(_BACKBONE_OUTPUT.match(n) for n in names):
            raise DeploymentError(
                f'the exported model holds a backbone only (outputs {names}); '
                f'export the whole detector or segmentor (without '
                f'--backbone-only)')
        file_kind = 'segmentor' if names == ['seg_logits'] else (
            'detector' if names and names[0].startswith('cls_score_')
            else None)
        if file_kind is None:
            raise DeploymentError(
                f'outputs {names} are neither a single-stage '
                f'detector\'s (cls_score_i, bbox_pred_i, ...) nor a '
                f'segmentor\'s (seg_logits)')
        model = self.model
        config_kind = ('segmentor' if hasattr(model, 'decode_head') else
                       'detector' if hasattr(model, 'bbox_head')
                       and not hasattr(model, 'roi_head') else
                       type(model).__name__)
        if file_kind != config_kind:
            raise DeploymentError(
                f'the exported model is a {file_kind} (outputs '
                f'{names[:3]}{"..." if len(names) > 3 else ""}) but the '
                f'config builds {type(model).__name__} (a {config_kind}): '
                f'pass the config the file was exported from')
        if file_kind == 'detector':
            levels = len(model.bbox_head.prior_generator.strides)
            groups = len(names) // levels
            expected = [f'{g}_{i}' for g in _DETECTOR_GROUPS[:groups]
                        for i in range(levels)]
            if groups < 2 or names != expected:
                raise DeploymentError(
                    f'outputs {names} do not match the config\'s '
                    f'{type(model.bbox_head).__name__} with {levels} levels '
                    f'(expected {expected[:levels + 1]}...)')
        return file_kind

    def _check_channels(self, outputs: Sequence[np.ndarray]) -> None:
        """The classes of the file are the config's."""
        model = self.model
        if self.kind == 'segmentor':
            got, want = outputs[0].shape[1], model.decode_head.out_channels
        else:
            head = model.bbox_head
            got = outputs[0].shape[1]
            want = head.cls_out_channels * head.num_base_priors
        if got != want:
            raise DeploymentError(
                f'the exported model gives {got} class channels, the '
                f'config\'s model {want}: the file was exported from another '
                f'config (number of classes)')

    def preprocess(self, image: Union[str, np.ndarray]) -> Dict:
        """One image (a path, or a BGR array (H, W, 3)) through the test
        pipeline and the data preprocessor: ``inputs`` (1, 3, H', W') and
        ``data_samples`` carrying the image metas."""
        if isinstance(image, str):
            if not osp.isfile(image):
                raise DeploymentError(f'image {image!r} not found')
            pipeline, data = self.pipeline, dict(img_path=image, img_id=0)
        else:
            cfg = test_pipeline_cfg(self.cfg)
            cfg[0] = dict(cfg[0], type=f'{self.scope}.LoadImageFromNDArray')
            pipeline, data = Compose(cfg), dict(img=image, img_id=0)
        packed = pipeline(data)
        with torch.no_grad():
            return self.model.data_preprocessor(
                dict(inputs=[packed['inputs']],
                     data_samples=[packed['data_samples']]), False)

    def forward(self, inputs: torch.Tensor) -> List[np.ndarray]:
        """The exported model on a preprocessed batch (B, 3, H, W)."""
        outputs = self.run(inputs.detach().cpu().float())
        self._check_channels(outputs)
        return outputs

    def postprocess(self, outputs: Sequence[np.ndarray],
                    data_samples: list) -> list:
        """The session's outputs as the model's ``test_step`` results: the
        ``data_samples`` with ``pred_instances`` (boxes in pixels of the
        original image) or ``pred_sem_seg`` / ``seg_logits`` at its size."""
        with torch.no_grad():
            if self.kind == 'segmentor':
                return self.model.postprocess_result(
                    torch.as_tensor(outputs[0]), data_samples)
            results = detections_from_outputs(
                self.model, outputs, [s.metainfo for s in data_samples])
            return self.model.add_pred_to_datasample(data_samples, results)

    def predict(self, image: Union[str, np.ndarray]):
        """One image to one ``DetDataSample`` / ``SegDataSample``."""
        batch = self.preprocess(image)
        outputs = self.forward(batch['inputs'])
        return self.postprocess(outputs, batch['data_samples'])[0]
