"""mmcat's DropPath: mmcv's masks and gradients, in one multiplication."""
import pytest
import torch
from mmcv.cnn.bricks import DropPath as MMCVDropPath

from mmcat.models.layers.drop import DropPath


def test_same_masks_values_and_gradients_as_mmcv():
    x = torch.randn(64, 5, 6, 7, requires_grad=True)
    grads = []
    outs = []
    for layer in (MMCVDropPath(0.3), DropPath(0.3)):
        torch.manual_seed(3)
        out = layer.train()(x)
        out.backward(torch.ones_like(out))
        outs.append(out.detach())
        grads.append(x.grad)
        x.grad = None
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(grads[1], grads[0])
    dropped = (outs[1].flatten(1) == 0).all(1)
    assert 0 < int(dropped.sum()) < 64         # some samples of each kind
    kept = ~dropped
    torch.testing.assert_close(outs[1][kept], x.detach()[kept] / 0.7)


def test_identity_in_eval_and_at_zero_rate():
    x = torch.randn(4, 3, 2)
    assert DropPath(0.5).eval()(x) is x
    assert DropPath(0.).train()(x) is x


def test_one_multiplication_forward_and_backward():
    """The map is read once forward (mmcv: a division and a product) and
    the gradient once backward."""
    x = torch.randn(8, 16, 16, 4, requires_grad=True)
    with torch.profiler.profile(record_shapes=True) as prof:
        DropPath(0.2).train()(x).sum().backward()
    full = [e for e in prof.events()
            if e.name in ('aten::mul', 'aten::div')
            and e.input_shapes and list(e.input_shapes[0]) == [8, 16, 16, 4]]
    assert len(full) == 2, [e.name for e in full]


@pytest.mark.parametrize('rate', [-0.1, 1.0])
def test_rate_outside_the_unit_interval_is_an_error(rate):
    with pytest.raises(ValueError, match='drop_prob must be in'):
        DropPath(rate)
