//! Linear-interpolation diffusion: the forward blend used in training and the
//! two deterministic reverse samplers, one step each. The loop that runs the
//! steps is the pipeline's, in [`crate::denoiser`].

mod forward;
mod improved;
mod origin;
mod sampler;
mod schedule;

pub use forward::{blend, blend_batch};
pub use improved::ImprovedSampler;
pub use origin::OriginSampler;
pub use sampler::{Predictor, Sampler, SamplerKind};
pub use schedule::{Schedule, ScheduleError};

use burn::tensor::{backend::Backend, Tensor};

impl<B: Backend> Predictor<B> for crate::model::UNet<B> {
    fn predict(&self, x_t: Tensor<B, 4>, t: usize) -> Tensor<B, 4> {
        let batch = x_t.dims()[0];
        let steps = Tensor::<B, 1>::full([batch], t as f32, &x_t.device());
        self.forward(x_t, steps)
    }
}
