"""Fixtures shared by the whole suite."""
import pytest
import torch


@pytest.fixture(params=['cpu', 'cuda'])
def device(request) -> torch.device:
    """Each device a test can run on: the CPU always, CUDA where there is a
    GPU (skipped otherwise), so the GPU check runs the same tests there."""
    if request.param == 'cuda' and not torch.cuda.is_available():
        pytest.skip('needs a CUDA device')
    return torch.device(request.param)
