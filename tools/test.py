"""Test (evaluate) a checkpoint with an mmcat config.

Works for MMDetection (``default_scope='mmdet'``) and MMSegmentation
(``default_scope='mmseg'``) configs; the meaning of ``--out`` follows each:
a ``.pkl`` file of raw detections for mmdet, a directory of predicted label
maps for mmseg.

Examples::

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --show-dir vis --tta
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse

from mmengine.config import Config, ConfigDict

from mmcat.engine import build_runner, cap_cpu_threads, setup_runtime
from mmcat.engine.cli import apply_common_args, parse_tool_args, tool_parser


def parse_args() -> argparse.Namespace:
    parser = tool_parser(
        'Test (and eval) a model',
        config_help='test config file path',
        work_dir_help='the directory to save the file containing evaluation '
        'metrics',
        cfg_options_example='test_dataloader.batch_size=2')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        type=str,
        help='mmdet: dump predictions to this pickle file (.pkl); '
        'mmseg: save predicted label maps into this directory')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (relative to '
        'the timestamped log directory for mmdet)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test time augmentation, from cfg.tta_model and cfg.tta_pipeline')
    return parse_tool_args(parser)


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace,
                               scope: str) -> None:
    """Turn on the config's visualization hook for --show/--show-dir."""
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks: refer to '
            'the usage \'visualization=dict(type=\'VisualizationHook\')\'')
    hook = hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        else:  # mmseg's hook draws through the visualizer's save_dir
            cfg.visualizer['save_dir'] = args.show_dir
            hook['interval'] = 1


def apply_tta(cfg: Config) -> None:
    """Wrap the model in ``cfg.tta_model``, test with ``cfg.tta_pipeline``."""
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise RuntimeError(f'--tta needs {" and ".join(missing)} in config')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def apply_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Fold the command line into ``cfg``."""
    apply_common_args(cfg, args)
    cfg.load_from = args.checkpoint

    scope = cfg.get('default_scope', None)
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args, scope)
    if args.tta:
        apply_tta(cfg)
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def main() -> None:
    args = parse_args()
    cfg = apply_args(Config.fromfile(args.config), args)
    scope = cfg.get('default_scope', None)
    if args.out is not None and scope == 'mmdet':
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl or .pickle file for mmdet')

    setup_runtime(cfg)  # checkpoints of mmengine load, CPU-only DDP
    cap_cpu_threads(cfg, 'test_dataloader')  # leave the loader workers CPUs
    runner = build_runner(cfg)
    if args.out is not None and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
