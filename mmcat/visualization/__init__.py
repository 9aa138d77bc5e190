"""Drawing predictions with the config's visualizer outside a runner: one
picture (:func:`config_visualizer`) or a sheet comparing models on the same
validation images (:func:`prediction_sheet`).

``import mmcat`` does not import this package; tools import it explicitly.
"""
from .prediction_sheet import (Sheet, load_model, prediction_sheet,
                               write_prediction_sheet)
from .visualizer import config_visualizer, dataset_meta

__all__ = ['Sheet', 'config_visualizer', 'dataset_meta', 'load_model',
           'prediction_sheet', 'write_prediction_sheet']
