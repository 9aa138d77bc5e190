"""The command line the tools share: which ``LOCAL_RANK`` a process gets."""
import os

import pytest

from mmcat.engine.cli import parse_tool_args, tool_parser
from mmcat.engine.dist import MPI_LOCAL_RANK_VARS


@pytest.fixture
def parse(monkeypatch):
    """Parse a tool command line in an environment without launcher
    variables; returns the ``LOCAL_RANK`` it exports."""
    for name in ('LOCAL_RANK', ) + MPI_LOCAL_RANK_VARS:
        monkeypatch.delenv(name, raising=False)
    parser = tool_parser('t', 'config', 'work dir', 'a=1')

    def run(*argv: str, **env: str) -> str:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        parse_tool_args(parser, ['c.py', *argv])
        local_rank = os.environ['LOCAL_RANK']
        monkeypatch.delenv('LOCAL_RANK')
        return local_rank

    return run


@pytest.mark.parametrize('variable', MPI_LOCAL_RANK_VARS)
def test_mpi_launcher_exports_the_local_rank(parse, variable):
    """mmengine's MPI start selects GPU ``OMPI_COMM_WORLD_LOCAL_RANK`` and
    its Runner gives DDP ``device_ids=[LOCAL_RANK]``: they must agree."""
    assert parse('--launcher', 'mpi', **{variable: '3'}) == '3'


def test_open_mpi_wins_and_other_launchers_keep_their_rank(parse):
    assert parse('--launcher', 'mpi', OMPI_COMM_WORLD_LOCAL_RANK='1',
                 SLURM_LOCALID='0') == '1'
    # a rank torchrun exported stays; without MPI the --local-rank
    assert parse('--launcher', 'mpi', LOCAL_RANK='2') == '2'
    assert parse('--launcher', 'pytorch', '--local-rank', '5') == '5'


def test_mpi_without_its_variables_falls_back_to_local_rank(parse):
    assert parse('--launcher', 'mpi', '--local-rank', '4') == '4'
    assert parse('--launcher', 'mpi') == '0'
