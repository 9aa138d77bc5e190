"""Fixtures of the config tests: tiny COCO and ADE20K samples, written once
per session (see :mod:`config_testkit`)."""
import pytest
from config_testkit import (write_ade_sample, write_coco_sample,
                            write_demo_coco_sample)


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Root of a 2-train / 1-val image COCO 2017 sample (``data/coco/``)."""
    return write_coco_sample(str(tmp_path_factory.mktemp('coco')))


@pytest.fixture(scope='session')
def demo_coco_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Root of a 2-train / 1-val image sample of the demo's generated COCO
    data, with its own classes (``data/coco_demo/``)."""
    return write_demo_coco_sample(str(tmp_path_factory.mktemp('coco_demo')))


@pytest.fixture(scope='session')
def ade_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Root of a 4-train / 1-val image ADE20K sample
    (``data/ade/ADEChallengeData2016``)."""
    return write_ade_sample(str(tmp_path_factory.mktemp('ade')))
