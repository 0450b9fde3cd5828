//! The camera's image processor, both ways: unprocessing a clean sRGB
//! photo to raw Bayer data (tone curve, gamma, colour matrix, gains),
//! re-processing it after the noise, the JPEG round trip, and the whole
//! synthesis of one noisy photo or a batch.

use image::Rgb32FImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::bayer::{add_noise_bayer, demosaic_with, Bayer};
use super::params::{NoiseModel, NoiseParams};

/// The curve from linear light to the stored 8-bit value (and back, when
/// unprocessing a clean photo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToneCurve {
    /// Brooks' gamma 2.2 plus smoothstep ([`linear_to_brooks_curve`]; what training sees).
    #[default]
    Brooks,
    /// The sRGB transfer function of IEC 61966-2-1, without a tone curve:
    /// flatter shadows and no highlight roll-off.
    Srgb,
}

impl ToneCurve {
    /// Stored value in [0, 1] -> linear light.
    #[inline]
    pub fn to_linear(self, x: f32) -> f32 {
        match self {
            ToneCurve::Brooks => brooks_curve_to_linear(x),
            ToneCurve::Srgb => {
                let x = x.clamp(0.0, 1.0);
                if x <= 0.04045 { x / 12.92 } else { ((x + 0.055) / 1.055).powf(2.4) }
            }
        }
    }

    /// Linear light -> stored value in [0, 1]; the inverse of [`ToneCurve::to_linear`].
    #[inline]
    pub fn from_linear(self, x: f32) -> f32 {
        match self {
            ToneCurve::Brooks => linear_to_brooks_curve(x),
            ToneCurve::Srgb => {
                let x = x.clamp(0.0, 1.0);
                if x <= 0.003_130_8 { 12.92 * x } else { 1.055 * x.powf(1.0 / 2.4) - 0.055 }
            }
        }
    }
}


/// Inverse of a 3x3 matrix (cofactors, computed in f64). The colour matrices
/// used here are well conditioned; a singular one yields the identity rather
/// than infinities.
pub fn invert3(m: &[[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let a = m.map(|r| r.map(f64::from));
    let c = |i: usize, j: usize| {
        let (i1, i2) = ((i + 1) % 3, (i + 2) % 3);
        let (j1, j2) = ((j + 1) % 3, (j + 2) % 3);
        a[i1][j1] * a[i2][j2] - a[i1][j2] * a[i2][j1]
    };
    let det = a[0][0] * c(0, 0) + a[0][1] * c(0, 1) + a[0][2] * c(0, 2);
    if !det.is_finite() || det.abs() < 1e-12 {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    // inverse = adjugate / det; the adjugate is the transposed cofactors.
    std::array::from_fn(|i| std::array::from_fn(|j| (c(j, i) / det) as f32))
}

#[inline]
fn apply3(m: &[[f32; 3]; 3], v: [f32; 3]) -> [f32; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

// ---------------------------------------------------------------------------
// Tone curves
// ---------------------------------------------------------------------------

/// Stored value -> linear light through Brooks' camera curve (not the sRGB
/// standard's; that is [`ToneCurve::Srgb`]): inverse smoothstep tone curve
/// `0.5 - sin(asin(1 - 2x) / 3)`, then gamma expansion `max(x, 1e-8)^2.2`
/// (Brooks' approximation of a camera's tone curve and gamma; not the exact
/// sRGB transfer function, on purpose: it is what the noise model was fit
/// with). Input is clamped to [0, 1].
#[inline]
pub fn brooks_curve_to_linear(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    let t = 0.5 - ((1.0 - 2.0 * x).asin() / 3.0).sin();
    t.max(1e-8).powf(2.2)
}

/// Linear light -> stored value through Brooks' camera curve: gamma compression `max(x, 1e-8)^(1/2.2)`, then the
/// smoothstep tone curve `3x^2 - 2x^3`; input clamped to [0, 1]. Inverse of
/// [`brooks_curve_to_linear`].
#[inline]
pub fn linear_to_brooks_curve(x: f32) -> f32 {
    let g = x.clamp(0.0, 1.0).max(1e-8).powf(1.0 / 2.2);
    (3.0 * g * g - 2.0 * g * g * g).clamp(0.0, 1.0)
}

/// Rounds to the nearest 8-bit level, as saving a PNG/JPEG would.
#[inline]
pub fn quantize8(x: f32) -> f32 {
    (x.clamp(0.0, 1.0) * 255.0).round() / 255.0
}


// ---------------------------------------------------------------------------
// The pipeline
// ---------------------------------------------------------------------------

/// A clean image taken back to raw sensor data by [`unprocess`].
#[derive(Debug, Clone, PartialEq)]
pub struct Unprocessed {
    /// Clean RGGB data in [0, 1]-ish raw units (white level 1).
    pub bayer: Bayer,
    /// Per sample, the gain [`process`] multiplies by to white-balance and
    /// brighten: the exact inverse of the gain unprocessing applied there,
    /// highlight mask included.
    pub wb_gain: Vec<f32>,
}

/// Steps 1-4: sRGB -> linear -> camera RGB -> undo white balance and
/// brightness (Brooks' safe inverse gains: near white, the gains fade to 1 so
/// highlights are not dimmed into false colours) -> RGGB mosaic.
pub fn unprocess(clean: &Rgb32FImage, params: &NoiseParams) -> Unprocessed {
    let lin: Vec<f32> = clean
        .as_raw()
        .par_iter()
        .map(|v| params.tone_curve.to_linear(*v))
        .collect();
    unprocess_linear(&lin, clean.width(), clean.height(), params)
}

/// [`unprocess`] from linear RGB (interleaved, `w * h * 3` values).
fn unprocess_linear(lin: &[f32], w: u32, h: u32, params: &NoiseParams) -> Unprocessed {
    let inv_b = 1.0 / params.brightness;
    let gains = [inv_b / params.red_gain, inv_b, inv_b / params.blue_gain];
    let n = w as usize * h as usize;
    let mut data = vec![0.0f32; n];
    let mut wb_gain = vec![1.0f32; n];
    let row_len = w.max(1) as usize;
    data.par_chunks_mut(row_len)
        .zip(wb_gain.par_chunks_mut(row_len))
        .enumerate()
        .for_each(|(y, (drow, grow))| {
            for x in 0..drow.len() {
                let i = (y * w as usize + x) * 3;
                let cam = apply3(&params.ccm, [lin[i], lin[i + 1], lin[i + 2]]);
                let gray = (cam[0] + cam[1] + cam[2]) / 3.0;
                let mask = ((gray - 0.9).max(0.0) / 0.1).powi(2).min(1.0);
                let c = Bayer::channel(x as u32, y as u32);
                let safe = (mask + (1.0 - mask) * gains[c]).max(gains[c]);
                drow[x] = cam[c] * safe;
                grow[x] = 1.0 / safe;
            }
        });
    Unprocessed {
        bayer: Bayer {
            width: w,
            height: h,
            data,
        },
        wb_gain,
    }
}

/// Margin added around the image before mosaicing, in pixels: the 5x5
/// demosaic kernel reaches 2 pixels out.
const PAD: u32 = 2;

/// Linear RGB of `clean`, extended by `PAD` pixels on every side (and by
/// `lead.0` / `lead.1` more on the left / top, which moves the RGGB mosaic
/// of the padded image to another pattern on `clean`) by linear
/// extrapolation (`f(-k) = 2 f(0) - f(k)`, clamped to [0, 1]; edge
/// replication when a side is shorter than 3 pixels).
///
/// Why: the demosaic corrects each interpolated colour with the Laplacian of
/// the sampled one, so a mirrored border (a kink in every gradient) puts
/// errors of several 8-bit levels into dark colours next to bright ones.
/// Extrapolation keeps gradients straight, and the margin samples then get
/// their own noise like real sensor pixels outside a crop, so border pixels
/// have the same noise statistics as the interior.
fn linear_padded(clean: &Rgb32FImage, lead: (u32, u32), tone: ToneCurve) -> (Vec<f32>, u32, u32) {
    let (w, h) = clean.dimensions();
    let (left, top) = (PAD + lead.0, PAD + lead.1);
    let (pw, ph) = (w + left + PAD, h + top + PAD);
    let src = clean.as_raw();
    // Source coordinate and weight pairs for one axis: value = sum w_k f(i_k).
    let axis = |i: i64, n: i64| -> [(usize, f32); 2] {
        if i >= 0 && i < n {
            [(i as usize, 1.0), (0, 0.0)]
        } else if n < 3 {
            [(i.clamp(0, n - 1) as usize, 1.0), (0, 0.0)]
        } else if i < 0 {
            [(0, 2.0), ((-i).min(n - 1) as usize, -1.0)]
        } else {
            let m = 2 * (n - 1) - i;
            [((n - 1) as usize, 2.0), (m.max(0) as usize, -1.0)]
        }
    };
    let lin_at = |x: usize, y: usize, c: usize| tone.to_linear(src[(y * w as usize + x) * 3 + c]);
    let mut out = vec![0.0f32; pw as usize * ph as usize * 3];
    out.par_chunks_mut(pw as usize * 3)
        .enumerate()
        .for_each(|(py, row)| {
            let ys = axis(py as i64 - top as i64, h as i64);
            for px in 0..pw as usize {
                let xs = axis(px as i64 - left as i64, w as i64);
                for c in 0..3 {
                    let mut v = 0.0;
                    for &(yi, wy) in &ys {
                        if wy == 0.0 {
                            continue;
                        }
                        for &(xi, wx) in &xs {
                            if wx != 0.0 {
                                v += wy * wx * lin_at(xi, yi, c);
                            }
                        }
                    }
                    row[px * 3 + c] = v.clamp(0.0, 1.0);
                }
            }
        });
    (out, pw, ph)
}

/// Step 6: white balance (per-sample gains from [`unprocess`]), clip to
/// [0, 1] as the sensor range, demosaic (`params.demosaic`), colour
/// correction (inverse of `params.ccm`), tone curve (`params.tone_curve`),
/// clip, 8-bit quantisation. No JPEG.
pub fn process(bayer: &Bayer, wb_gain: &[f32], params: &NoiseParams) -> Rgb32FImage {
    let balanced = Bayer {
        width: bayer.width,
        height: bayer.height,
        data: bayer
            .data
            .par_iter()
            .zip(wb_gain.par_iter())
            .map(|(v, g)| (v * g).clamp(0.0, 1.0))
            .collect(),
    };
    let mut img = demosaic_with(&balanced, params.demosaic);
    let cam2rgb = invert3(&params.ccm);
    let w = img.width().max(1) as usize;
    img.par_chunks_mut(w * 3).for_each(|row| {
        for px in row.chunks_exact_mut(3) {
            let rgb = apply3(&cam2rgb, [px[0], px[1], px[2]]);
            for c in 0..3 {
                px[c] = quantize8(params.tone_curve.from_linear(rgb[c]));
            }
        }
    });
    img
}

/// JPEG-compresses and decodes an image at `quality` (1..=100). If encoding
/// or decoding fails (it does not for valid in-memory RGB data), the input
/// is returned unchanged rather than panicking mid-training.
pub fn jpeg_roundtrip(img: &Rgb32FImage, quality: u8) -> Rgb32FImage {
    let bytes: Vec<u8> = img
        .as_raw()
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality.clamp(1, 100));
    if image::ImageEncoder::write_image(
        enc,
        &bytes,
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )
    .is_err()
    {
        return img.clone();
    }
    match image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg) {
        Ok(decoded) if decoded.width() == img.width() && decoded.height() == img.height() => {
            decoded.to_rgb32f()
        }
        _ => img.clone(),
    }
}

/// The noisy version of `clean` (same size) for `params`; the clean input is
/// the training target. Pixel values of `clean` are clamped to [0, 1].
pub fn synthesize<R: Rng + ?Sized>(
    clean: &Rgb32FImage,
    params: &NoiseParams,
    rng: &mut R,
) -> Rgb32FImage {
    let (w, h) = clean.dimensions();
    if w == 0 || h == 0 {
        return clean.clone();
    }
    // PAD is even, so the padded image's RGGB mosaic falls on `clean` with
    // the pattern's offset.
    let (dx, dy) = params.pattern.offset();
    let (lin, pw, ph) = linear_padded(clean, (dx, dy), params.tone_curve);
    let mut raw = unprocess_linear(&lin, pw, ph, params);
    add_noise_bayer(&mut raw.bayer, params.shot, params.read, rng);
    let full = process(&raw.bayer, &raw.wb_gain, params);
    let out = image::imageops::crop_imm(&full, PAD + dx, PAD + dy, w, h).to_image();
    match params.jpeg_quality {
        Some(q) => jpeg_roundtrip(&out, q),
        None => out,
    }
}

/// The random generator of item `index` of a batch: ChaCha8 seeded with
/// `seed`, on stream `index`, so every item has its own reproducible stream.
pub fn item_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Noisy versions of a batch, in parallel (rayon). Item `i` draws its
/// parameters and noise from [`item_rng`]`(seed, i)` only, so the result is
/// the same for any thread count and any batch split.
pub fn synthesize_batch(cleans: &[Rgb32FImage], model: &NoiseModel, seed: u64) -> Vec<Rgb32FImage> {
    cleans
        .par_iter()
        .enumerate()
        .map(|(i, clean)| {
            let mut rng = item_rng(seed, i);
            let params = NoiseParams::sample(&mut rng, model);
            synthesize(clean, &params, &mut rng)
        })
        .collect()
}
