"""mmcat: the CAT backbone for MMDetection 3.x and MMSegmentation 1.x.

Install with ``bash tools/install_deps.sh`` (it installs torch and builds mmcv's
ops in the right order first); ``pip install -e .`` alone expects them there.
"""
import os.path as osp

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def read_requirements(*names: str) -> list:
    reqs = []
    for name in names:
        with open(osp.join(ROOT, 'requirements', name)) as f:
            reqs += [line.split('#')[0].strip() for line in f
                     if line.split('#')[0].strip()]
    return reqs


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(ROOT, 'mmcat', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmcat',
    version=read_version(),
    description='CAT (Cross Attention in Vision Transformer) backbones for '
    'MMDetection and MMSegmentation',
    long_description=open(osp.join(ROOT, 'README.md')).read()
    if osp.exists(osp.join(ROOT, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmcat', 'mmcat.*']),
    python_requires='>=3.8',
    install_requires=['torch>=2.0'] + read_requirements('openmmlab.txt',
                                                        'runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'deploy': read_requirements('deploy.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
