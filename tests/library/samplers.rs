//! The facts method.md derives from the sampler equations.

use crate::common;

use std::cell::RefCell;

use burn::tensor::Tensor;
use common::{pseudo_random, tensor, values, Cpu, Oracle};
use realdenoise::denoiser::sample;
use realdenoise::diffusion::{blend, Predictor, SamplerKind, Schedule, ScheduleError};

const T: usize = 100;
const SHAPE: [usize; 4] = [1, 3, 8, 12];

fn pair() -> (Tensor<Cpu, 4>, Tensor<Cpu, 4>) {
    let clean = pseudo_random(3 * 8 * 12, 1);
    let noisy: Vec<f32> = clean.iter().zip(pseudo_random(3 * 8 * 12, 2)).map(|(c, n)| c + 0.3 * (n - 0.5)).collect();
    (tensor(clean, SHAPE), tensor(noisy, SHAPE))
}

#[test]
fn both_samplers_return_x0_exactly_with_a_perfect_predictor() {
    let (clean, noisy) = pair();
    let oracle = Oracle(clean.clone());
    for kind in [SamplerKind::Origin, SamplerKind::Improved] {
        for steps in [1, 2, 3, 7, 10, 33, T] {
            let schedule = Schedule::new(T, steps, 1.0).unwrap();
            let out = sample(&oracle, kind.sampler::<Cpu>().as_ref(), &schedule, noisy.clone());
            assert_eq!(values(out), values(clean.clone()), "{kind} with {steps} steps is not exactly x0");
        }
    }
}

/// Predicts a different image at every step and records each prediction.
struct Recording {
    predictions: RefCell<Vec<(usize, Tensor<Cpu, 4>)>>,
}

impl Predictor<Cpu> for Recording {
    fn predict(&self, x_t: Tensor<Cpu, 4>, t: usize) -> Tensor<Cpu, 4> {
        let prediction = x_t.mul_scalar(0.5).add_scalar(0.003 * t as f32);
        self.predictions.borrow_mut().push((t, prediction.clone()));
        prediction
    }
}

#[test]
fn improved_sampling_is_the_stride_weighted_mean_of_the_predictions() {
    let (_, noisy) = pair();
    for steps in [1, 3, 4, 9] {
        let recording = Recording { predictions: RefCell::new(Vec::new()) };
        let schedule = Schedule::new(T, steps, 1.0).unwrap();
        let out = values(sample(&recording, SamplerKind::Improved.sampler::<Cpu>().as_ref(), &schedule, noisy.clone()));

        let strides: Vec<usize> = schedule.transitions().map(|(t, t_prev)| t - t_prev).collect();
        assert_eq!(strides.iter().sum::<usize>(), T);
        let predictions = recording.predictions.into_inner();
        assert_eq!(predictions.len(), steps);
        if steps > 1 {
            // The predictions really differ, so the mean is not a single prediction.
            let first = values(predictions[0].1.clone());
            let last = values(predictions[steps - 1].1.clone());
            let spread = first.iter().zip(&last).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(spread > 0.05, "predictions too similar: {spread}");
        }
        let mut mean = vec![0.0f32; out.len()];
        for ((_, prediction), stride) in predictions.into_iter().zip(&strides) {
            for (m, p) in mean.iter_mut().zip(values(prediction)) {
                *m += *stride as f32 / T as f32 * p;
            }
        }
        let worst = out.iter().zip(&mean).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{steps} steps: off the weighted mean by {worst}");
    }
}

#[test]
fn origin_sampling_returns_the_last_prediction() {
    let (_, noisy) = pair();
    let recording = Recording { predictions: RefCell::new(Vec::new()) };
    let schedule = Schedule::new(T, 5, 1.0).unwrap();
    let out = values(sample(&recording, SamplerKind::Origin.sampler::<Cpu>().as_ref(), &schedule, noisy));
    let (last_t, last) = recording.predictions.into_inner().pop().unwrap();
    assert_eq!(last_t, 20);
    assert_eq!(out, values(last));
}

#[test]
fn strength_zero_returns_the_input_unchanged() {
    let (clean, noisy) = pair();
    let schedule = Schedule::new(T, 4, 0.0).unwrap();
    assert!(schedule.is_empty());
    let out = sample(&Oracle(clean), SamplerKind::Improved.sampler::<Cpu>().as_ref(), &schedule, noisy.clone());
    assert_eq!(values(out), values(noisy));
}

#[test]
fn a_step_takes_the_model_output_and_returns_the_next_state_and_the_prediction() {
    let (clean, noisy) = pair();
    let x_t = blend(clean.clone(), noisy.clone(), T, T);
    let (x_prev, x0_hat) = SamplerKind::Origin.sampler::<Cpu>().step(clean.clone(), x_t.clone(), &noisy, T, 60, T);
    assert_eq!(values(x0_hat), values(clean.clone()));
    assert_eq!(values(x_prev), values(blend(clean.clone(), noisy.clone(), 60, T)));
    // Improved: x_t - D(x0_hat, y, t) + D(x0_hat, y, t_prev); from x_T = y
    // with the true x0 that is D(x0, y, t_prev) exactly.
    let (x_prev, x0_hat) = SamplerKind::Improved.sampler::<Cpu>().step(clean.clone(), x_t, &noisy, T, 60, T);
    assert_eq!(values(x0_hat), values(clean.clone()));
    assert_eq!(values(x_prev), values(blend(clean, noisy, 60, T)));
}

#[test]
fn blend_hits_both_ends_exactly() {
    let (clean, noisy) = pair();
    assert_eq!(values(blend(clean.clone(), noisy.clone(), 0, T)), values(clean.clone()));
    assert_eq!(values(blend(clean.clone(), noisy.clone(), T, T)), values(noisy.clone()));
    let half = values(blend(clean.clone(), noisy.clone(), T / 2, T));
    for ((h, c), n) in half.iter().zip(values(clean)).zip(values(noisy)) {
        assert!((h - (c + n) / 2.0).abs() < 1e-6);
    }
}

#[test]
fn schedules_are_strided_descending_and_capped() {
    let schedule = Schedule::new(100, 4, 1.0).unwrap();
    assert_eq!(schedule.transitions().collect::<Vec<_>>(), vec![(100, 75), (75, 50), (50, 25), (25, 0)]);
    let light = Schedule::new(100, 4, 0.3).unwrap();
    assert_eq!(light.start(), 30);
    assert_eq!(light.transitions().map(|(a, b)| a - b).sum::<usize>(), 30);
    let capped = Schedule::new(10, 50, 0.5).unwrap();
    assert_eq!(capped.len(), 5);
    assert_eq!(Schedule::new(100, 0, 1.0), Err(ScheduleError::ZeroSteps));
    assert_eq!(Schedule::new(100, 2, 1.5), Err(ScheduleError::Strength(1.5)));
    assert!(matches!(Schedule::new(100, 2, f32::NAN), Err(ScheduleError::Strength(_))));
}
