use burn::tensor::{backend::Backend, Tensor};

use super::{blend, Sampler};

/// Origin sampling: `x_{t_prev} = D(x0_hat, y, t_prev)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginSampler;

impl<B: Backend> Sampler<B> for OriginSampler {
    fn step(
        &self,
        x0_hat: Tensor<B, 4>,
        _x_t: Tensor<B, 4>,
        y: &Tensor<B, 4>,
        _t: usize,
        t_prev: usize,
        timesteps: usize,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        (blend(x0_hat.clone(), y.clone(), t_prev, timesteps), x0_hat)
    }
}
