"""The plain-torch definitions of the fused ops, the meaning of "correct" for every implementation.

Each lives beside its kernels in ``op_*.py``; this module gathers them under the public names.
"""

from tandem.kernels.op_attention import reference as attention
from tandem.kernels.op_cross_entropy import reference as fused_linear_cross_entropy
from tandem.kernels.op_rms_norm import reference as rms_norm
from tandem.kernels.op_rope import reference as apply_rope
from tandem.kernels.op_swiglu import reference as swiglu

__all__ = ["apply_rope", "attention", "fused_linear_cross_entropy", "rms_norm", "swiglu"]
