"""Train a detector or a segmentor with an mmcat config.

Works for MMDetection (``default_scope='mmdet'``) and MMSegmentation
(``default_scope='mmseg'``) configs alike, on GPUs or, with
``--launcher pytorch|slurm|mpi`` on a machine without CUDA, on CPUs over gloo.

Examples::

    python tools/train.py configs/fcos_cat_s_1x_coco.py
    python tools/train.py CONFIG --resume                 # latest in work_dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_4000.pth
    python tools/train.py CONFIG --amp                    # GPU fp16, CPU bf16
    python tools/train.py CONFIG --amp-dtype bfloat16     # implies --amp
    bash tools/dist_train.sh CONFIG 8
"""
import argparse
import sys

from mmengine.config import Config
from mmengine.logging import print_log

from mmcat.engine import build_runner, cap_cpu_threads, setup_runtime
from mmcat.engine.cli import apply_common_args, parse_tool_args, tool_parser
from mmcat.engine.optim.amp import (AMP_DTYPES, AMP_WRAPPER_TYPES,
                                    AmpConfigError, amp_optim_wrapper_cfg,
                                    wrapper_type_name)
from mmcat.engine.resume import CheckpointError, resolve_checkpoint

# Hooks every training run gets unless its config already has them: stop at
# a NaN/inf loss naming the iteration; keep random states in checkpoints so
# that --resume continues as an uninterrupted run would (bit for bit on CPUs,
# on GPUs with deterministic kernels: see the README).
DEFAULT_CUSTOM_HOOKS = ('InvalidLossHook', 'RNGStateHook')


def parse_args() -> argparse.Namespace:
    parser = tool_parser(
        'Train a model',
        config_help='train config file path',
        work_dir_help='the dir to save logs and models',
        cfg_options_example='train_cfg.max_iters=10')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='mixed-precision training: on a GPU float16 autocast with '
        'dynamic loss scaling (mmengine\'s AmpOptimWrapper), on the CPU '
        'bfloat16 autocast (AutocastOptimWrapper)')
    parser.add_argument(
        '--amp-dtype',
        choices=AMP_DTYPES,
        default=None,
        help='the autocast dtype of --amp, and implies --amp; default: the '
        'config\'s optim_wrapper.dtype, else float16 on a GPU, bfloat16 on '
        'the CPU (float16 is refused there; bfloat16 on a GPU needs bf16 '
        'support, Ampere or newer)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the real batch size '
        '(needs cfg.auto_scale_lr.base_batch_size)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, given bare, from the '
        'latest checkpoint in the work dir')
    return parse_tool_args(parser)


def apply_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Fold the command line into ``cfg``."""
    apply_common_args(cfg, args)
    amp = args.amp or args.amp_dtype is not None
    wrapper_type = wrapper_type_name(cfg.get('optim_wrapper', None) or {})
    if amp and wrapper_type in AMP_WRAPPER_TYPES:
        print_log('AMP training is already enabled in the config.',
                  logger='current')
    # a config's AmpOptimWrapper too: on the CPU it becomes the bf16 wrapper
    if amp or wrapper_type in AMP_WRAPPER_TYPES:
        cfg.optim_wrapper = amp_optim_wrapper_cfg(
            cfg.get('optim_wrapper', None) or {}, args.amp_dtype)
        print_log(f'Mixed precision: {cfg.optim_wrapper["type"]}, '
                  f'{cfg.optim_wrapper["dtype"]} autocast', logger='current')

    if args.auto_scale_lr:
        scale_cfg = cfg.get('auto_scale_lr', None)
        if scale_cfg is None or 'base_batch_size' not in scale_cfg:
            raise RuntimeError('--auto-scale-lr needs "auto_scale_lr" with '
                               '"base_batch_size" in the config')
        scale_cfg.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return add_default_hooks(cfg)


def add_default_hooks(cfg: Config) -> Config:
    """Append each of :data:`DEFAULT_CUSTOM_HOOKS` that ``cfg.custom_hooks``
    lacks (matched by type name, scope prefix ignored)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    present = set()
    for hook in hooks:
        hook_type = hook.get('type', '') if isinstance(hook, dict) else hook
        name = hook_type if isinstance(hook_type, str) else getattr(
            hook_type, '__name__', type(hook_type).__name__)
        present.add(name.split('.')[-1])
    hooks += [dict(type=name) for name in DEFAULT_CUSTOM_HOOKS
              if name not in present]
    cfg.custom_hooks = hooks
    return cfg


def main() -> None:
    args = parse_args()
    try:  # before anything is built: AMP the training device cannot run
        cfg = apply_args(Config.fromfile(args.config), args)
    except AmpConfigError as e:
        sys.exit(f'error: {e}')
    setup_runtime(cfg)  # atomic saves, resumable checkpoints, CPU-only DDP
    cap_cpu_threads(cfg, 'train_dataloader')  # leave the loader workers CPUs
    try:  # a bare --resume passes over unreadable checkpoints, with warnings
        resolve_checkpoint(cfg)
    except CheckpointError as e:
        sys.exit(f'error: {e}')
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
