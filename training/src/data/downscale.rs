//! Making targets: an integer box filter in linear light (the sRGB
//! standard's transfer function) and PNG encoding.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbImage};

/// sRGB code value (0..=255) to linear light (IEC 61966-2-1).
pub fn srgb_code_to_linear(v: u8) -> f64 {
    let c = v as f64 / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Linear light to the nearest 8-bit sRGB code value.
pub fn linear_to_srgb_code(l: f64) -> u8 {
    let l = l.clamp(0.0, 1.0);
    let c = if l <= 0.0031308 { 12.92 * l } else { 1.055 * l.powf(1.0 / 2.4) - 0.055 };
    (c * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Centred crop of `img` to the largest multiple of `factor` in each dimension.
pub fn crop_to_multiple(img: &RgbImage, factor: u32) -> RgbImage {
    let f = factor.max(1);
    let (w, h) = img.dimensions();
    let (cw, ch) = (w / f * f, h / f * f);
    if (cw, ch) == (w, h) {
        return img.clone();
    }
    image::imageops::crop_imm(img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image()
}

/// Exact box downscale by an integer `factor`: centred crop to a multiple of
/// the factor, then each output pixel is the mean of its `factor x factor`
/// block, averaged in linear light and rounded back to 8-bit sRGB.
/// `factor` 1 returns the image unchanged. An image smaller than one block
/// gives an empty image.
pub fn box_downscale(img: &RgbImage, factor: u32) -> RgbImage {
    let f = factor.max(1);
    if f == 1 {
        return img.clone();
    }
    let (w, h) = img.dimensions();
    let (ow, oh) = (w / f, h / f);
    let (x0, y0) = ((w - ow * f) / 2, (h - oh * f) / 2);
    let lut: Vec<f64> = (0..=255u8).map(srgb_code_to_linear).collect();
    let raw = img.as_raw();
    let stride = w as usize * 3;
    let n = (f * f) as f64;
    let mut out = vec![0u8; ow as usize * oh as usize * 3];
    let mut acc = vec![0f64; ow as usize * 3];
    for oy in 0..oh as usize {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for dy in 0..f as usize {
            let row = &raw[(y0 as usize + oy * f as usize + dy) * stride..][..stride];
            for ox in 0..ow as usize {
                let a = &mut acc[ox * 3..ox * 3 + 3];
                let base = (x0 as usize + ox * f as usize) * 3;
                for px in row[base..base + f as usize * 3].chunks_exact(3) {
                    a[0] += lut[px[0] as usize];
                    a[1] += lut[px[1] as usize];
                    a[2] += lut[px[2] as usize];
                }
            }
        }
        let dst = &mut out[oy * ow as usize * 3..(oy + 1) * ow as usize * 3];
        for (d, a) in dst.iter_mut().zip(&acc) {
            *d = linear_to_srgb_code(a / n);
        }
    }
    RgbImage::from_raw(ow, oh, out).unwrap_or_else(|| RgbImage::new(0, 0))
}

/// PNG bytes at maximum compression (deterministic for a given image).
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut buf = Vec::new();
    PngEncoder::new_with_quality(&mut buf, CompressionType::Best, FilterType::Adaptive).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(buf)
}
