//! Image quality metrics on RGB images in [0, 1]: PSNR and SSIM.
//! SSIM follows Wang et al. 2004 (11x11 Gaussian window, sigma 1.5,
//! K1 = 0.01, K2 = 0.03, data range 1), per channel on the valid region,
//! averaged over channels.

use image::Rgb32FImage;

/// Peak signal-to-noise ratio in dB; infinite for identical images.
pub fn psnr(a: &Rgb32FImage, b: &Rgb32FImage) -> f64 {
    let n = a.as_raw().len().min(b.as_raw().len()).max(1);
    let mse: f64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>() / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

fn gaussian_window() -> [f64; 11] {
    let mut w = [0.0; 11];
    for (i, v) in w.iter_mut().enumerate() {
        let x = i as f64 - 5.0;
        *v = (-x * x / (2.0 * 1.5 * 1.5)).exp();
    }
    let sum: f64 = w.iter().sum();
    w.map(|v| v / sum)
}

/// Separable 11x11 Gaussian filter, "valid" region only.
fn blur_valid(plane: &[f64], width: usize, height: usize) -> (Vec<f64>, usize, usize) {
    let w = gaussian_window();
    let (ow, oh) = (width - 10, height - 10);
    let mut rows = vec![0.0; ow * height];
    for y in 0..height {
        for x in 0..ow {
            rows[y * ow + x] = (0..11).map(|k| w[k] * plane[y * width + x + k]).sum();
        }
    }
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..11).map(|k| w[k] * rows[(y + k) * ow + x]).sum();
        }
    }
    (out, ow, oh)
}

/// Structural similarity; `NaN` for images smaller than the 11x11 window.
pub fn ssim(a: &Rgb32FImage, b: &Rgb32FImage) -> f64 {
    let (width, height) = (a.width() as usize, a.height() as usize);
    if width < 11 || height < 11 || a.dimensions() != b.dimensions() {
        return f64::NAN;
    }
    const C1: f64 = 0.01 * 0.01;
    const C2: f64 = 0.03 * 0.03;
    let mut total = 0.0;
    for c in 0..3 {
        let x: Vec<f64> = a.pixels().map(|p| f64::from(p.0[c])).collect();
        let y: Vec<f64> = b.pixels().map(|p| f64::from(p.0[c])).collect();
        let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
        let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
        let xy: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p * q).collect();
        let (mx, _, _) = blur_valid(&x, width, height);
        let (my, _, _) = blur_valid(&y, width, height);
        let (sxx, _, _) = blur_valid(&xx, width, height);
        let (syy, _, _) = blur_valid(&yy, width, height);
        let (sxy, _, _) = blur_valid(&xy, width, height);
        let mut sum = 0.0;
        for i in 0..mx.len() {
            let (ux, uy) = (mx[i], my[i]);
            let vx = sxx[i] - ux * ux;
            let vy = syy[i] - uy * uy;
            let cov = sxy[i] - ux * uy;
            sum += ((2.0 * ux * uy + C1) * (2.0 * cov + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
        }
        total += sum / mx.len() as f64;
    }
    total / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise_image(w: u32, h: u32, seed: u32) -> Rgb32FImage {
        Rgb32FImage::from_fn(w, h, |x, y| {
            let v = ((x * 7919 + y * 104_729 + seed * 31) % 1000) as f32 / 1000.0;
            image::Rgb([v, 1.0 - v, 0.5])
        })
    }

    #[test]
    fn psnr_of_a_known_error() {
        let a = Rgb32FImage::from_pixel(8, 8, image::Rgb([0.5, 0.5, 0.5]));
        let b = Rgb32FImage::from_pixel(8, 8, image::Rgb([0.6, 0.6, 0.6]));
        // MSE = 0.01 -> 20 dB.
        assert!((psnr(&a, &b) - 20.0).abs() < 1e-4, "{}", psnr(&a, &b));
        assert!(psnr(&a, &a).is_infinite());
    }

    #[test]
    fn ssim_is_one_for_identical_and_lower_for_distorted_images() {
        let a = noise_image(32, 24, 1);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-9);
        let b = noise_image(32, 24, 2);
        let s = ssim(&a, &b);
        assert!(s < 0.9, "{s}");
        // A constant brightness shift keeps structure: SSIM stays high.
        let shifted = Rgb32FImage::from_fn(32, 24, |x, y| {
            let p = a.get_pixel(x, y).0;
            image::Rgb([p[0] * 0.9 + 0.05, p[1] * 0.9 + 0.05, p[2] * 0.9 + 0.05])
        });
        assert!(ssim(&a, &shifted) > 0.95);
        assert!(ssim(&Rgb32FImage::new(8, 8), &Rgb32FImage::new(8, 8)).is_nan());
    }
}
