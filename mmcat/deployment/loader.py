"""Load an exported CAT model by its file: :func:`load_exported`."""
from typing import Union

from mmengine.config import Config

from .exported_model import ExportedModel
from .ort_model import OrtModel
from .program_model import ProgramModel


def load_exported(path: str, cfg: Union[str, Config]) -> ExportedModel:
    """The exported model at ``path``: a torch.export program for a .pt2
    file, else an ONNX file in onnxruntime."""
    if path.endswith('.pt2'):
        return ProgramModel(path, cfg)
    return OrtModel(path, cfg)
