//! Geometric self-ensemble: predict the clean image from several flipped and
//! transposed copies of `x_t` and average the predictions, each turned back.
//!
//! Camera noise has no preferred orientation but a small, briefly trained
//! network's errors do; averaging over orientations cancels part of them.
//! It costs one network evaluation per orientation. The caller's sampling
//! loop runs the evaluations one by one (so it can report progress and stop
//! between them) and hands the mean to [`crate::diffusion::Sampler::step`].

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

use crate::diffusion::Predictor;

/// How many orientations of each step's input the network sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ensemble {
    /// The image as it is: one evaluation per step.
    #[default]
    Off,
    /// The four flips (none, horizontal, vertical, both): four evaluations.
    Flips,
    /// The four flips, each also transposed (the eight symmetries of a
    /// square): eight evaluations.
    Dihedral,
}

/// One of the eight symmetries of a square: optional flips, then an
/// optional transpose of the image axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orientation {
    pub flip_horizontal: bool,
    pub flip_vertical: bool,
    pub transpose: bool,
}

impl Orientation {
    pub const IDENTITY: Orientation = Orientation { flip_horizontal: false, flip_vertical: false, transpose: false };

    /// Turns an `[batch, channels, height, width]` tensor into this orientation.
    pub fn apply<B: Backend>(self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = match (self.flip_vertical, self.flip_horizontal) {
            (false, false) => x,
            (true, false) => x.flip([2]),
            (false, true) => x.flip([3]),
            (true, true) => x.flip([2, 3]),
        };
        if self.transpose {
            x.swap_dims(2, 3)
        } else {
            x
        }
    }

    /// Undoes [`Orientation::apply`]: the transpose first, then the flips
    /// (each is its own inverse).
    pub fn undo<B: Backend>(self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = if self.transpose { x.swap_dims(2, 3) } else { x };
        Orientation { transpose: false, ..self }.apply(x)
    }
}

/// The eight symmetries of a square: the identity first, then the other
/// flips, then the same four transposed. Each ensemble is a prefix of it.
const DIHEDRAL: [Orientation; 8] = {
    let flips = [(false, false), (false, true), (true, false), (true, true)];
    let mut all = [Orientation::IDENTITY; 8];
    let mut index = 0;
    while index < 8 {
        let (flip_vertical, flip_horizontal) = flips[index % 4];
        all[index] = Orientation { flip_horizontal, flip_vertical, transpose: index >= 4 };
        index += 1;
    }
    all
};

impl Ensemble {
    /// Every ensemble, from the cheapest.
    pub const ALL: [Ensemble; 3] = [Ensemble::Off, Ensemble::Flips, Ensemble::Dihedral];

    /// The orientations averaged, the identity first.
    pub fn orientations(self) -> &'static [Orientation] {
        match self {
            Ensemble::Off => &DIHEDRAL[..1],
            Ensemble::Flips => &DIHEDRAL[..4],
            Ensemble::Dihedral => &DIHEDRAL,
        }
    }

    /// Network evaluations per sampling step.
    pub fn evaluations(self) -> usize {
        self.orientations().len()
    }

    pub fn name(self) -> &'static str {
        match self {
            Ensemble::Off => "off",
            Ensemble::Flips => "flips",
            Ensemble::Dihedral => "dihedral",
        }
    }
}

impl std::str::FromStr for Ensemble {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "off" => Ok(Self::Off),
            "flips" => Ok(Self::Flips),
            "dihedral" => Ok(Self::Dihedral),
            other => Err(format!("unknown ensemble '{other}' (expected 'off', 'flips' or 'dihedral')")),
        }
    }
}

impl std::fmt::Display for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Orientation {
    /// The predictor's estimate of the clean image, made in this
    /// orientation and turned back.
    pub fn predict<B: Backend>(self, predictor: &dyn Predictor<B>, x_t: Tensor<B, 4>, t: usize) -> Tensor<B, 4> {
        self.undo(predictor.predict(self.apply(x_t), t))
    }
}

/// The running mean of predictions, one orientation at a time, so memory
/// stays that of a single evaluation (a batch of eight would need eight
/// times the tile's activation memory).
pub struct PredictionMean<B: Backend> {
    sum: Option<Tensor<B, 4>>,
    count: usize,
}

impl<B: Backend> Default for PredictionMean<B> {
    fn default() -> Self {
        Self { sum: None, count: 0 }
    }
}

impl<B: Backend> PredictionMean<B> {
    pub fn add(&mut self, prediction: Tensor<B, 4>) {
        self.sum = Some(match self.sum.take() {
            None => prediction,
            Some(sum) => sum.add(prediction),
        });
        self.count += 1;
    }

    /// The mean, or `None` if nothing was added.
    pub fn mean(self) -> Option<Tensor<B, 4>> {
        let count = self.count;
        self.sum.map(|sum| if count == 1 { sum } else { sum.div_scalar(count as f32) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray<f32>;

    fn ramp(height: usize, width: usize) -> Tensor<B, 4> {
        let values: Vec<f32> = (0..3 * height * width).map(|i| i as f32).collect();
        Tensor::from_data(TensorData::new(values, [1, 3, height, width]), &Default::default())
    }

    #[test]
    fn every_orientation_is_undone_exactly_on_a_non_square_image() {
        let x = ramp(3, 5);
        for &orientation in Ensemble::Dihedral.orientations() {
            let turned = orientation.apply(x.clone());
            let expected_shape = if orientation.transpose { [1, 3, 5, 3] } else { [1, 3, 3, 5] };
            assert_eq!(turned.dims(), expected_shape, "{orientation:?}");
            orientation.undo(turned).into_data().assert_eq(&x.clone().into_data(), true);
        }
    }

    #[test]
    fn the_eight_orientations_are_distinct() {
        let x = ramp(4, 4);
        let turned: Vec<Vec<f32>> = Ensemble::Dihedral
            .orientations()
            .into_iter()
            .map(|orientation| orientation.apply(x.clone()).into_data().into_vec().unwrap())
            .collect();
        for i in 0..turned.len() {
            for j in i + 1..turned.len() {
                assert_ne!(turned[i], turned[j], "orientations {i} and {j} coincide");
            }
        }
        assert_eq!([Ensemble::Off, Ensemble::Flips, Ensemble::Dihedral].map(Ensemble::evaluations), [1, 4, 8]);
        assert_eq!(Ensemble::Off.orientations(), [Orientation::IDENTITY]);
    }

    /// Predicts the top-left pixel's value everywhere: not orientation
    /// equivariant, so the ensemble must average the four corners.
    struct TopLeft;

    impl Predictor<B> for TopLeft {
        fn predict(&self, x_t: Tensor<B, 4>, _t: usize) -> Tensor<B, 4> {
            let corner = x_t.clone().slice([0..1, 0..3, 0..1, 0..1]);
            corner.expand(x_t.dims())
        }
    }

    fn ensemble_prediction(ensemble: Ensemble, x: &Tensor<B, 4>) -> Vec<f32> {
        let mut mean = PredictionMean::default();
        for orientation in ensemble.orientations() {
            mean.add(orientation.predict(&TopLeft, x.clone(), 1));
        }
        let mean = mean.mean().expect("every ensemble has an orientation");
        assert_eq!(mean.dims(), x.dims());
        mean.into_data().into_vec::<f32>().unwrap()
    }

    #[test]
    fn the_ensemble_averages_the_predictions_of_every_orientation() {
        // Channel 0 of a 3x5 ramp: corners 0, 4, 10, 14; mean 7.
        let x = ramp(3, 5);
        let plain = TopLeft.predict(x.clone(), 1).into_data().into_vec::<f32>().unwrap();
        assert_eq!(plain[0], 0.0);
        for ensemble in [Ensemble::Flips, Ensemble::Dihedral] {
            let values = ensemble_prediction(ensemble, &x);
            // Transposing keeps the top-left corner, so the dihedral mean is
            // still that of the four corners.
            assert!(values[..15].iter().all(|&v| (v - 7.0).abs() < 1e-5), "{ensemble}: {:?}", &values[..15]);
        }
        assert_eq!(ensemble_prediction(Ensemble::Off, &x), plain);
        assert!(PredictionMean::<B>::default().mean().is_none());
    }
}
