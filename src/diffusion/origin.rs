use burn::tensor::{backend::Backend, Tensor};

use super::{blend, Predictor, Sampler};

/// Origin sampling: `x_{t_prev} = D(x0_hat, y, t_prev)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginSampler;

impl<B: Backend> Sampler<B> for OriginSampler {
    fn step(
        &self,
        predictor: &dyn Predictor<B>,
        x_t: Tensor<B, 4>,
        y: &Tensor<B, 4>,
        t: usize,
        t_prev: usize,
        timesteps: usize,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let x0_hat = predictor.predict(x_t, t);
        let x_prev = blend(x0_hat.clone(), y.clone(), t_prev, timesteps);
        (x_prev, x0_hat)
    }
}
