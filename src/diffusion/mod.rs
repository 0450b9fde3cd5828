//! Linear-interpolation diffusion: the forward blend used in training and the
//! two deterministic reverse samplers.

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

/// Runs a whole schedule on one image batch, starting from `y`; returns `y`
/// itself when the schedule is empty (strength 0). Callers that report
/// progress or can be cancelled write this loop themselves.
pub fn sample<B: Backend>(
    predictor: &dyn Predictor<B>,
    sampler: &dyn Sampler<B>,
    schedule: &Schedule,
    y: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let mut x = y.clone();
    for (t, t_prev) in schedule.transitions() {
        x = sampler.step(predictor, x, &y, t, t_prev, schedule.timesteps()).0;
    }
    x
}

impl<B: Backend> Predictor<B> for crate::model::UNet<B> {
    fn predict(&self, x_t: Tensor<B, 4>, t: usize) -> Tensor<B, 4> {
        let batch = x_t.dims()[0];
        let steps = Tensor::<B, 1>::full([batch], t as f32, &x_t.device());
        self.forward(x_t, steps)
    }
}
