use crate::{
    NdArray, NdArrayTensor, SharedArray,
    element::{ExpElement, FloatNdArrayElement, IntNdArrayElement, QuantElement},
    execute_with_float_dtype, execute_with_numeric_dtype,
    ops::NdArrayMathOps,
};
use burn_backend::{ElementConversion, TensorMetadata, ops::ActivationOps, tensor::FloatTensor};
use num_traits::One;

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
            array
                .mapv_into(|a: FloatElem| FloatElem::one() / (FloatElem::one() + (-a).exp_elem()))
                .into_shared()
        })
    }
}
