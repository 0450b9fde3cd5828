//! The vendored burn-ndarray lowers convolutions to im2col + GEMM and
//! computes the sigmoid in one pass (see vendor/README.md). These tests hold
//! its conv2d and conv_transpose2d to plain reference loops on the shapes
//! the model and its gradients use, and its sigmoid to the logistic function.

use crate::common;

use burn::tensor::module::{conv2d, conv_transpose2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Tensor, TensorData};
use common::{device, pseudo_random, Cpu};

fn tensor(shape: [usize; 4], seed: u64) -> (Tensor<Cpu, 4>, Vec<f32>) {
    let n = shape.iter().product();
    let values = pseudo_random(n, seed);
    (Tensor::from_data(TensorData::new(values.clone(), shape), &device()), values)
}

fn values(t: Tensor<Cpu, 4>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().expect("f32 data")
}

/// Reference convolution: y[b, o, i, j] = bias[o] + sum x[b, c, i*s + k*d - p, ...] w[o, c, k, l].
#[allow(clippy::too_many_arguments)]
fn reference_conv2d(x: &[f32], xs: [usize; 4], w: &[f32], ws: [usize; 4], bias: &[f32], stride: usize, padding: usize, dilation: usize) -> (Vec<f32>, [usize; 4]) {
    let [b_n, c_n, h, wd] = xs;
    let [o_n, _, kh_n, kw_n] = ws;
    let oh_n = (h + 2 * padding - dilation * (kh_n - 1) - 1) / stride + 1;
    let ow_n = (wd + 2 * padding - dilation * (kw_n - 1) - 1) / stride + 1;
    let mut y = vec![0.0f32; b_n * o_n * oh_n * ow_n];
    for b in 0..b_n {
        for o in 0..o_n {
            for i in 0..oh_n {
                for j in 0..ow_n {
                    let mut acc = bias.get(o).copied().unwrap_or(0.0) as f64;
                    for c in 0..c_n {
                        for k in 0..kh_n {
                            for l in 0..kw_n {
                                let (yy, xx) = ((i * stride + k * dilation) as isize - padding as isize, (j * stride + l * dilation) as isize - padding as isize);
                                if yy < 0 || xx < 0 || yy >= h as isize || xx >= wd as isize {
                                    continue;
                                }
                                acc += (x[((b * c_n + c) * h + yy as usize) * wd + xx as usize] * w[((o * c_n + c) * kh_n + k) * kw_n + l]) as f64;
                            }
                        }
                    }
                    y[((b * o_n + o) * oh_n + i) * ow_n + j] = acc as f32;
                }
            }
        }
    }
    (y, [b_n, o_n, oh_n, ow_n])
}

/// Reference transposed convolution (scatter form), weight `[in, out, k, k]`.
fn reference_conv_transpose2d(x: &[f32], xs: [usize; 4], w: &[f32], ws: [usize; 4], stride: usize, padding: usize, padding_out: usize) -> (Vec<f32>, [usize; 4]) {
    let [b_n, c_n, h, wd] = xs;
    let [_, o_n, kh_n, kw_n] = ws;
    let oh_n = (h - 1) * stride + kh_n + padding_out - 2 * padding;
    let ow_n = (wd - 1) * stride + kw_n + padding_out - 2 * padding;
    let mut y = vec![0.0f64; b_n * o_n * oh_n * ow_n];
    for b in 0..b_n {
        for c in 0..c_n {
            for i in 0..h {
                for j in 0..wd {
                    for o in 0..o_n {
                        for k in 0..kh_n {
                            for l in 0..kw_n {
                                let (yy, xx) = ((i * stride + k) as isize - padding as isize, (j * stride + l) as isize - padding as isize);
                                if yy < 0 || xx < 0 || yy >= oh_n as isize || xx >= ow_n as isize {
                                    continue;
                                }
                                y[((b * o_n + o) * oh_n + yy as usize) * ow_n + xx as usize] +=
                                    (x[((b * c_n + c) * h + i) * wd + j] * w[((c * o_n + o) * kh_n + k) * kw_n + l]) as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    (y.into_iter().map(|v| v as f32).collect(), [b_n, o_n, oh_n, ow_n])
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn conv2d_matches_the_reference_loops() {
    // (input, weight, stride, padding, dilation): the model's 3x3 convs, its
    // strided downsampling, a 1x1 skip projection, and the shape of a weight
    // gradient (a "kernel" as large as the image, 3x3 outputs).
    let cases: [([usize; 4], [usize; 4], usize, usize, usize); 5] = [
        ([2, 3, 9, 11], [4, 3, 3, 3], 1, 1, 1),
        ([1, 5, 12, 10], [6, 5, 3, 3], 2, 1, 1),
        ([2, 4, 7, 5], [3, 4, 1, 1], 1, 0, 1),
        ([5, 2, 10, 9], [3, 2, 10, 9], 1, 1, 1),
        ([1, 2, 13, 13], [2, 2, 3, 3], 1, 2, 2),
    ];
    for (i, (xs, ws, stride, padding, dilation)) in cases.into_iter().enumerate() {
        let (x, xv) = tensor(xs, 10 + i as u64);
        let (w, wv) = tensor(ws, 20 + i as u64);
        let bias_values = pseudo_random(ws[0], 30 + i as u64);
        let bias = Tensor::<Cpu, 1>::from_data(TensorData::new(bias_values.clone(), [ws[0]]), &device());
        let options = ConvOptions::new([stride; 2], [padding; 2], [dilation; 2], 1);
        let out = conv2d(x, w, Some(bias), options);
        let (expected, shape) = reference_conv2d(&xv, xs, &wv, ws, &bias_values, stride, padding, dilation);
        assert_eq!(out.dims(), shape, "case {i}");
        let diff = max_abs_diff(&values(out), &expected);
        assert!(diff < 1e-4, "case {i}: max difference {diff}");
    }
}

#[test]
fn conv_transpose2d_matches_the_reference_loops() {
    // (input, weight [in, out, k, k], stride, padding, padding_out): the
    // input gradients of the model's stride-1 and stride-2 convolutions.
    let cases: [([usize; 4], [usize; 4], usize, usize, usize); 4] = [
        ([2, 4, 9, 11], [4, 3, 3, 3], 1, 1, 0),
        ([1, 6, 6, 5], [6, 5, 3, 3], 2, 1, 1),
        ([1, 6, 6, 5], [6, 5, 3, 3], 2, 1, 0),
        ([2, 3, 5, 4], [3, 2, 1, 1], 1, 0, 0),
    ];
    for (i, (xs, ws, stride, padding, padding_out)) in cases.into_iter().enumerate() {
        let (x, xv) = tensor(xs, 40 + i as u64);
        let (w, wv) = tensor(ws, 50 + i as u64);
        let options = ConvTransposeOptions::new([stride; 2], [padding; 2], [padding_out; 2], [1, 1], 1);
        let out = conv_transpose2d(x, w, None, options);
        let (expected, shape) = reference_conv_transpose2d(&xv, xs, &wv, ws, stride, padding, padding_out);
        assert_eq!(out.dims(), shape, "case {i}");
        let diff = max_abs_diff(&values(out), &expected);
        assert!(diff < 1e-4, "case {i}: max difference {diff}");
    }
}

#[test]
fn sigmoid_is_the_logistic_function_even_where_exp_overflows() {
    use burn::tensor::activation::{sigmoid, silu};
    // The edges, then a dense sweep over the range SiLU sees (the f32 path
    // computes exp with its own polynomial: every argument reduction matters).
    let mut inputs = vec![-1000.0f32, -100.0, -88.0, -87.5, -20.0, -3.5, -1.0, -1e-3, 0.0, 1e-3, 0.25, 1.0, 3.5, 20.0, 87.5, 88.0, 100.0, 1000.0];
    inputs.extend((-4000..=4000).map(|i| i as f32 * 0.0075 + 0.001));
    let x = Tensor::<Cpu, 1>::from_floats(inputs.as_slice(), &device());
    let sig = sigmoid(x.clone()).into_data().convert::<f32>().into_vec::<f32>().expect("f32 data");
    let swish = silu(x).into_data().convert::<f32>().into_vec::<f32>().expect("f32 data");
    for ((&v, &s), &w) in inputs.iter().zip(&sig).zip(&swish) {
        let expected = 1.0 / (1.0 + (-(v as f64)).exp());
        assert!(s.is_finite() && (s as f64 - expected).abs() <= 1e-7 + 1e-6 * expected, "sigmoid({v}) = {s}, expected {expected}");
        let expected_silu = v as f64 * expected;
        assert!(w.is_finite() && (w as f64 - expected_silu).abs() <= 1e-6 * (1.0 + expected_silu.abs()), "silu({v}) = {w}, expected {expected_silu}");
    }
}
