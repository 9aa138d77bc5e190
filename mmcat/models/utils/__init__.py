from .ckpt_convert import cat_converter, is_authors_layout

__all__ = ['cat_converter', 'is_authors_layout']
