"""Running exported CAT models with their config's pre- and post-processing:
an ONNX detector or segmentor in onnxruntime (:class:`OrtModel`) or a
``torch.export`` program (:class:`ProgramModel`); :func:`load_exported`.

``import mmcat`` does not import this package (the ONNX runner needs
onnxruntime, the ``deploy`` extra); the deployment tools import it
explicitly.
"""
from .ort_model import (PROGRAM_META, DeploymentError, OrtModel,
                        ProgramModel, detections_from_outputs, image_metas,
                        load_exported, run_program, test_pipeline_cfg)

__all__ = ['DeploymentError', 'OrtModel', 'PROGRAM_META', 'ProgramModel',
           'detections_from_outputs', 'image_metas', 'load_exported',
           'run_program', 'test_pipeline_cfg']
