"""Analysis of mmcat models for the tools: multiply-adds and parameters,
timing, models built from configs, run comparison, and the backbone
benchmark (:mod:`mmcat.analysis.backbone_bench`, imported on its own).

``import mmcat`` does not import this package; tools import it explicitly.
"""
from .compare import compare_runs, parse_run
from .config_model import (DEFAULT_INPUT_SIZES, MODEL_PARTS, ConfigModel,
                           add_model_args, default_input_size,
                           model_from_config, model_parts,
                           synthetic_data_samples)
from .flops import (AttentionLayerStat, FlopReport, analyze_flops,
                    attention_layer_report, count_flops, count_parameters,
                    format_attention_table)
from .timing import Timing, autocast_context, device_summary, time_fn

__all__ = [
    'AttentionLayerStat', 'ConfigModel', 'DEFAULT_INPUT_SIZES', 'FlopReport',
    'MODEL_PARTS', 'Timing', 'add_model_args', 'analyze_flops', 'attention_layer_report',
    'autocast_context', 'compare_runs', 'count_flops', 'count_parameters',
    'default_input_size', 'device_summary', 'format_attention_table',
    'model_from_config', 'model_parts', 'parse_run', 'synthetic_data_samples',
    'time_fn'
]
