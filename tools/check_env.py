"""Check that mmcat's dependencies are installed at the right versions.

Usage: python tools/check_env.py [--quiet] [--tests]
Exit status 0 when everything is there (and mmcv's compiled ops run), 1
otherwise, listing what is missing. Fast: it imports only what it checks.
"""
import argparse
import importlib.metadata as md
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _pins(path: str) -> dict:
    pins = {}
    with open(osp.join(ROOT, path)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if not line:
                continue
            for op in ('==', '<', '>'):
                if op in line:
                    name, version = line.split(op, 1)[0], line.split('==')[-1]
                    pins[name.strip()] = (version.strip()
                                          if op == '==' else None)
                    break
            else:
                pins[line] = None
    return pins


def missing_packages(with_tests: bool) -> list:
    wanted = {}
    files = ['requirements/openmmlab.txt', 'requirements/runtime.txt']
    if with_tests:
        files += ['requirements/tests.txt', 'requirements/deploy.txt']
    for path in files:
        wanted.update(_pins(path))
    problems = []
    for name, version in wanted.items():
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            problems.append(f'{name} is not installed')
            continue
        if version is not None and have != version:
            problems.append(f'{name} is {have}, mmcat needs {version}')
    try:
        md.version('torch')
    except md.PackageNotFoundError:
        problems.insert(0, 'torch is not installed')
    try:
        md.version('mmcat')
    except md.PackageNotFoundError:
        problems.append('mmcat itself is not installed (pip install -e .)')
    else:
        # Tools started as scripts import the installed mmcat: it must be
        # this checkout, not another clone's.
        import importlib.util
        spec = importlib.util.find_spec('mmcat')
        here = osp.join(ROOT, 'mmcat')
        where = osp.dirname(spec.origin) if spec and spec.origin else None
        if where is None or osp.realpath(where) != osp.realpath(here):
            problems.append(f'mmcat is installed from {where}, not from this '
                            f'checkout ({here}): pip install -e .')
    return problems


def check_mmcv_ops() -> str:
    """Run nms and RoIAlign once; return '' or the error."""
    try:
        import torch
        from mmcv.ops import RoIAlign, nms
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
        keep = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)[1]
        assert keep.tolist() == [0], keep
        feats = torch.arange(16.).view(1, 1, 4, 4)
        rois = torch.tensor([[0., 0., 0., 3., 3.]])
        out = RoIAlign((2, 2), 1.0, 0)(feats, rois)
        assert out.shape == (1, 1, 2, 2)
    except Exception as e:  # noqa: BLE001 - report anything
        return f'mmcv.ops does not work: {type(e).__name__}: {e}'
    return ''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quiet', action='store_true')
    parser.add_argument('--tests', action='store_true',
                        help='also check the test requirements')
    args = parser.parse_args()
    problems = missing_packages(args.tests)
    if not problems:
        err = check_mmcv_ops()
        if err:
            problems.append(err)
    if problems:
        if not args.quiet:
            print('missing: ' + '; '.join(problems))
        return 1
    if not args.quiet:
        import mmcv
        import mmdet
        import mmengine
        import mmseg
        import torch
        print(f'ok: torch {torch.__version__}, mmengine {mmengine.__version__}'
              f', mmcv {mmcv.__version__} (ops: nms, RoIAlign run), mmdet '
              f'{mmdet.__version__}, mmseg {mmseg.__version__}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
