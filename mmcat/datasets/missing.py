"""A helpful error for a dataset folder or file that is not there."""
from __future__ import annotations

from mmengine import fileio

__all__ = ['check_data_exists']

_GENERATE = 'python tools/generate_demo_data.py --out data'
_REAL = {
    'coco': 'COCO 2017 from https://cocodataset.org (train2017, val2017 and '
            'annotations_trainval2017), unpacked to data/coco',
    'ade': 'ADE20K (ADEChallengeData2016) from '
           'http://sceneparsing.csail.mit.edu, unpacked to '
           'data/ade/ADEChallengeData2016',
}


def check_data_exists(path: str, kind: str,
                      backend_args: dict | None = None) -> None:
    """Raise FileNotFoundError saying how to get the data if ``path`` is
    missing.

    Args:
        path: the annotation file or image folder the dataset reads.
        kind: ``'coco'`` or ``'ade'``.
        backend_args: mmengine file backend arguments of the dataset.
    """
    if fileio.exists(path, backend_args=backend_args):
        return
    raise FileNotFoundError(
        f'{path} does not exist. The synthetic demo data (data/coco_demo and '
        f'data/ade_demo) is made by\n    {_GENERATE}\n(--out DIR writes it '
        f'elsewhere; see --help). For the real data, download '
        f'{_REAL[kind]}.')
