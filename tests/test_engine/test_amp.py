"""Mixed-precision training: the device/dtype decision, the wrapper each
device gets (CUDA: mmengine's AmpOptimWrapper with a loss scaler; CPU:
AutocastOptimWrapper, bfloat16 without one) and the errors of a choice the
device cannot run.

CUDA is simulated where the test is about the decision: mmengine's device
(``get_device``) and torch's bf16 support are monkeypatched; mmengine's
``AmpOptimWrapper`` is built on the CPU with torch's CPU gradient scaler,
as in ``test_invalid_loss.py``.
"""
import functools
import warnings

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper

from mmcat.engine import AutocastOptimWrapper
from mmcat.engine.optim import amp
from mmcat.engine.optim.amp import (AmpConfigError, amp_optim_wrapper_cfg,
                                    cpu_has_native_bf16, resolve_amp_dtype)

SGD = dict(type='SGD', lr=0.1)


@pytest.fixture
def cuda(monkeypatch):
    """Make the decision see a CUDA device; returns a setter of its bf16
    support (default: supported)."""
    monkeypatch.setattr(amp, 'get_device', lambda: 'cuda')
    monkeypatch.setattr(torch.cuda, 'get_device_name',
                        lambda *a: 'Tesla V100-SXM2-16GB')

    def bf16(supported: bool) -> None:
        monkeypatch.setattr(torch.cuda, 'is_bf16_supported',
                            lambda *a, **k: supported)
    bf16(True)
    return bf16


@pytest.fixture
def native_bf16(monkeypatch):
    """Set whether the CPU reports native bf16 (default: yes, no warning)."""
    def set_native(value):
        monkeypatch.setattr(amp, 'cpu_has_native_bf16', lambda: value)
    set_native(True)
    return set_native


@pytest.fixture
def amp_wrapper_on_cpu(monkeypatch):
    """Let mmengine's AmpOptimWrapper build on the CPU (torch's CPU
    gradient scaler)."""
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    monkeypatch.setattr(amp_optimizer_wrapper, 'GradScaler',
                        functools.partial(torch.amp.GradScaler, 'cpu'))


class _ConvNet(nn.Module):
    """conv -> relu -> pool -> linear; records its layers' output dtypes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)
        self.seen = []
        for layer in (self.conv, self.fc):
            layer.register_forward_hook(
                lambda m, i, out: self.seen.append(out.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> (B, 2)."""
        return self.fc(self.conv(x).relu().mean((2, 3)))


# ------------------------------------------------------------ the decision
def test_default_dtype_per_device(cuda, native_bf16):
    assert resolve_amp_dtype(None, 'cpu') == 'bfloat16'
    assert resolve_amp_dtype(None, 'cuda') == 'float16'
    assert resolve_amp_dtype(torch.bfloat16, 'cuda') == 'bfloat16'
    assert resolve_amp_dtype() == 'float16'  # the simulated training device
    with pytest.raises(AmpConfigError, match="'float32' is not supported"):
        resolve_amp_dtype('float32', 'cpu')


def test_float16_on_the_cpu_is_refused():
    with pytest.raises(AmpConfigError, match='float16 .* not supported on the '
                       'CPU.*use --amp-dtype bfloat16'):
        resolve_amp_dtype('float16', 'cpu')


def test_bfloat16_on_a_gpu_without_bf16_is_refused(cuda):
    cuda(False)
    with pytest.raises(AmpConfigError,
                       match='Tesla V100.*use --amp-dtype float16'):
        resolve_amp_dtype('bfloat16')
    assert resolve_amp_dtype('float16') == 'float16'


def test_emulated_bf16_cpu_warns_once(native_bf16, monkeypatch):
    monkeypatch.setitem(amp._warned, 'emulated_bf16', False)
    native_bf16(False)
    with pytest.warns(UserWarning, match='without native bf16.*slower than '
                      'float32') as record:
        resolve_amp_dtype('bfloat16', 'cpu')
        resolve_amp_dtype(None, 'cpu')  # the wrapper asks again: no repeat
    assert len(record) == 1 and '\n' not in str(record[0].message)
    monkeypatch.setitem(amp._warned, 'emulated_bf16', False)
    native_bf16(None)  # unknown (no /proc/cpuinfo): no warning
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        resolve_amp_dtype('bfloat16', 'cpu')


@pytest.mark.parametrize('text, native', [
    ('flags\t\t: fpu sse avx avx2 avx512f\n', False),
    ('flags\t\t: fpu avx2 avx512_bf16 avx512_fp16\n', True),
    ('flags\t\t: fpu avx2 amx_bf16 amx_tile\n', True),
    ('Features\t: fp asimd bf16 sve\n', True),
    ('processor\t: 0\n', None),
])
def test_cpu_bf16_flags(tmp_path, text, native):
    path = tmp_path / 'cpuinfo'
    path.write_text(text)
    assert cpu_has_native_bf16(str(path)) is native
    assert cpu_has_native_bf16(str(tmp_path / 'missing')) is None


# ----------------------------------------------------- wrapper per device
def test_cpu_wrapper_config(native_bf16):
    cfg = dict(type='AmpOptimWrapper', loss_scale=512., optimizer=SGD,
               clip_grad=dict(max_norm=1.))
    out = amp_optim_wrapper_cfg(cfg, device='cpu')
    assert out == dict(type='AutocastOptimWrapper', dtype='bfloat16',
                       device_type='cpu', optimizer=SGD,
                       clip_grad=dict(max_norm=1.))
    assert cfg['type'] == 'AmpOptimWrapper'  # the input is left alone
    with pytest.raises(AmpConfigError, match='use --amp-dtype bfloat16'):
        amp_optim_wrapper_cfg(dict(cfg, dtype='float16'), device='cpu')
    with pytest.raises(AmpConfigError, match='OptimWrapper, AmpOptimWrapper '
                       'or AutocastOptimWrapper, got ZeroRedundancy'):
        amp_optim_wrapper_cfg(dict(type='ZeroRedundancyOptimizer'),
                              device='cpu')


def test_cuda_wrapper_config(cuda):
    out = amp_optim_wrapper_cfg(dict(optimizer=SGD))
    assert out == dict(type='AmpOptimWrapper', dtype='float16',
                       loss_scale='dynamic', optimizer=SGD)
    # the config's dtype and loss scale are honoured, the argument wins
    cfg = dict(type='AmpOptimWrapper', dtype='bfloat16', loss_scale=512.,
               optimizer=SGD)
    assert amp_optim_wrapper_cfg(cfg)['dtype'] == 'bfloat16'
    assert amp_optim_wrapper_cfg(cfg, 'float16') == dict(cfg,
                                                         dtype='float16')
    # a CPU config moved to a GPU gets the loss-scaled wrapper
    assert amp_optim_wrapper_cfg(
        dict(type='AutocastOptimWrapper', dtype='bfloat16',
             optimizer=SGD))['type'] == 'AmpOptimWrapper'


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_cuda_wrapper_has_mmengines_loss_scaler(cuda, amp_wrapper_on_cpu,
                                                dtype):
    """What the CUDA choice builds: mmengine's AmpOptimWrapper with its
    dynamic gradient scaler (for bfloat16 too, as mmengine does)."""
    wrapper = build_optim_wrapper(
        _ConvNet(), amp_optim_wrapper_cfg(dict(optimizer=SGD), dtype))
    assert type(wrapper).__name__ == 'AmpOptimWrapper'
    assert wrapper.cast_dtype == getattr(torch, dtype)
    assert wrapper.loss_scaler.is_enabled()
    assert wrapper.loss_scaler.get_scale() == 2.**16  # torch's dynamic start


# ------------------------------------------------- AutocastOptimWrapper
def test_autocast_wrapper_trains_in_bf16(device, native_bf16):
    """One step on ``device``: the layers compute in bfloat16, the
    parameters and their gradients stay float32 and move."""
    if device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        pytest.skip('this GPU has no bf16')
    torch.manual_seed(0)
    model = _ConvNet().to(device)
    wrapper = build_optim_wrapper(
        model, dict(type='AutocastOptimWrapper', device_type=device.type,
                    optimizer=SGD))
    assert isinstance(wrapper, AutocastOptimWrapper)
    assert not hasattr(wrapper, 'loss_scaler')
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(2, 3, 16, 16, device=device)
    with wrapper.optim_context(model):
        loss = model(x).float().pow(2).mean()
    wrapper.backward(loss)
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())
    wrapper.step()
    assert model.seen == [torch.bfloat16, torch.bfloat16]
    assert torch.isfinite(loss)
    for p, p0 in zip(model.parameters(), before):
        assert p.dtype == torch.float32 and not torch.equal(p, p0)
    # outside the context: float32 again
    model.seen.clear()
    model(x)
    assert model.seen == [torch.float32, torch.float32]


def test_autocast_wrapper_refuses_float16(cuda):
    with pytest.raises(AmpConfigError, match='use --amp-dtype bfloat16'):
        AutocastOptimWrapper(dtype='float16', device_type='cpu',
                             optimizer=torch.optim.SGD(
                                 _ConvNet().parameters(), lr=0.1))
    with pytest.raises(AmpConfigError, match='no loss scaler.*AmpOptim'):
        AutocastOptimWrapper(dtype='float16', device_type='cuda',
                             optimizer=torch.optim.SGD(
                                 _ConvNet().parameters(), lr=0.1))


def test_autocast_wrapper_resumes_a_loss_scaled_checkpoint(native_bf16):
    """A GPU run's optimizer state (with its ``loss_scaler``) loads on the
    CPU: the optimizer's state is restored, the scaler's left out."""
    model = _ConvNet()
    gpu_like = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    gpu_like.step()
    state = dict(gpu_like.state_dict(), loss_scaler=dict(scale=1024.))
    wrapper = AutocastOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    wrapper.load_state_dict(state)
    assert 'loss_scaler' in state  # the caller's dict is left alone
    loaded = wrapper.optimizer.state_dict()['state']
    assert torch.equal(loaded[0]['momentum_buffer'],
                       gpu_like.state_dict()['state'][0]['momentum_buffer'])
