//! The library's integration tests, in one test binary: each file here was
//! its own binary, and every one of them compiled and linked burn's CPU
//! backend and the model again (about 90 s each in a release build).

mod common;
#[path = "../support/fuzzing.rs"]
mod fuzzing;

mod conv_backend;
mod ensemble;
mod fuzz;
mod model;
mod precision;
mod samplers;
mod tiling;
mod weights;
