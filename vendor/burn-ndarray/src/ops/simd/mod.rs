pub(crate) mod avgpool;
mod base;
pub(crate) mod binary;
pub(crate) mod binary_elemwise;
pub(crate) mod cmp;
// realdenoise patch: not compiled on wasm32, where convolutions take im2col + GEMM.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod conv;
pub(crate) mod maxpool;
pub(crate) mod unary;

pub use base::*;
