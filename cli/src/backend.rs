//! Which burn backend runs the network.

use anyhow::{bail, Result};
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// CUDA when built with it and a GPU is present, else a hardware GPU through wgpu, else the CPU.
    Auto,
    /// Native GPU through wgpu (Vulkan, Metal, DX12; WGSL kernels).
    Wgpu,
    /// CPU (burn ndarray).
    Cpu,
    /// NVIDIA GPU through CUDA (needs the `cuda` cargo feature).
    Cuda,
}

/// The backend actually used, after resolving `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Cpu,
    Wgpu,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    Cuda,
}

impl Resolved {
    pub fn name(self) -> &'static str {
        match self {
            Resolved::Cpu => "cpu (ndarray)",
            Resolved::Wgpu => "wgpu",
            Resolved::Cuda => "cuda",
        }
    }
}

/// Adapters wgpu can see natively, with their kind.
fn wgpu_adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::default();
    futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|adapter| adapter.get_info())
        .collect()
}

fn cuda_present() -> bool {
    cfg!(feature = "cuda") && std::path::Path::new("/dev/nvidiactl").exists()
}

pub fn resolve(choice: BackendChoice) -> Result<Resolved> {
    match choice {
        BackendChoice::Cpu => Ok(Resolved::Cpu),
        BackendChoice::Cuda => {
            if !cfg!(feature = "cuda") {
                bail!("this build has no CUDA support: rebuild with `cargo build --release -p realdenoise-cli --features cuda`");
            }
            #[cfg(feature = "cuda")]
            // cudarc panics in a worker thread when the driver is missing.
            // SAFETY: loading the driver library runs only its own initialisers.
            if unsafe { libloading::Library::new("libcuda.so.1") }.is_err() {
                bail!("--backend cuda needs an NVIDIA GPU and its driver, and libcuda.so.1 cannot be loaded here; use --backend cpu or wgpu");
            }
            Ok(Resolved::Cuda)
        }
        BackendChoice::Wgpu => {
            if wgpu_adapters().is_empty() {
                bail!("wgpu found no GPU adapter (on Linux, install Vulkan drivers, e.g. mesa-vulkan-drivers); use --backend cpu");
            }
            Ok(Resolved::Wgpu)
        }
        BackendChoice::Auto => {
            if cuda_present() {
                return Ok(Resolved::Cuda);
            }
            // A software rasteriser (lavapipe, SwiftShader) is slower than the
            // CPU backend, so only real GPUs are picked automatically.
            let hardware = wgpu_adapters().into_iter().any(|info| {
                matches!(
                    info.device_type,
                    wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu
                )
            });
            Ok(if hardware { Resolved::Wgpu } else { Resolved::Cpu })
        }
    }
}

/// The largest single buffer a GPU device allocates, as burn's runtime
/// (cubecl) reads it: wgpu's storage-binding limit (128 MiB on lavapipe),
/// CUDA's largest allocation. Tiles must keep the network's widest tensor
/// within it.
pub fn max_buffer_bytes<R: cubecl::Runtime>(device: &R::Device) -> Option<usize> {
    Some(R::client(device).properties().memory.max_page_size as usize)
}

/// (reserved, in use) bytes of burn's GPU memory pools on a device, as
/// burn's runtime (cubecl) counts them.
pub fn pool_bytes<R: cubecl::Runtime>(device: &R::Device) -> Option<(u64, u64)> {
    let usage = R::client(device).memory_usage().ok()?;
    Some((usage.bytes_reserved, usage.bytes_in_use))
}
