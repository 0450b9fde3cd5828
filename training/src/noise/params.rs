//! The distribution the training noise is drawn from ([`NoiseModel`]),
//! the evaluation levels ([`NoiseLevel`]) and one draw of it
//! ([`NoiseParams`]: gains, colour matrix, `(a, b)`, Bayer pattern, JPEG).

use rand::Rng;
use rand_distr::{Distribution, Normal, StandardNormal};

use super::bayer::{BayerPattern, Demosaic};
use super::isp::ToneCurve;
use super::profiles::NoiseProfiles;
use super::NoiseError;

// ---------------------------------------------------------------------------
// Sampling distribution and parameters
// ---------------------------------------------------------------------------

/// The distribution noise parameters are drawn from during training.
#[derive(Debug, Clone)]
pub struct NoiseModel {
    /// Calibrated camera profiles; `None` uses Brooks' ranges only.
    pub profiles: Option<NoiseProfiles>,
    /// Probability of taking `(a, b)` from a darktable profile (when
    /// `profiles` is set) instead of Brooks' ranges.
    pub darktable_fraction: f32,
    /// darktable profiles are multiplied (both `a` and `b`) by a factor drawn
    /// log-uniformly from this range. Its profiles come from large-sensor
    /// cameras whose noise is mostly mild (median `a` about 3e-5, against
    /// Brooks' 1e-4..1.2e-2); scaling up covers smaller sensors and
    /// underexposure. `(1.0, 1.0)` uses the profiles as measured.
    pub level_scale: (f32, f32),
    /// Brooks' shot-noise range `(min, max)`, sampled log-uniformly; the read
    /// noise follows his line `log b = 2.18 log a + 1.20 + N(0, 0.26)`.
    pub brooks_shot_range: (f32, f32),
    /// Probability of a JPEG round trip after re-processing.
    pub jpeg_probability: f32,
    /// JPEG quality range (inclusive), sampled uniformly.
    pub jpeg_quality: (u8, u8),
}

impl Default for NoiseModel {
    /// Brooks' ranges only, JPEG with probability 0.3 at quality 60..=100.
    fn default() -> Self {
        NoiseModel {
            profiles: None,
            darktable_fraction: 0.5,
            level_scale: (1.0, 4.0),
            brooks_shot_range: (1e-4, 0.012),
            jpeg_probability: 0.3,
            jpeg_quality: (60, 100),
        }
    }
}

impl NoiseModel {
    /// The default model, plus darktable profiles used for half the samples.
    pub fn with_profiles(profiles: NoiseProfiles) -> Self {
        NoiseModel {
            profiles: Some(profiles),
            ..Default::default()
        }
    }

    /// Checks that every setting is in range, so a bad configuration fails
    /// early instead of producing odd samples.
    pub fn validate(&self) -> Result<(), NoiseError> {
        let prob = |p: f32| (0.0..=1.0).contains(&p);
        if !prob(self.darktable_fraction) {
            return Err(NoiseError::BadModel("darktable_fraction must be in [0, 1]"));
        }
        if !prob(self.jpeg_probability) {
            return Err(NoiseError::BadModel("jpeg_probability must be in [0, 1]"));
        }
        let range = |r: (f32, f32)| r.0.is_finite() && r.1.is_finite() && r.0 > 0.0 && r.0 <= r.1;
        if !range(self.level_scale) {
            return Err(NoiseError::BadModel("level_scale must be 0 < min <= max"));
        }
        if !range(self.brooks_shot_range) {
            return Err(NoiseError::BadModel(
                "brooks_shot_range must be 0 < min <= max",
            ));
        }
        let (q0, q1) = self.jpeg_quality;
        if q0 == 0 || q0 > q1 || q1 > 100 {
            return Err(NoiseError::BadModel(
                "jpeg_quality must be 1 <= min <= max <= 100",
            ));
        }
        Ok(())
    }
}

/// Fixed noise levels for reproducible evaluation, in Brooks' raw space
/// (shot `a`, read variance `b` on Brooks' line `b = exp(2.18 ln a + 1.20)`).
/// The colour pipeline amplifies raw noise a lot (white-balance gains of ~2,
/// brightening, the inverse colour matrix, the gamma curve), so the sRGB
/// PSNRs are much lower than the raw `a` suggests. Measured on
/// `assets/sample-clean.png` (mean over 4 colour pipelines; printed by the
/// test `noise_levels_are_ordered_and_saved_for_inspection`): see each level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseLevel {
    /// Visible but mild, a good camera at moderate ISO: a = 1e-4, Brooks'
    /// lightest (about 34 dB sRGB PSNR; the noiseless round trip alone is
    /// about 36 dB on that photo, from demosaicing fine texture).
    Low,
    /// Clearly noisy, a phone indoors: a = 1e-3 (about 28 dB).
    Mid,
    /// Heavy, a phone at night (SIDD-like): a = 4e-3 (about 22 dB).
    High,
}

impl NoiseLevel {
    /// All levels, lightest first.
    pub const ALL: [NoiseLevel; 3] = [NoiseLevel::Low, NoiseLevel::Mid, NoiseLevel::High];

    /// The shot-noise gain `a` of this level.
    pub fn shot(self) -> f32 {
        match self {
            NoiseLevel::Low => 1e-4,
            NoiseLevel::Mid => 1e-3,
            NoiseLevel::High => 4e-3,
        }
    }

    /// The read-noise variance `b`, on Brooks' line without its random term.
    pub fn read(self) -> f32 {
        brooks_read(self.shot())
    }

    /// Lower-case name ("low", "mid", "high") for reports and file names.
    pub fn name(self) -> &'static str {
        match self {
            NoiseLevel::Low => "low",
            NoiseLevel::Mid => "mid",
            NoiseLevel::High => "high",
        }
    }
}

/// Brooks' mean read-noise variance for a shot-noise gain.
fn brooks_read(shot: f32) -> f32 {
    (2.18 * shot.ln() + 1.20).exp()
}

/// Everything that defines one synthetic capture. Sampled per image.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseParams {
    /// Where the sensor's colour filter array sits on the image: which
    /// colour the top-left pixel samples. Real photos come with any of the
    /// four (sensor, orientation and crop decide), and a network trained on
    /// one of them loses about 0.3 dB at high noise on the other three.
    pub pattern: BayerPattern,
    /// Shot-noise gain `a` per camera channel (R, G, B): variance grows by
    /// `a*x` with the raw value `x`.
    pub shot: [f32; 3],
    /// Read-noise variance `b` per camera channel (R, G, B).
    pub read: [f32; 3],
    /// White-balance gain of the red channel (the raw red is divided by it).
    pub red_gain: f32,
    /// White-balance gain of the blue channel.
    pub blue_gain: f32,
    /// Brightening gain, >= 1: the raw image is this much darker than the
    /// linear sRGB image (Brooks' `rgb_gain`).
    pub brightness: f32,
    /// Linear sRGB -> camera RGB matrix (rows sum to 1, so grey stays grey);
    /// re-processing applies its inverse.
    pub ccm: [[f32; 3]; 3],
    /// JPEG quality of the final round trip, `None` for no JPEG.
    pub jpeg_quality: Option<u8>,
    /// How the simulated camera interpolates the mosaic. Training always
    /// uses Malvar-He-Cutler; another method is a camera training never saw.
    pub demosaic: Demosaic,
    /// The tone curve between linear camera RGB and the 8-bit output.
    /// Training always uses Brooks'; another curve is an unseen camera.
    pub tone_curve: ToneCurve,
}

/// Brooks' four XYZ -> camera matrices (from the unprocessing paper's code).
const XYZ2CAMS: [[[f32; 3]; 3]; 4] = [
    [
        [1.0234, -0.2969, -0.2266],
        [-0.5625, 1.6328, -0.0469],
        [-0.0703, 0.2188, 0.6406],
    ],
    [
        [0.4913, -0.0541, -0.0202],
        [-0.613, 1.3513, 0.2906],
        [-0.1564, 0.2151, 0.7183],
    ],
    [
        [0.838, -0.263, -0.0639],
        [-0.2887, 1.0725, 0.2496],
        [-0.0627, 0.1427, 0.5438],
    ],
    [
        [0.6596, -0.2079, -0.0562],
        [-0.4782, 1.3016, 0.1933],
        [-0.097, 0.1581, 0.5181],
    ],
];

/// Linear sRGB (D65) -> XYZ.
const RGB2XYZ: [[f32; 3]; 3] = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.119192, 0.9503041],
];

impl NoiseParams {
    /// Draws a full set of parameters from `model`. The order of random draws
    /// is fixed, so a seeded generator gives reproducible parameters.
    pub fn sample<R: Rng + ?Sized>(rng: &mut R, model: &NoiseModel) -> NoiseParams {
        let mut p = Self::random_pipeline(rng);
        let use_darktable = rng.random::<f32>() < model.darktable_fraction;
        match (&model.profiles, use_darktable) {
            (Some(profiles), true) => {
                let profile = profiles.sample(rng);
                let scale = log_uniform(rng, model.level_scale);
                // darktable measures noise after white balance (its red `a`
                // is about twice its green one, the red WB gain): a value
                // y = g*x has variance a*y + b, so the raw x has variance
                // (a/g)*x + b/g^2. Our own WB gains stand in for the camera's.
                let g = [p.red_gain, 1.0, p.blue_gain];
                p.shot = std::array::from_fn(|c| profile.a[c] * scale / g[c]);
                p.read = std::array::from_fn(|c| profile.b[c] * scale / (g[c] * g[c]));
            }
            _ => {
                let shot = log_uniform(rng, model.brooks_shot_range);
                let z: f32 = StandardNormal.sample(rng);
                let read = brooks_read(shot) * (0.26 * z).exp();
                p.shot = [shot; 3];
                p.read = [read; 3];
            }
        }
        if rng.random::<f32>() < model.jpeg_probability {
            let (q0, q1) = model.jpeg_quality;
            let (q0, q1) = (q0.clamp(1, 100), q1.clamp(1, 100));
            p.jpeg_quality = Some(rng.random_range(q0.min(q1)..=q1.max(q0)));
        }
        p.pattern = BayerPattern::ALL[rng.random_range(0..BayerPattern::ALL.len())];
        p
    }

    /// Parameters for a fixed evaluation level: the noise is the level's
    /// `(a, b)` on all channels; the colour pipeline (matrix, gains) is still
    /// random, drawn from `rng`; no JPEG; the RGGB pattern (set `pattern`
    /// for another).
    pub fn for_level<R: Rng + ?Sized>(level: NoiseLevel, rng: &mut R) -> NoiseParams {
        let mut p = Self::random_pipeline(rng);
        p.shot = [level.shot(); 3];
        p.read = [level.read(); 3];
        p
    }

    /// Noise-free parameters with an identity colour pipeline (no matrix, no
    /// gains, no JPEG): only the tone curves, mosaic, demosaic and 8-bit
    /// rounding remain. For tests and as a neutral starting point.
    pub fn identity() -> NoiseParams {
        NoiseParams {
            shot: [0.0; 3],
            read: [0.0; 3],
            red_gain: 1.0,
            blue_gain: 1.0,
            brightness: 1.0,
            ccm: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            jpeg_quality: None,
            pattern: BayerPattern::Rggb,
            demosaic: Demosaic::MalvarHeCutler,
            tone_curve: ToneCurve::Brooks,
        }
    }

    /// The same parameters without noise and without JPEG (for round-trip
    /// checks of the colour pipeline).
    pub fn without_noise(&self) -> NoiseParams {
        NoiseParams {
            shot: [0.0; 3],
            read: [0.0; 3],
            jpeg_quality: None,
            ..self.clone()
        }
    }

    /// Random colour matrix and gains, no noise, no JPEG (Brooks'
    /// `random_ccm` and `random_gains`).
    fn random_pipeline<R: Rng + ?Sized>(rng: &mut R) -> NoiseParams {
        // Convex mix of the four matrices with uniform weights, as Brooks does
        // (his U(1e-8, 1e8) weights are U(0, 1) up to scale).
        let w: [f32; 4] = std::array::from_fn(|_| rng.random::<f32>() + 1e-6);
        let wsum: f32 = w.iter().sum();
        let mut xyz2cam = [[0.0f32; 3]; 3];
        for (k, m) in XYZ2CAMS.iter().enumerate() {
            for i in 0..3 {
                for j in 0..3 {
                    xyz2cam[i][j] += m[i][j] * w[k] / wsum;
                }
            }
        }
        let mut ccm = matmul(&xyz2cam, &RGB2XYZ);
        for row in ccm.iter_mut() {
            let s: f32 = row.iter().sum();
            for v in row.iter_mut() {
                *v /= s;
            }
        }
        // Brightness: 1 / N(0.8, 0.1). The normal is clamped to [0.5, 1.0] so
        // that the gain is >= 1: the raw image is never brighter than the
        // sRGB one, hence never clipped before the noise (which would lose
        // highlight colour the target still has); 2.3% of draws are clamped.
        let normal = Normal::new(0.8f32, 0.1).unwrap_or_else(|_| unreachable!());
        let brightness = 1.0 / normal.sample(rng).clamp(0.5, 1.0);
        let red_gain = rng.random_range(1.9f32..2.4);
        let blue_gain = rng.random_range(1.5f32..1.9);
        NoiseParams {
            shot: [0.0; 3],
            read: [0.0; 3],
            red_gain,
            blue_gain,
            brightness,
            ccm,
            jpeg_quality: None,
            pattern: BayerPattern::Rggb,
            demosaic: Demosaic::MalvarHeCutler,
            tone_curve: ToneCurve::Brooks,
        }
    }
}

fn log_uniform<R: Rng + ?Sized>(rng: &mut R, (lo, hi): (f32, f32)) -> f32 {
    let (l0, l1) = (lo.ln(), hi.ln());
    if l1 > l0 {
        (l0 + (l1 - l0) * rng.random::<f32>()).exp()
    } else {
        lo
    }
}

fn matmul(a: &[[f32; 3]; 3], b: &[[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let mut m = [[0.0f32; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}
