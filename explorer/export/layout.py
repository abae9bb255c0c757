"""The layout of an exported ``model.py``: its sections, and the definitions each holds in order.

This is the file format of an export, kept apart from where the definitions live, so that moving
code between modules of the project changes no exported file. A template line names one
top-level definition (a class, function or constant, with the comment lines just above it);
blank lines are copied as they are. Each section is titled with the module its definitions came
from when the format was fixed. A family's ``model.py`` is its sections, in the order of
:data:`FAMILY_SECTIONS`, after the third-party imports they use.
"""

from __future__ import annotations

#: section title -> template
SECTIONS: dict[str, str] = {
    "explorer.export.factory": """\
FeatureInfo


stage_info


check_out_indices


check_num_classes


FeatureExtractor


build_network
""",
    "search_spaces.fmvit.rules": """\
FORMS
MULTI_GROUPS

STEM_ASYMMETRIC


rlmhsa_heads


fmb_width


pointwise_groups


pooled_side
""",
    "search_spaces.fmvit.modules": """\
fold_batchnorm


ConvBN


RepConv


make_conv


pointwise


_fold_into


PreNormFold


Stem


PooledPatchEmbed


patch_embed


ConvMLP


CFB


SharedProjectionAttention


RLMHSA


FMB


FMViTHead


_reparameterize_


reparameterize
""",
    "search_spaces.lowformer.rules": """\
MBCONV_VARIANTS

GROUP_ATTENTION_KERNELS
GROUP_ATTENTION_TOKEN_RATIO

FULL_WIDTH_ATTENTION


expanded


divisor_heads


heads_and_dim


quadratic_attention


transposed_geometry


local_fused


attention_prenorm


reduced_side


stride2_side
""",
    "search_spaces.mcga.rules": """\
PROJECTIONS
PATCH_EMBEDS


patch_geometry


conv_side


query_projection


fusion_projection
""",
    "search_spaces.mcga.modules": """\
_split_token_heads


_merge_token_heads


attend


ConvPatchEmbed


TokenMixer


MCGAAttention


LinearMLP


MCGABlock


MCGAHead
""",
    "search_spaces.lowformer.modules": """\
ConvLayer


FusedMBConv


MBConv


Residual


conv_block


_upsampler


SpatialReduction


_split_heads


_merge_heads


Lowtention


MultiHeadSelfAttention


LiteMLA


ReducedResolution


GroupAttention


MLP


token_mixer


LowFormerBlock


ClsHead
""",
    "search_spaces.lowformer.network": """\
LOWFORMER_FEATURE_KEYS


Backbone


Classifier


lowformer_backbone


LowFormer
""",
    "explorer.export.families.lowformer": """\
lowformer_stages


build_lowformer
""",
    "search_spaces.efficientvit.rules": """\
SEED_WIDTHS
SEED_DEPTHS
SEED_HEAD_WIDTHS
SEED_KEY_DIM
SEED_EXPANSION

hidden_width


make_divisible


lite_heads


seed_widths


seed_head_widths


seed_heads


seed_mid


downsampled_side
""",
    "search_spaces.efficientvit.modules": """\
DSConv


EfficientViTBlock


SeedDownsample


ReLULinearAttention


SeedFFN


SeedAttentionBlock


SeedHead
""",
    "search_spaces.efficientvit.network": """\
EFFICIENTVIT_FEATURE_KEYS


efficientvit_backbone


efficientvit


efficientvit_seed
""",
    "explorer.export.families.efficientvit": """\
efficientvit_stages


efficientvit_seed_stages


build_efficientvit


build_efficientvit_seed
""",
    "search_spaces.fmvit.network": """\
FMVIT_FEATURE_KEYS


FMViTBackbone


FMViT
""",
    "explorer.export.families.fmvit": """\
fmvit_stages


build_fmvit
""",
    "search_spaces.mcga.network": """\
MCGA_FEATURE_KEYS


MCGABackbone


MCGA
""",
    "explorer.export.families.mcga": """\
mcga_stages


build_mcga
""",
}

_FACTORY = ("explorer.export.factory",)
_SHARED = ("search_spaces.fmvit.rules", "search_spaces.fmvit.modules", "search_spaces.lowformer.rules",
           "search_spaces.mcga.rules", "search_spaces.mcga.modules", "search_spaces.lowformer.modules")
_EFFICIENTVIT = (*_FACTORY, "search_spaces.efficientvit.rules", *_SHARED, "search_spaces.efficientvit.modules",
                 "search_spaces.lowformer.network", "search_spaces.efficientvit.network",
                 "explorer.export.families.efficientvit")

#: export family (space name) -> its sections, in order
FAMILY_SECTIONS: dict[str, tuple[str, ...]] = {
    "lowformer": (*_FACTORY, *_SHARED, "search_spaces.lowformer.network", "explorer.export.families.lowformer"),
    "efficientvit": _EFFICIENTVIT,
    "efficientvit-seed": _EFFICIENTVIT,
    "fmvit": (*_FACTORY, "search_spaces.fmvit.rules", "search_spaces.fmvit.modules", "search_spaces.fmvit.network",
              "explorer.export.families.fmvit"),
    "mcga": (*_FACTORY, "search_spaces.mcga.rules", "search_spaces.mcga.modules", "search_spaces.mcga.network",
             "explorer.export.families.mcga"),
}
