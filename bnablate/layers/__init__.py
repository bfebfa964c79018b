"""Layer factories: norms (incl. the from-scratch BN), activations, and the block factory that places them."""

from .activations import ACTIVATIONS, create_act_layer
from .blocks import BIASES, DROPOUTS, PLACEMENTS, VariantError, block_order, has_norm, make_block, validate_variant
from .norm import (BATCH_NORM_TYPES, BATCH_STAT_NORMS, NORMS, batch_norm_layers, create_norm_layer, get_norm_layer,
                   norm_options)
from .scratch_bn import ScratchBatchNorm

__all__ = ["ACTIVATIONS", "BATCH_NORM_TYPES", "BATCH_STAT_NORMS", "BIASES", "DROPOUTS", "NORMS", "PLACEMENTS",
           "ScratchBatchNorm", "VariantError", "batch_norm_layers", "block_order", "create_act_layer",
           "create_norm_layer", "get_norm_layer", "has_norm", "make_block", "norm_options", "validate_variant"]
