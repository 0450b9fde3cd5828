use crate::{
    NdArray, NdArrayTensor, SharedArray,
    element::{ExpElement, FloatNdArrayElement, IntNdArrayElement, QuantElement},
    execute_with_float_dtype, execute_with_numeric_dtype,
    ops::NdArrayMathOps,
};
use burn_backend::{ElementConversion, TensorMetadata, ops::ActivationOps, tensor::FloatTensor};

impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> ActivationOps<Self>
    for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
    fn relu(tensor: FloatTensor<Self>) -> FloatTensor<Self> {
        execute_with_numeric_dtype!(tensor, |array| NdArrayMathOps::clamp_min(array, 0.elem()))
    }

    // realdenoise patch: the default sigmoid is exp(-log(1 + exp(-x))), six
    // passes over the tensor with three transcendental calls per element;
    // SiLU (every block of realdenoise's U-Net) spent a fifth of CPU
    // inference there. One pass of 1 / (1 + exp(-x)) gives the same values
    // (exp(-x) overflowing to infinity yields exactly 0, as it should).
    fn sigmoid(tensor: FloatTensor<Self>) -> FloatTensor<Self> {
        execute_with_float_dtype!(tensor, FloatElem, |array: SharedArray<FloatElem>| {
            array.mapv_into(Logistic::logistic).into_shared()
        })
    }
}

// realdenoise patch: the logistic function per float type. f32 uses a
// branch-free exp that the compiler vectorises (wasm simd128, AVX): libm's
// scalar expf took a tenth of the browser's CPU inference time.
trait Logistic {
    fn logistic(self) -> Self;
}

impl Logistic for f64 {
    fn logistic(self) -> f64 {
        1.0 / (1.0 + (-self).exp_elem())
    }
}

impl Logistic for f32 {
    #[inline(always)]
    fn logistic(self) -> f32 {
        1.0 / (1.0 + exp_f32(-self))
    }
}

/// e^x in f32 without branches: x = n ln2 + r with |r| <= ln2 / 2, Cephes'
/// expf polynomial for e^r (relative error about 2e-7), then 2^n from the
/// exponent bits. Arguments are clamped to [-87.3, 88.7], so e^x is never
/// subnormal and overflows to +inf just above 88.7 (the logistic function
/// then gives exactly 0); NaN stays NaN.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer in
    // plain SSE2 / simd128 arithmetic (`floor` is a libm call on baseline x86-64).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.7);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let e_r = p * r * r + r + 1.0;
    e_r * f32::from_bits(((n as i32 + 127) << 23) as u32)
}
