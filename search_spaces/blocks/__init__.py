"""Building blocks the families compose: conv layers and MBConv variants, re-parameterisable
convs, the LowFormer/EfficientViT backbone and head, the token mixers (:mod:`.mixers`) and the
config base.

Families import from here and never from each other; this package imports no family. Modules
follow the families' layout: ``modules.py`` and ``network.py`` (torch only, carried verbatim by
exported ``model.py`` files), ``optable.py`` (their op-table rows) and ``rules.py`` (pure
derivation rules shared by both).
"""
