"""The command line ``tools/train.py`` and ``tools/test.py`` share.

Both take a config, ``--work-dir``, ``--cfg-options``, ``--launcher`` and the
``--local-rank`` of ``torch.distributed.launch``; :func:`tool_parser` declares
them, :func:`parse_tool_args` reads them (exporting ``LOCAL_RANK``) and
:func:`apply_common_args` folds them into the config. Each tool adds its own
arguments to the parser and folds those in itself.
"""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

from .dist import mpi_local_rank

__all__ = ['apply_common_args', 'parse_tool_args', 'tool_parser']

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def tool_parser(description: str, config_help: str, work_dir_help: str,
                cfg_options_example: str) -> argparse.ArgumentParser:
    """A parser with the arguments every tool takes.

    Args:
        description: the tool's one-line description.
        config_help: help of the ``config`` positional argument.
        work_dir_help: help of ``--work-dir``.
        cfg_options_example: a ``key=value`` pair for ``--cfg-options``'
            help, e.g. ``'train_cfg.max_iters=10'``.

    Returns:
        The parser; a tool adds its own arguments (further positionals come
        after ``config``).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs such as '
        f'"{cfg_options_example}"; lists as key="[a,b]" or key=a,b; nested '
        'lists and tuples as key="[(a,b),(c,d)]", quoted, without spaces')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank, older versions
    # --local_rank; torchrun exports LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_tool_args(parser: argparse.ArgumentParser,
                    argv: Optional[Sequence[str]] = None
                    ) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv``); export ``LOCAL_RANK`` unless
    a launcher already did: with ``--launcher mpi`` the MPI launcher's local
    rank (mmengine selects the GPU from it, and DDP's ``device_ids`` must
    match), otherwise ``--local-rank``."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        local_rank = str(args.local_rank)
        if args.launcher == 'mpi':
            local_rank = mpi_local_rank(default=local_rank)
        os.environ['LOCAL_RANK'] = local_rank
    return args


def apply_common_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Fold the arguments of :func:`tool_parser` into ``cfg`` (in place).

    Sets ``cfg.launcher``, merges ``--cfg-options`` and chooses the work
    dir: the command line's, else the config's, else
    ``./work_dirs/<config name>``.
    """
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg
