# Fine-tune Mask R-CNN with a CAT-S backbone on your own COCO-format dataset
# (boxes and polygon or RLE masks). Copy this file, edit the block below, then:
#   python tools/analysis_tools/browse_dataset.py MY_CONFIG --out vis --num 8
#   python tools/train.py MY_CONFIG
# docs/custom_dataset.md walks through it. Everything else (model, the
# paper's multi-scale pipeline, AdamW recipe, 1x schedule) is
# mask-rcnn_cat_s_ms-1x_coco.py's.
_base_ = '../mask-rcnn_cat_s_ms-1x_coco.py'

# ----------------------------------------------------------- your dataset
data_root = 'data/my_dataset/'
train_ann_file = 'annotations/train.json'  # relative to data_root
train_img_dir = 'images/train/'            # where train.json's file_names are
val_ann_file = 'annotations/val.json'
val_img_dir = 'images/val/'
# The names of the annotation file's categories, in the order of their ids
# (`python tools/analysis_tools/browse_dataset.py MY_CONFIG --print-classes`
# prints this line from train_ann_file). Box and mask heads follow.
classes = ('my_class_a', 'my_class_b')
# Start from ImageNet CAT-S weights (None: from scratch) ...
pretrained = 'checkpoints/cat_small_in1k.pth'
# ... or from a COCO-trained CAT-S Mask R-CNN (its 80-class box and mask
# predictors are left out: mmengine reports the size mismatch).
load_from = None
# -------------------------------------------------------------------------

metainfo = dict(classes=classes)
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)
                  if pretrained else None),
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)),
        mask_head=dict(num_classes=len(classes))))

train_dataloader = dict(
    dataset=dict(
        data_root=data_root, metainfo=metainfo, ann_file=train_ann_file,
        data_prefix=dict(img=train_img_dir)))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root, metainfo=metainfo, ann_file=val_ann_file,
        data_prefix=dict(img=val_img_dir)))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator
