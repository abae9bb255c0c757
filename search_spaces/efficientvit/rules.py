"""Derivation rules of the EfficientViT family, shared by the configs, builders and op tables.

Pure functions of plain values (no torch, no config classes), so that an exported ``model.py``
can carry them verbatim.
"""

#: the seed paper's base widths C0..C4, depths L1..L4 and head widths (H0, H1) at multiplier 1
SEED_WIDTHS = (16, 24, 48, 96, 192)
SEED_DEPTHS = (2, 3, 5, 2)
SEED_HEAD_WIDTHS = (1280, 2304)
SEED_KEY_DIM = 16
SEED_EXPANSION = 4

def hidden_width(channels, ratio):
    """Hidden width of an MBConv, relative to the channels it is given."""
    return int(round(channels * ratio))


def make_divisible(value, divisor=8):
    """Nearest multiple of ``divisor``, bumped up when rounding lost more than 10 % (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def lite_heads(channels, dim, heads_ratio):
    """Heads of LiteMLA as the released code derives them: int(C // dim * heads_ratio)."""
    return int(channels // dim * heads_ratio)


def seed_widths(width_mult):
    return tuple(make_divisible(c * width_mult) for c in SEED_WIDTHS)


def seed_head_widths(width_mult):
    """Head widths scaled by the multiplier, floored to a multiple of 8."""
    return tuple(int(c * width_mult) // 8 * 8 for c in SEED_HEAD_WIDTHS)


def seed_heads(channels, attention_ratio):
    """Heads of the seed model's linear attention: inner width ratio*C in heads of 16."""
    return max(1, attention_ratio * channels // SEED_KEY_DIM)


def seed_mid(c_in, c_out, expansion_basis):
    """Hidden width of a downsampling MBConv, from its output (CoAtNet) or input channels."""
    return SEED_EXPANSION * (c_out if expansion_basis == "output" else c_in)


def downsampled_side(size):
    """Side after an odd-kernel conv with padding k//2 and stride 2 (and a ceil-mode 2x2 pool)."""
    return (size - 1) // 2 + 1
