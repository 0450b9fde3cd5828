//! The degradation operator `D(x0, y, t) = (1 - t/T) x0 + (t/T) y`.

use burn::tensor::{backend::Backend, Tensor};

/// Blend between the clean image `x0` (t = 0) and the real noisy image `y`
/// (t = T). `D(x0, y, 0)` is exactly `x0` and `D(x0, y, T)` exactly `y`,
/// which the samplers rely on for bit-exact results with a perfect predictor.
pub fn blend<B: Backend, const D: usize>(
    x0: Tensor<B, D>,
    y: Tensor<B, D>,
    t: usize,
    timesteps: usize,
) -> Tensor<B, D> {
    let alpha = t as f32 / timesteps as f32;
    x0.mul_scalar(1.0 - alpha).add(y.mul_scalar(alpha))
}

/// The same blend with one step per batch item, as training draws them:
/// `x0`, `y`: `[batch, c, h, w]`; `t`: `[batch]`.
pub fn blend_batch<B: Backend>(
    x0: Tensor<B, 4>,
    y: Tensor<B, 4>,
    t: Tensor<B, 1>,
    timesteps: usize,
) -> Tensor<B, 4> {
    let [batch] = t.dims();
    let alpha = t.div_scalar(timesteps as f32).reshape([batch, 1, 1, 1]);
    let keep = alpha.clone().neg().add_scalar(1.0);
    x0.mul(keep).add(y.mul(alpha))
}
