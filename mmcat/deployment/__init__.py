"""Running exported CAT models with their config's pre- and post-processing:
an ONNX detector or segmentor in onnxruntime (:class:`OrtModel`) or a
``torch.export`` program (:class:`ProgramModel`), both an
:class:`ExportedModel`; :func:`load_exported` picks by the file.

``import mmcat`` does not import this package (the ONNX runner needs
onnxruntime, the ``deploy`` extra); the deployment tools import it
explicitly.
"""
from .exported_model import (DeploymentError, ExportedModel,
                             detections_from_outputs, image_metas,
                             test_pipeline_cfg)
from .loader import load_exported
from .ort_model import OrtModel
from .program_model import PROGRAM_META, ProgramModel, run_program

__all__ = ['DeploymentError', 'ExportedModel', 'OrtModel', 'PROGRAM_META',
           'ProgramModel', 'detections_from_outputs', 'image_metas',
           'load_exported', 'run_program', 'test_pipeline_cfg']
