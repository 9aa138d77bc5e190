"""Running exported CAT models: an ONNX detector or segmentor in onnxruntime
with its config's pre- and post-processing (:class:`OrtModel`).

``import mmcat`` does not import this package (it needs onnxruntime, the
``deploy`` extra); the deployment tools import it explicitly.
"""
from .ort_model import (DeploymentError, OrtModel, detections_from_outputs,
                        image_metas, test_pipeline_cfg)

__all__ = ['DeploymentError', 'OrtModel', 'detections_from_outputs',
           'image_metas', 'test_pipeline_cfg']
