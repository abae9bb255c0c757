"""The timm-style factory of an exported ``model.py``: ``num_classes``, ``features_only``,
``out_indices`` and ``feature_info``.

This module is both used in place (tests, ``explorer``) and copied into every exported
``model.py`` after the model sources, so it imports nothing but torch and the LowFormer builder.
"""

from torch import nn

from search_spaces.lowformer.network import FEATURE_KEYS, LowFormer, LowFormerBackbone

FEATURE_REDUCTIONS = (2, 4, 8, 16, 32)


class FeatureInfo(list):
    """timm-like feature metadata: one ``{"num_chs", "reduction", "module"}`` dict per output."""

    def channels(self):
        return [info["num_chs"] for info in self]

    def reduction(self):
        return [info["reduction"] for info in self]

    def module_name(self):
        return [info["module"] for info in self]


def check_out_indices(out_indices):
    """``None`` -> every stage; otherwise indices into ``FEATURE_KEYS``, validated."""
    if out_indices is None:
        return tuple(range(len(FEATURE_KEYS)))
    indices = tuple(out_indices)
    bad = [i for i in indices if not isinstance(i, int) or not 0 <= i < len(FEATURE_KEYS)]
    if bad or not indices:
        raise ValueError(f"invalid out_indices {out_indices!r}; allowed: a non-empty subset of "
                         f"{list(range(len(FEATURE_KEYS)))} ({', '.join(FEATURE_KEYS)})")
    return indices


def feature_info(spec, out_indices=None):
    """Channels and stride of each selected stage output of the backbone built from ``spec``."""
    return FeatureInfo(
        {"num_chs": spec["widths"][i], "reduction": FEATURE_REDUCTIONS[i], "module": FEATURE_KEYS[i]}
        for i in check_out_indices(out_indices)
    )


class LowFormerFeatures(nn.Module):
    """The backbone alone, returning a list of stage outputs (timm's ``features_only``).

    Its state-dict keys are the classifier's ``backbone.*`` keys, so a classifier checkpoint
    loads with ``strict=False``.
    """

    def __init__(self, spec, out_indices=None):
        super().__init__()
        self.out_indices = check_out_indices(out_indices)
        self.backbone = LowFormerBackbone(spec)
        self.feature_info = feature_info(spec, self.out_indices)

    def forward(self, x):
        features = self.backbone(x)
        return [features[FEATURE_KEYS[i]] for i in self.out_indices]


def build_lowformer(spec, num_classes=None, features_only=False, out_indices=None):
    """Classifier (``num_classes`` outputs, 0 for pooled features) or feature extractor."""
    spec = dict(spec)
    if features_only:
        return LowFormerFeatures(spec, out_indices).eval()
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 0):
        raise ValueError(f"invalid num_classes {num_classes!r}; allowed: an integer >= 0 (0: no classifier)")
    if num_classes:
        spec["num_classes"] = num_classes
    model = LowFormer(spec)
    if num_classes == 0:
        model.head.classifier = nn.Identity()
    model.num_classes = num_classes if num_classes is not None else spec["num_classes"]
    model.feature_info = feature_info(spec)
    return model.eval()
