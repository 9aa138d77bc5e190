from .ckpt_convert import cat_converter, embedding_conv_to, is_authors_layout

__all__ = ['cat_converter', 'embedding_conv_to', 'is_authors_layout']
