//! Exponential moving average of the weights: the averaged model is what
//! gets validated and exported, because it is smoother than the last step.

use std::collections::HashMap;

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

/// Collects every float parameter of a model, flattened, by parameter id.
struct Collect<B: Backend> {
    values: HashMap<ParamId, Tensor<B, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let inner = param.val().inner();
        let n = inner.shape().num_elements();
        self.values.insert(param.id, inner.reshape([n]));
    }
}

/// Moves every parameter of the average towards the collected one.
struct Blend<B: Backend> {
    values: HashMap<ParamId, Tensor<B, 1>>,
    decay: f32,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, average, mapper) = param.consume();
        let updated = match self.values.remove(&id) {
            Some(current) => {
                let current = current.reshape(average.shape());
                average.mul_scalar(self.decay).add(current.mul_scalar(1.0 - self.decay))
            }
            // A parameter the trained model does not have cannot move.
            None => average,
        };
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// Effective decay at `step`: `min(decay, (1 + step) / (10 + step))`, the
/// usual warm-up so the average is not dominated by the random start.
pub fn decay_at(decay: f32, step: u64) -> f32 {
    let warm = (1.0 + step as f32) / (10.0 + step as f32);
    decay.min(warm)
}

/// `average <- decay * average + (1 - decay) * model`, parameter by parameter.
pub fn update<B: AutodiffBackend, M: AutodiffModule<B>>(
    average: M::InnerModule,
    model: &M,
    decay: f32,
) -> M::InnerModule {
    let mut collect = Collect::<B::InnerBackend> { values: HashMap::new() };
    model.visit(&mut collect);
    let mut blend = Blend { values: collect.values, decay };
    average.map(&mut blend)
}
