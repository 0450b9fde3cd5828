//! The Bayer mosaic: the four colour filter patterns, mosaicing,
//! heteroscedastic noise per sample, and demosaicing (Malvar-He-Cutler or
//! bilinear).

use image::Rgb32FImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// How a camera's image processor fills in the two colours each Bayer
/// sample lacks. They correlate the noise differently: Malvar-He-Cutler
/// spreads a sample's noise into a 5x5 neighbourhood with negative lobes,
/// bilinear into a 3x3 one with positive weights only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Demosaic {
    /// [`demosaic`]: bilinear plus a Laplacian correction (what training sees).
    #[default]
    MalvarHeCutler,
    /// Plain bilinear interpolation of each colour from its own samples.
    Bilinear,
}


/// The four Bayer colour filter arrays, named by their top-left 2x2 block
/// read row by row. The mosaic itself is always RGGB ([`Bayer`]); another
/// pattern is RGGB shifted by [`BayerPattern::offset`] pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BayerPattern {
    /// Red at the top-left pixel (x even, y even).
    #[default]
    Rggb,
    /// Red at x odd, y even.
    Grbg,
    /// Red at x even, y odd.
    Gbrg,
    /// Red at x odd, y odd.
    Bggr,
}

impl BayerPattern {
    /// All four, in a fixed order.
    pub const ALL: [BayerPattern; 4] = [BayerPattern::Rggb, BayerPattern::Grbg, BayerPattern::Gbrg, BayerPattern::Bggr];

    /// `(dx, dy)`: image pixel `(x, y)` sits at RGGB position `(x + dx, y + dy)`,
    /// so the red samples are where `x + dx` and `y + dy` are both even.
    pub fn offset(self) -> (u32, u32) {
        match self {
            BayerPattern::Rggb => (0, 0),
            BayerPattern::Grbg => (1, 0),
            BayerPattern::Gbrg => (0, 1),
            BayerPattern::Bggr => (1, 1),
        }
    }

    /// The pattern's name in lower case (`rggb`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BayerPattern::Rggb => "rggb",
            BayerPattern::Grbg => "grbg",
            BayerPattern::Gbrg => "gbrg",
            BayerPattern::Bggr => "bggr",
        }
    }
}

impl std::str::FromStr for BayerPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BayerPattern::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown Bayer pattern {s:?} (rggb, grbg, gbrg or bggr)"))
    }
}


// ---------------------------------------------------------------------------
// Bayer data
// ---------------------------------------------------------------------------

/// A single-channel RGGB Bayer image: even rows R G R G..., odd rows
/// G B G B...; one value per pixel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Bayer {
    /// Width in pixels (any value >= 1; odd widths are fine).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` samples, row-major.
    pub data: Vec<f32>,
}

impl Bayer {
    /// Colour channel (0 = R, 1 = G, 2 = B) sampled at `(x, y)` in RGGB.
    #[inline]
    pub fn channel(x: u32, y: u32) -> usize {
        match (y & 1, x & 1) {
            (0, 0) => 0,
            (1, 1) => 2,
            _ => 1,
        }
    }
}

/// Keeps, for every pixel, the channel an RGGB sensor samples there.
pub fn mosaic(image: &Rgb32FImage) -> Bayer {
    let (w, h) = image.dimensions();
    let src = image.as_raw();
    let mut data = vec![0.0f32; w as usize * h as usize];
    data.par_chunks_mut(w as usize)
        .enumerate()
        .for_each(|(y, row)| {
            for (x, v) in row.iter_mut().enumerate() {
                let i = (y * w as usize + x) * 3;
                *v = src[i + Bayer::channel(x as u32, y as u32)];
            }
        });
    Bayer {
        width: w,
        height: h,
        data,
    }
}

/// Mirror index without repeating the edge sample (reflect-101), folded as
/// often as needed; it preserves parity, hence the Bayer colour. `n >= 2`.
#[inline]
fn reflect(i: isize, n: isize) -> usize {
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m >= n { period - m } else { m }) as usize
}

/// Malvar-He-Cutler demosaicing ("High-quality linear interpolation for
/// demosaicing of Bayer-patterned color images", ICASSP 2004): bilinear
/// interpolation corrected by the Laplacian of the sampled channel. It
/// interpolates noise from neighbours into every channel, which gives the
/// spatially correlated, chroma-blotchy noise of real photos. Borders use
/// reflect-101, so any size >= 2x2 works; 1-pixel-wide or -high images are
/// widened by edge replication first.
pub fn demosaic(bayer: &Bayer) -> Rgb32FImage {
    demosaic_with(bayer, Demosaic::MalvarHeCutler)
}

/// Demosaics with the given method; same border handling as [`demosaic`].
pub fn demosaic_with(bayer: &Bayer, method: Demosaic) -> Rgb32FImage {
    let (w, h) = (bayer.width, bayer.height);
    if w == 0 || h == 0 {
        return Rgb32FImage::new(w, h);
    }
    if w < 2 || h < 2 {
        let (pw, ph) = (w.max(2), h.max(2));
        let mut data = Vec::with_capacity(pw as usize * ph as usize);
        for y in 0..ph {
            for x in 0..pw {
                // Replicate the 1-pixel dimension. The copied samples then sit
                // at sites of another colour, so colours are approximate;
                // `synthesize` avoids this by padding in RGB before mosaicing.
                let sx = x.min(w - 1);
                let sy = y.min(h - 1);
                data.push(bayer.data[(sy * w + sx) as usize]);
            }
        }
        let full = demosaic_with(
            &Bayer {
                width: pw,
                height: ph,
                data,
            },
            method,
        );
        return image::imageops::crop_imm(&full, 0, 0, w, h).to_image();
    }
    // Pad by 2 on every side with reflect-101 so the 5x5 kernels need no
    // bounds checks.
    let (wi, hi) = (w as isize, h as isize);
    let pw = w as usize + 4;
    let mut padded = vec![0.0f32; pw * (h as usize + 4)];
    padded.par_chunks_mut(pw).enumerate().for_each(|(py, row)| {
        let sy = reflect(py as isize - 2, hi);
        let src = &bayer.data[sy * w as usize..(sy + 1) * w as usize];
        for (px, v) in row.iter_mut().enumerate() {
            *v = src[reflect(px as isize - 2, wi)];
        }
    });
    let mut out = vec![0.0f32; w as usize * h as usize * 3];
    out.par_chunks_mut(w as usize * 3)
        .enumerate()
        .for_each(|(y, row)| {
            let p = |dx: isize, dy: isize, x: usize| -> f32 {
                padded[((y as isize + 2 + dy) as usize) * pw + (x as isize + 2 + dx) as usize]
            };
            for x in 0..w as usize {
                let c = p(0, 0, x);
                // Sums of neighbours at the distances the kernels use.
                let n1 = p(-1, 0, x) + p(1, 0, x) + p(0, -1, x) + p(0, 1, x);
                let h1 = p(-1, 0, x) + p(1, 0, x);
                let v1 = p(0, -1, x) + p(0, 1, x);
                let h2 = p(-2, 0, x) + p(2, 0, x);
                let v2 = p(0, -2, x) + p(0, 2, x);
                let diag = p(-1, -1, x) + p(1, -1, x) + p(-1, 1, x) + p(1, 1, x);
                // G at R or B: 4c + 2*n1 - (h2 + v2), / 8.
                let g_at_rb = (4.0 * c + 2.0 * n1 - h2 - v2) / 8.0;
                // R/B at G, neighbours of that colour left/right:
                // 5c + 4*h1 - diag - h2 + v2/2, / 8.
                let at_g_row = (5.0 * c + 4.0 * h1 - diag - h2 + 0.5 * v2) / 8.0;
                // Same, neighbours above/below.
                let at_g_col = (5.0 * c + 4.0 * v1 - diag - v2 + 0.5 * h2) / 8.0;
                // B at R or R at B: 6c + 2*diag - 3/2 (h2 + v2), / 8.
                let rb_at_br = (6.0 * c + 2.0 * diag - 1.5 * (h2 + v2)) / 8.0;
                if method == Demosaic::Bilinear {
                    let (g, h1, v1, d) = (n1 / 4.0, h1 / 2.0, v1 / 2.0, diag / 4.0);
                    let rgb = match (y & 1, x & 1) {
                        (0, 0) => [c, g, d],
                        (0, _) => [h1, c, v1],
                        (_, 0) => [v1, c, h1],
                        _ => [d, g, c],
                    };
                    row[x * 3..x * 3 + 3].copy_from_slice(&rgb);
                    continue;
                }
                let rgb = match (y & 1, x & 1) {
                    (0, 0) => [c, g_at_rb, rb_at_br],  // R site
                    (0, _) => [at_g_row, c, at_g_col], // G in an R row: R left/right
                    (_, 0) => [at_g_col, c, at_g_row], // G in a B row: B left/right
                    _ => [rb_at_br, g_at_rb, c],       // B site
                };
                row[x * 3..x * 3 + 3].copy_from_slice(&rgb);
            }
        });
    Rgb32FImage::from_raw(w, h, out).unwrap_or_else(|| unreachable!("buffer size matches"))
}

/// Rows per independently seeded noise block: the noise of a block depends
/// only on the image seed and the block index, never on scheduling.
const NOISE_BLOCK_ROWS: usize = 16;

/// Adds heteroscedastic Gaussian noise to each Bayer sample: variance
/// `shot[c] * max(x, 0) + read[c]` for the sample's channel `c` (a Gaussian
/// approximation of Poisson shot noise plus Gaussian read noise; Brooks and
/// CBDNet do the same). Values are not clipped (see [`process`]).
///
/// One seed is drawn from `rng`; blocks of rows then use their own ChaCha8
/// streams, in parallel, so the result does not depend on the thread count.
pub fn add_noise_bayer<R: Rng + ?Sized>(
    bayer: &mut Bayer,
    shot: [f32; 3],
    read: [f32; 3],
    rng: &mut R,
) {
    let seed: u64 = rng.random();
    if shot.iter().chain(read.iter()).all(|v| *v == 0.0) {
        return;
    }
    let w = bayer.width as usize;
    if w == 0 {
        return;
    }
    bayer
        .data
        .par_chunks_mut(w * NOISE_BLOCK_ROWS)
        .enumerate()
        .for_each(|(block, chunk)| {
            let mut brng = ChaCha8Rng::seed_from_u64(seed);
            brng.set_stream(block as u64);
            for (r, row) in chunk.chunks_mut(w).enumerate() {
                let y = (block * NOISE_BLOCK_ROWS + r) as u32;
                for (x, v) in row.iter_mut().enumerate() {
                    let c = Bayer::channel(x as u32, y);
                    let var = (shot[c] * v.max(0.0) + read[c]).max(0.0);
                    let z: f32 = StandardNormal.sample(&mut brng);
                    *v += z * var.sqrt();
                }
            }
        });
}
