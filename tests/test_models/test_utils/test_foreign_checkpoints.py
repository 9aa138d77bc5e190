"""The CAT authors' ImageNet files (with a pickled yacs config) load with
weights_only kept on, and nothing of yacs runs."""
import torch

from mmcat.models import CAT
from mmcat.models.utils.foreign_checkpoints import \
    register_foreign_config_stand_ins
from mmcat.testing.authors_files import save_authors_imagenet_file
from mmcat.testing.cat_reference import ReferenceCAT

MINI = dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))


def test_authors_imagenet_file_loads_through_init_cfg(tmp_path):
    ref = ReferenceCAT(**MINI, classification=True,
                       num_classes=10).randomize_(7).eval()
    path = tmp_path / 'cat_mini_in1k.pth'
    ran = save_authors_imagenet_file(str(path), ref.state_dict())
    model = CAT(arch=MINI, out_indices=(3, ), drop_path_rate=0.,
                init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], ref(x)[0], atol=1e-4,
                                   rtol=1e-4)
    assert ran == []
    ckpt = torch.load(path, weights_only=True)
    assert ckpt['config']['MODEL']['TYPE'] == 'cat'


def test_register_is_idempotent():
    register_foreign_config_stand_ins()
    before = set(map(repr, torch.serialization.get_safe_globals()))
    register_foreign_config_stand_ins()
    assert set(map(repr, torch.serialization.get_safe_globals())) == before
