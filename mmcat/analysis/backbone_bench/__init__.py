"""Backbone benchmark: mmcat's CAT against the paper's straightforward
transcription (:class:`~mmcat.testing.cat_reference.ReferenceCAT`),
MMDetection's Swin-T and ResNet-50, in one run and on the same inputs.

What one run measures, for every input size:

* **latency** of a forward pass (``eval()``, ``no_grad``) and of a training
  step (``train()``, forward, ``sum of output means`` as the loss, backward;
  gradients set to None first, no optimizer step), as medians over repeats.
  Timed calls are interleaved round-robin over every (model, dtype) pair and
  a large GEMM of each dtype (the starting model rotates each round), so
  that machine noise, which on a shared CPU is large, hits all of them
  alike; ratios taken from one run are what to trust
  (:mod:`.round_robin`).
* **peak memory** of one forward and of one training step, in fresh worker
  processes on CPU (:mod:`.memory`, with the /proc and glibc probes of
  :mod:`.procmem`).
* **multiply-adds** (attention products included, :mod:`mmcat.analysis.flops`),
  the achieved rate (``MACs / latency``; a training step counts as 3x the
  forward MACs) and that rate over the machine's GEMM peak: the best rate of
  an ``n x n x n`` matmul (``n^3`` MACs) timed in the same rounds, with the
  same threads and dtype.
* **ratios** (against the reference, bf16 against fp32) are medians of the
  per-round ratios: both calls of a pair ran within one round, so slow drifts
  of the machine's load cancel.
* **the allocator** it ran with: glibc's default, which returns large blocks
  to the kernel so that big temporaries page-fault on every call, or glibc
  keeping freed memory (``--malloc retain``, :func:`retain_freed_memory`).
  Ratios against the transcription depend on it (docs/benchmark.md).
* **agreement** of every CAT with its reference, loaded with the same
  weights (``cat_converter`` + ``CAT.load_pretrained``): max abs difference
  of all outputs against the fp32 reference.

The models are in :mod:`.zoo`, a run in :mod:`.run`, its table in
:mod:`.report`; the command line is
``tools/analysis_tools/benchmark_backbones.py``.
"""
from .machine import bf16_supported, machine_summary
from .memory import measure_cuda_memory, measure_memory, measure_step_memory
from .procmem import (MALLOC_MODES, available_memory_bytes, peak_rss_bytes,
                      release_free_memory, reset_peak_rss,
                      retain_freed_memory, rss_bytes)
from .report import COLUMNS, table_rows, to_markdown
from .results import Row, paired_ratio, rows_from_result
from .round_robin import time_round_robin
from .run import BenchConfig, parse_size, run_benchmark
from .work import DTYPES, MODES, make_gemm, make_step, max_abs_diff
from .zoo import (DEFAULT_MODELS, MODEL_LABELS, MODEL_NAMES, build_backbone,
                  canonical_model_name, make_input, reference_cat,
                  reference_of)

__all__ = [
    'BenchConfig', 'COLUMNS', 'DEFAULT_MODELS', 'DTYPES', 'MALLOC_MODES',
    'MODEL_LABELS', 'MODEL_NAMES', 'MODES', 'Row', 'available_memory_bytes',
    'bf16_supported', 'build_backbone', 'canonical_model_name',
    'machine_summary', 'make_gemm', 'make_input', 'make_step',
    'max_abs_diff', 'measure_cuda_memory', 'measure_memory',
    'measure_step_memory', 'paired_ratio', 'parse_size', 'peak_rss_bytes',
    'reference_cat', 'reference_of', 'release_free_memory', 'reset_peak_rss',
    'retain_freed_memory', 'rows_from_result', 'rss_bytes', 'run_benchmark',
    'table_rows', 'time_round_robin', 'to_markdown'
]
