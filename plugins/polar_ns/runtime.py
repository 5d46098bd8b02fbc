# ==================================================================================================
# plugins/polar_ns: Polar Express Newton-Schulz (PR #1344; records 04-23 (PR #1787) and 04-27)
# Each iteration has its own (a, b, c), minimax-optimal for the iteration count, instead of Muon's fixed
# (3.4445, -4.7750, 2.0315).
# ==================================================================================================
from golfc.runtime.prelude import *  # editors and tests only: blanked when emitted

POLAR_NS_COEFFS = (  # (a, b, c) of iteration 1..5; later iterations repeat the last (converged) tuple
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def polar_express_ns(G, steps, dtype=torch.bfloat16):
    """Orthogonalise a stack G (n, r, c), r <= c -> (n, r, c) bf16: X = G / (||G||_F + 1e-7) in bf16, then per
    iteration k: A = X X^T, X = a_k X + (b_k A + c_k A A) X (dtype: tests run it in fp32 too)."""
    X = G.to(dtype)
    X = X / (torch.linalg.vector_norm(X, dim=(1, 2), keepdim=True) + 1e-7)
    for k in range(steps):
        a, b, c = POLAR_NS_COEFFS[min(k, len(POLAR_NS_COEFFS) - 1)]
        A = X @ X.mT  # (n, r, r)
        X = a * X + (b * A + c * (A @ A)) @ X
    return X


class PolarExpress:
    """muon_transform stage orthogonalise (exclusive): Muon compiles it in place of its NS5 when COMPILE is on."""

    def orthogonalise(self, G, steps):
        return polar_express_ns(G, steps)


POLAR_NS = PolarExpress()
