"""The timm-style factory of an exported ``model.py``: ``num_classes``, ``features_only``,
``out_indices`` and ``feature_info``, for any network whose ``backbone`` returns a dict of stage
outputs and whose ``head`` ends in a ``classifier``.

This module is both used in place (tests, ``explorer``) and copied into every exported
``model.py`` after the model sources, so it imports nothing but torch.
"""

from torch import nn


class FeatureInfo(list):
    """timm-like feature metadata: one ``{"num_chs", "reduction", "module"}`` dict per output."""

    def channels(self):
        return [info["num_chs"] for info in self]

    def reduction(self):
        return [info["reduction"] for info in self]

    def module_name(self):
        return [info["module"] for info in self]


def stage_info(keys, channels, first_reduction):
    """Feature metadata of stages that each halve the resolution, the first at ``first_reduction``."""
    return FeatureInfo({"num_chs": c, "reduction": first_reduction * 2 ** i, "module": key}
                       for i, (key, c) in enumerate(zip(keys, channels)))


def check_out_indices(out_indices, stages):
    """``None`` -> every stage; otherwise indices into ``stages``, validated."""
    if out_indices is None:
        return tuple(range(len(stages)))
    indices = tuple(out_indices)
    bad = [i for i in indices if not isinstance(i, int) or not 0 <= i < len(stages)]
    if bad or not indices:
        raise ValueError(f"invalid out_indices {out_indices!r}; allowed: a non-empty subset of "
                         f"{list(range(len(stages)))} ({', '.join(stages.module_name())})")
    return indices


def check_num_classes(num_classes):
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 0):
        raise ValueError(f"invalid num_classes {num_classes!r}; allowed: an integer >= 0 (0: no classifier)")


class FeatureExtractor(nn.Module):
    """The backbone alone, returning a list of stage outputs (timm's ``features_only``).

    Its state-dict keys are the classifier's ``backbone.*`` keys, so a classifier checkpoint
    loads with ``strict=False``.
    """

    def __init__(self, backbone, stages, out_indices=None):
        super().__init__()
        self.out_indices = check_out_indices(out_indices, stages)
        self.backbone = backbone
        self.feature_info = FeatureInfo(stages[i] for i in self.out_indices)

    def forward(self, x):
        features = self.backbone(x)
        return [features[key] for key in self.feature_info.module_name()]


def build_network(network, stages, spec, num_classes=None, features_only=False, out_indices=None):
    """Classifier (``num_classes`` outputs, 0 for pooled features) or feature extractor.

    ``network(spec)`` builds the classifier; ``stages(spec)`` is its :class:`FeatureInfo`.
    """
    spec = dict(spec)
    if features_only:
        return FeatureExtractor(network(spec).backbone, stages(spec), out_indices).eval()
    check_num_classes(num_classes)
    if num_classes:
        spec["num_classes"] = num_classes
    model = network(spec)
    if num_classes == 0:
        model.head.classifier = nn.Identity()
    model.num_classes = num_classes if num_classes is not None else spec["num_classes"]
    model.feature_info = stages(spec)
    return model.eval()
