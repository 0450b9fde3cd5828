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

/// Adapters of the graphics API burn's wgpu backend runs on here (Vulkan,
/// or Metal on macOS), with their kind. Only that API is probed: creating a
/// wgpu instance with every backend also starts OpenGL/EGL, which connects
/// to Wayland and prints `error: XDG_RUNTIME_DIR is invalid or not set` to
/// stderr on machines without a desktop session.
pub fn wgpu_adapters() -> Vec<wgpu::AdapterInfo> {
    use cubecl::wgpu::{AutoGraphicsApi, GraphicsApi};
    let backends = wgpu::Backends::from(AutoGraphicsApi::backend());
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    futures_lite::future::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .map(|adapter| adapter.get_info())
        .collect()
}

/// Whether an adapter is a real GPU rather than a software rasteriser
/// (lavapipe, SwiftShader, WARP), which is slower than the CPU backend.
pub fn is_hardware(info: &wgpu::AdapterInfo) -> bool {
    matches!(
        info.device_type,
        wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu
    )
}

fn cuda_present() -> bool {
    cfg!(feature = "cuda") && std::path::Path::new("/dev/nvidiactl").exists()
}

pub fn resolve(choice: BackendChoice) -> Result<Resolved> {
    resolve_noting_software(choice).map(|(resolved, _)| resolved)
}

/// [`resolve`], and for `--backend wgpu` on a machine whose only adapters
/// are software rasterisers, a warning to print before any work.
pub fn resolve_noting_software(choice: BackendChoice) -> Result<(Resolved, Option<String>)> {
    match choice {
        BackendChoice::Cpu => Ok((Resolved::Cpu, None)),
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
            Ok((Resolved::Cuda, None))
        }
        BackendChoice::Wgpu => {
            let adapters = wgpu_adapters();
            let Some(first) = adapters.first() else {
                bail!("wgpu found no GPU adapter (on Linux, install Vulkan drivers, e.g. mesa-vulkan-drivers); use --backend cpu");
            };
            let warning = (!adapters.iter().any(is_hardware)).then(|| {
                format!(
                    "the only wgpu adapter here is {} ({:?}), a software renderer that runs on the CPU: it is much slower \
                     than --backend cpu (minutes for a small image); use --backend cpu unless you are testing wgpu",
                    first.name, first.device_type
                )
            });
            Ok((Resolved::Wgpu, warning))
        }
        BackendChoice::Auto => {
            if cuda_present() {
                return Ok((Resolved::Cuda, None));
            }
            // A software rasteriser (lavapipe, SwiftShader) is slower than the
            // CPU backend, so only real GPUs are picked automatically.
            let hardware = wgpu_adapters().iter().any(is_hardware);
            Ok((if hardware { Resolved::Wgpu } else { Resolved::Cpu }, None))
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
