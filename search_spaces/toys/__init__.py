"""The hardware study's toy models as small design spaces, and their named architectures.

Four spaces, one per experiment of the study (docs: hardware study): ``toy-conv`` (depthwise
versus standard convolutions), ``mbconv-stack`` (fused versus unfused MBConv), ``conv-stack``
(high resolution versus many channels) and ``attention-stack`` (cheaper self-attention). Their
inputs are feature maps (1, C, R, R) except for ``toy-conv``, which takes images.
"""

from search_spaces.toys import attention_stack, conv_stack, mbconv_stack, toy_conv
from search_spaces.toys.attention_stack import ATTENTION_RESOLUTIONS, ATTENTION_VARIANTS, AttentionStackConfig
from search_spaces.toys.common import ToyArchitecture
from search_spaces.toys.conv_stack import CONV_STACK_CHANNELS, RESOLUTION_SCENARIOS, ConvStackConfig
from search_spaces.toys.mbconv_stack import (
    MBCONV_GRID_CHANNELS,
    MBCONV_GRID_EXPANSIONS,
    MBCONV_GRID_RESOLUTIONS,
    MBConvStackConfig,
)
from search_spaces.toys.toy_conv import TOY_CONV_MODELS, TOY_CONV_PAIRS, ToyConvConfig, fit_layers

#: space name -> config class (``from_dict`` constructor)
TOY_SPACES: dict[str, type] = {
    cls.space: cls for cls in (ToyConvConfig, MBConvStackConfig, ConvStackConfig, AttentionStackConfig)
}

#: every named toy model, in the order of the study's experiments
TOY_ARCHITECTURES: tuple[ToyArchitecture, ...] = (
    *toy_conv.ARCHITECTURES,
    *mbconv_stack.ARCHITECTURES,
    *conv_stack.ARCHITECTURES,
    *attention_stack.ARCHITECTURES,
)

__all__ = [
    "ATTENTION_RESOLUTIONS",
    "ATTENTION_VARIANTS",
    "CONV_STACK_CHANNELS",
    "MBCONV_GRID_CHANNELS",
    "MBCONV_GRID_EXPANSIONS",
    "MBCONV_GRID_RESOLUTIONS",
    "RESOLUTION_SCENARIOS",
    "TOY_ARCHITECTURES",
    "TOY_CONV_MODELS",
    "TOY_CONV_PAIRS",
    "TOY_SPACES",
    "AttentionStackConfig",
    "ConvStackConfig",
    "MBConvStackConfig",
    "ToyArchitecture",
    "ToyConvConfig",
    "fit_layers",
]
