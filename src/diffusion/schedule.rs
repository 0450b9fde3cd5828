//! Which steps of the trained `T` a sampling run visits.

use serde::{Deserialize, Serialize};

/// Why sampling options were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("steps must be at least 1 (got 0)")]
    ZeroSteps,
    #[error("strength must be a number between 0 and 1 (got {0})")]
    Strength(f32),
    #[error("the model's T must be at least 1")]
    ZeroTimesteps,
}

/// A strided, descending subset of `T, ..., 0`, starting at
/// `round(strength * T)`.
///
/// Strength 1 treats the input as the fully noisy `y = x_T`; a lower strength
/// treats it as less noisy and denoises more lightly; strength 0 visits no
/// step and returns the input unchanged. The number of network evaluations
/// is `steps`, capped at the start step (strides are at least 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    timesteps: usize,
    /// Descending, first = start step, last = 0 (empty when strength is 0).
    points: Vec<usize>,
}

impl Schedule {
    pub fn new(timesteps: usize, steps: usize, strength: f32) -> Result<Self, ScheduleError> {
        if timesteps == 0 {
            return Err(ScheduleError::ZeroTimesteps);
        }
        if steps == 0 {
            return Err(ScheduleError::ZeroSteps);
        }
        if !(0.0..=1.0).contains(&strength) {
            return Err(ScheduleError::Strength(strength));
        }
        let start = (strength as f64 * timesteps as f64).round() as usize;
        let evaluations = steps.min(start);
        let points = if evaluations == 0 {
            Vec::new()
        } else {
            (0..=evaluations)
                .map(|k| {
                    let remaining = (evaluations - k) as f64 / evaluations as f64;
                    (start as f64 * remaining).round() as usize
                })
                .collect()
        };
        Ok(Self { timesteps, points })
    }

    /// `T` of the model this schedule was made for.
    pub fn timesteps(&self) -> usize {
        self.timesteps
    }

    /// The step the input image is taken to be at.
    pub fn start(&self) -> usize {
        self.points.first().copied().unwrap_or(0)
    }

    /// Number of network evaluations.
    pub fn len(&self) -> usize {
        self.points.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `(t, t_prev)` pairs in sampling order.
    pub fn transitions(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.points.windows(2).map(|pair| (pair[0], pair[1]))
    }
}
