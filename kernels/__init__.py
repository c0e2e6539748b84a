"""Fused training ops. Each public function dispatches by the tensor's device (DESIGN.md section 6).

For now only the plain-torch references exist; the Triton and torch_npu implementations land
beside them with the kernels issue, behind the same signatures.
"""

from tandem.kernels.reference import apply_rope, attention, fused_linear_cross_entropy, rms_norm, swiglu

__all__ = ["apply_rope", "attention", "fused_linear_cross_entropy", "rms_norm", "swiglu"]
