//! Where a backend is chosen. One place for the device policy of every
//! binary and of the browser package:
//!
//! - which backend `auto` picks, and why ([`resolve`]): CUDA when this
//!   build has it and the NVIDIA driver loads, else a hardware GPU, else the
//!   CPU — never a software GPU;
//! - which GPU adapters are software renderers ([`Adapter::software`]):
//!   lavapipe, llvmpipe, SwiftShader, WARP and fallback adapters run on the
//!   CPU, slower than the CPU backend itself;
//! - how much memory a tile may use ([`memory_budget`]) and the largest
//!   buffer a GPU allocates ([`max_buffer_bytes`]);
//! - the limits on what a caller may ask for ([`limits`]).
//!
//! The CLI, its benchmark and the trainer call it natively; `src/web/` hands
//! the same answers to the JavaScript package, which restates none of them.
//! Probing the machine ([`cuda_driver_loads`], [`wgpu_adapters`]) is kept
//! apart from the policy, which is a pure function of what was found.

use std::fmt;
use std::str::FromStr;

use burn::cubecl::Runtime;

/// Limits on what a caller may ask for, shared by every front end.
pub mod limits {
    /// Tiles never grow past this side, whatever the memory budget.
    pub const MAX_TILE_SIDE: usize = 2048;
    /// The most sampling steps a call may ask for (the model caps them at
    /// its `T` anyway; this only refuses absurd requests early).
    pub const MAX_STEPS: usize = 10_000;
    /// The largest image side the browser package takes (sizes cross into
    /// wasm as `u32`; this keeps every pixel count exact in an f64).
    pub const MAX_BROWSER_IMAGE_SIDE: usize = 1 << 20;
    /// The most workers a browser tile plan is made for.
    pub const MAX_WORKERS: usize = 64;
}

/// The backend a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BackendChoice {
    /// CUDA when built with it and a GPU is present, else a hardware GPU through wgpu, else the CPU.
    Auto,
    /// Native GPU through wgpu (Vulkan, Metal, DX12; WGSL kernels); WebGPU in a browser.
    #[cfg_attr(feature = "clap", value(alias = "webgpu"))]
    Wgpu,
    /// CPU (burn ndarray).
    Cpu,
    /// NVIDIA GPU through CUDA (needs the `cuda` cargo feature).
    Cuda,
}

impl FromStr for BackendChoice {
    type Err = DeviceError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "auto" => Ok(Self::Auto),
            "wgpu" | "webgpu" => Ok(Self::Wgpu),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(DeviceError::UnknownBackend(other.chars().take(40).collect())),
        }
    }
}

/// The backend that runs the network, once `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    /// wgpu natively, WebGPU in a browser.
    Wgpu,
    Cuda,
}

impl Backend {
    /// The name a native binary prints.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu (ndarray)",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// The name the browser package uses ("cpu" or "webgpu").
    pub fn browser_name(self) -> &'static str {
        match self {
            Backend::Wgpu => "webgpu",
            Backend::Cpu | Backend::Cuda => "cpu",
        }
    }
}

/// Where the code runs: the reasons and errors name the GPU API it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Native,
    Browser,
}

impl Platform {
    fn gpu_api(self) -> &'static str {
        match self {
            Platform::Native => "wgpu",
            Platform::Browser => "WebGPU",
        }
    }
}

/// What kind of device an adapter says it is. Browsers do not say
/// (WebGPU has no device type), so their adapters are `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    /// A rasteriser running on the CPU (what Vulkan calls a CPU device).
    Cpu,
    Unknown,
}

/// A GPU adapter, as wgpu or the browser's WebGPU describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// Name, vendor, driver and description, joined: software renderers
    /// are recognised by name here.
    pub description: String,
    pub kind: AdapterKind,
    /// WebGPU's `isFallbackAdapter`: the browser's own software adapter.
    pub is_fallback: bool,
}

/// Software renderers, by a case-insensitive part of their name, and the
/// name shown to users.
const SOFTWARE_RENDERERS: [(&str, &str); 5] = [
    ("swiftshader", "SwiftShader"),
    ("llvmpipe", "llvmpipe"),
    ("lavapipe", "lavapipe"),
    ("microsoft basic render", "WARP"),
    ("software", "software"),
];

impl Adapter {
    /// The software renderer this adapter is, in words ("SwiftShader", "a
    /// fallback adapter"), or `None` for a hardware GPU.
    pub fn software(&self) -> Option<&'static str> {
        let text = self.description.to_lowercase();
        if let Some((_, name)) = SOFTWARE_RENDERERS.iter().find(|(part, _)| text.contains(part)) {
            return Some(name);
        }
        if self.is_fallback {
            return Some("a fallback adapter");
        }
        (self.kind == AdapterKind::Cpu).then_some("a CPU rasteriser")
    }
}

/// Whether CUDA can run here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cuda {
    /// This build has no CUDA kernels.
    NotBuilt,
    /// Built with CUDA, but the NVIDIA driver (libcuda) does not load.
    NoDriver,
    Ready,
}

/// What was found on the machine; [`resolve`] decides from it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub platform: Platform,
    pub cuda: Cuda,
    /// The adapters of the GPU API burn's wgpu backend uses here, in the
    /// order it offers them (the first is the one it takes).
    pub adapters: Vec<Adapter>,
}

/// The backend to use and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub backend: Backend,
    /// Why this backend, as a phrase to show users ("a hardware WebGPU
    /// adapter is available").
    pub reason: String,
    /// Said before any work when the choice will be slow: an explicit GPU
    /// request that can only run on a software renderer.
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown backend '{0}' (expected auto, wgpu, webgpu, cpu or cuda)")]
    UnknownBackend(String),
    #[error("this build has no CUDA support: rebuild with `--features cuda` (e.g. `cargo build --release -p realdenoise-cli --features cuda`)")]
    CudaNotBuilt,
    #[error("--backend cuda needs an NVIDIA GPU and its driver, and libcuda.so.1 cannot be loaded here; use --backend cpu or wgpu")]
    CudaDriverMissing,
    #[error("CUDA does not run in a browser; use \"webgpu\" or \"cpu\"")]
    CudaInBrowser,
    #[error("wgpu found no GPU adapter (on Linux, install Vulkan drivers, e.g. mesa-vulkan-drivers); use --backend cpu")]
    NoWgpuAdapter,
    #[error("WebGPU was requested but this browser exposes no WebGPU adapter")]
    NoWebGpuAdapter,
}

/// Picks the backend for `choice` on `machine`. `auto` never picks a
/// software GPU (it is slower than the CPU backend); an explicit GPU request
/// is honoured on one, with a warning.
pub fn resolve(choice: BackendChoice, machine: &Machine) -> Result<Resolution, DeviceError> {
    let browser = machine.platform == Platform::Browser;
    let api = machine.platform.gpu_api();
    let hardware = machine.adapters.iter().find(|adapter| adapter.software().is_none());
    let software = machine.adapters.first().and_then(Adapter::software);
    let chosen = |backend, reason: String| Ok(Resolution { backend, reason, warning: None });
    match choice {
        BackendChoice::Cpu => chosen(Backend::Cpu, "the CPU backend was requested".into()),
        BackendChoice::Cuda if browser => Err(DeviceError::CudaInBrowser),
        BackendChoice::Cuda => match machine.cuda {
            Cuda::NotBuilt => Err(DeviceError::CudaNotBuilt),
            Cuda::NoDriver => Err(DeviceError::CudaDriverMissing),
            Cuda::Ready => chosen(Backend::Cuda, "CUDA was requested".into()),
        },
        BackendChoice::Wgpu => {
            if machine.adapters.is_empty() {
                return Err(if browser { DeviceError::NoWebGpuAdapter } else { DeviceError::NoWgpuAdapter });
            }
            match (hardware, software) {
                (None, Some(renderer)) => Ok(Resolution {
                    backend: Backend::Wgpu,
                    reason: format!("{api} was requested; its adapter is a software renderer ({renderer}), slower than the CPU"),
                    warning: Some(format!(
                        "the only {api} adapter here is a software renderer ({renderer}) that runs on the CPU: it is much \
                         slower than the CPU backend (minutes for a small image); {} unless you are testing {api}",
                        if browser { "use the CPU backend" } else { "use --backend cpu" }
                    )),
                }),
                _ => chosen(Backend::Wgpu, format!("{api} was requested")),
            }
        }
        BackendChoice::Auto => {
            if machine.cuda == Cuda::Ready && !browser {
                return chosen(Backend::Cuda, "an NVIDIA GPU with CUDA is available".into());
            }
            match (hardware, software) {
                (Some(_), _) => chosen(Backend::Wgpu, format!("a hardware {api} adapter is available")),
                (None, Some(renderer)) => {
                    chosen(Backend::Cpu, format!("the only {api} adapter is a software renderer ({renderer}); the CPU is faster"))
                }
                (None, None) if browser => chosen(Backend::Cpu, "this browser exposes no WebGPU adapter".into()),
                (None, None) => chosen(Backend::Cpu, "no GPU adapter was found".into()),
            }
        }
    }
}

/// Activation memory one tile may use, by default, in bytes. On a GPU the
/// tiles also keep their widest tensor within [`max_buffer_bytes`].
pub fn memory_budget(platform: Platform, backend: Backend) -> usize {
    const MIB: usize = 1 << 20;
    match (platform, backend) {
        // A native binary has the machine's memory; 1 GiB keeps several
        // runs side by side possible on a small machine.
        (Platform::Native, _) => 1024 * MIB,
        // A browser tab shares memory with the page and has no swap.
        (Platform::Browser, Backend::Wgpu) => 512 * MIB,
        (Platform::Browser, _) => 256 * MIB,
    }
}

/// The largest single buffer a GPU device allocates, as burn's runtime
/// (cubecl) reads it: wgpu's storage-binding limit (128 MiB on lavapipe),
/// CUDA's largest allocation. Tiles keep the network's widest tensor
/// within it.
pub fn max_buffer_bytes<R: Runtime>(device: &R::Device) -> usize {
    R::client(device).properties().memory.max_page_size as usize
}

/// (reserved, in use) bytes of burn's GPU memory pools on a device, as
/// burn's runtime (cubecl) counts them.
pub fn pool_bytes<R: Runtime>(device: &R::Device) -> Option<(u64, u64)> {
    let usage = R::client(device).memory_usage().ok()?;
    Some((usage.bytes_reserved, usage.bytes_in_use))
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Cuda => "cuda",
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

/// Probing a native machine.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;

    /// Whether the NVIDIA driver library loads. cudarc panics in a worker
    /// thread when it is missing, so binaries ask this first.
    pub fn cuda_driver_loads() -> bool {
        // SAFETY: loading the driver library runs only its own initialisers.
        unsafe { libloading::Library::new("libcuda.so.1") }.is_ok()
    }

    /// [`Cuda`] for a binary built with (`cuda_built`) or without CUDA.
    pub fn cuda_here(cuda_built: bool) -> Cuda {
        match (cuda_built, cuda_built && cuda_driver_loads()) {
            (false, _) => Cuda::NotBuilt,
            (true, false) => Cuda::NoDriver,
            (true, true) => Cuda::Ready,
        }
    }

    /// Adapters of the graphics API burn's wgpu backend runs on here
    /// (Vulkan, or Metal on macOS). Only that API is probed: a wgpu
    /// instance with every backend also starts OpenGL/EGL, which connects
    /// to Wayland and prints `error: XDG_RUNTIME_DIR is invalid or not set`
    /// on machines without a desktop session.
    pub fn wgpu_adapters() -> Vec<wgpu::AdapterInfo> {
        use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
        let backends = wgpu::Backends::from(AutoGraphicsApi::backend());
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor { backends, ..wgpu::InstanceDescriptor::new_without_display_handle() });
        futures_lite::future::block_on(instance.enumerate_adapters(backends)).into_iter().map(|a| a.get_info()).collect()
    }

    impl From<&wgpu::AdapterInfo> for Adapter {
        fn from(info: &wgpu::AdapterInfo) -> Self {
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => AdapterKind::DiscreteGpu,
                wgpu::DeviceType::IntegratedGpu => AdapterKind::IntegratedGpu,
                wgpu::DeviceType::VirtualGpu => AdapterKind::VirtualGpu,
                wgpu::DeviceType::Cpu => AdapterKind::Cpu,
                wgpu::DeviceType::Other => AdapterKind::Unknown,
            };
            Adapter { description: format!("{} {} {}", info.name, info.driver, info.driver_info), kind, is_fallback: false }
        }
    }

    /// The machine as far as `choice` needs it: CUDA is probed only when it
    /// could be picked, adapters only when wgpu could be (creating a wgpu
    /// instance takes a moment and may log).
    pub fn probe(choice: BackendChoice, cuda_built: bool) -> Machine {
        let cuda = match choice {
            BackendChoice::Cuda | BackendChoice::Auto => cuda_here(cuda_built),
            _ => Cuda::NotBuilt,
        };
        let needs_adapters = match choice {
            BackendChoice::Wgpu => true,
            BackendChoice::Auto => cuda != Cuda::Ready,
            _ => false,
        };
        let adapters = if needs_adapters { wgpu_adapters().iter().map(Adapter::from).collect() } else { Vec::new() };
        Machine { platform: Platform::Native, cuda, adapters }
    }

    /// [`resolve`] on this machine, for a binary built with or without CUDA.
    pub fn resolve_here(choice: BackendChoice, cuda_built: bool) -> Result<Resolution, DeviceError> {
        resolve(choice, &probe(choice, cuda_built))
    }

    /// The first wgpu adapter in words, e.g. "llvmpipe (LLVM 15.0.6, 256
    /// bits) (Cpu, Vulkan)", for records of where something ran.
    pub fn wgpu_adapter_name() -> String {
        wgpu_adapters()
            .first()
            .map(|info| format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend))
            .unwrap_or_else(|| "no adapter".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(description: &str, kind: AdapterKind) -> Adapter {
        Adapter { description: description.into(), kind, is_fallback: false }
    }

    fn machine(platform: Platform, cuda: Cuda, adapters: Vec<Adapter>) -> Machine {
        Machine { platform, cuda, adapters }
    }

    #[test]
    fn software_renderers_are_recognised_by_name_kind_or_fallback_flag() {
        let lavapipe = adapter("llvmpipe (LLVM 15.0.6, 256 bits) llvmpipe Mesa 22.3.6", AdapterKind::Cpu);
        assert_eq!(lavapipe.software(), Some("llvmpipe"));
        assert_eq!(adapter("Google SwiftShader", AdapterKind::Unknown).software(), Some("SwiftShader"));
        assert_eq!(adapter("Microsoft Basic Render Driver", AdapterKind::Unknown).software(), Some("WARP"));
        assert_eq!(adapter("some new rasteriser", AdapterKind::Cpu).software(), Some("a CPU rasteriser"));
        let fallback = Adapter { is_fallback: true, ..adapter("", AdapterKind::Unknown) };
        assert_eq!(fallback.software(), Some("a fallback adapter"));
        assert_eq!(adapter("NVIDIA GeForce RTX 4090", AdapterKind::DiscreteGpu).software(), None);
        assert_eq!(adapter("apple metal-3", AdapterKind::Unknown).software(), None);
    }

    #[test]
    fn auto_prefers_cuda_then_a_hardware_gpu_then_the_cpu_and_never_a_software_gpu() {
        let gpu = adapter("AMD Radeon", AdapterKind::DiscreteGpu);
        let soft = adapter("llvmpipe", AdapterKind::Cpu);
        let pick = |cuda, adapters| resolve(BackendChoice::Auto, &machine(Platform::Native, cuda, adapters)).unwrap().backend;
        assert_eq!(pick(Cuda::Ready, vec![gpu.clone()]), Backend::Cuda);
        assert_eq!(pick(Cuda::NoDriver, vec![gpu.clone()]), Backend::Wgpu);
        assert_eq!(pick(Cuda::NotBuilt, vec![soft.clone(), gpu.clone()]), Backend::Wgpu);
        assert_eq!(pick(Cuda::NotBuilt, vec![soft.clone()]), Backend::Cpu);
        assert_eq!(pick(Cuda::NotBuilt, vec![]), Backend::Cpu);
    }

    #[test]
    fn the_browser_reasons_are_the_ones_the_package_documents() {
        let swiftshader = adapter("google swiftshader", AdapterKind::Unknown);
        let browser = |choice, adapters| resolve(choice, &machine(Platform::Browser, Cuda::NotBuilt, adapters));
        let auto = browser(BackendChoice::Auto, vec![swiftshader.clone()]).unwrap();
        assert_eq!((auto.backend, auto.reason.as_str()), (Backend::Cpu, "the only WebGPU adapter is a software renderer (SwiftShader); the CPU is faster"));
        let asked = browser(BackendChoice::Wgpu, vec![swiftshader]).unwrap();
        assert_eq!(asked.backend.browser_name(), "webgpu");
        assert_eq!(asked.reason, "WebGPU was requested; its adapter is a software renderer (SwiftShader), slower than the CPU");
        assert!(asked.warning.is_some());
        assert_eq!(browser(BackendChoice::Auto, vec![]).unwrap().reason, "this browser exposes no WebGPU adapter");
        assert_eq!(browser(BackendChoice::Wgpu, vec![]), Err(DeviceError::NoWebGpuAdapter));
        assert_eq!(browser(BackendChoice::Cuda, vec![]), Err(DeviceError::CudaInBrowser));
        let hardware = browser(BackendChoice::Auto, vec![adapter("apple metal-3", AdapterKind::Unknown)]).unwrap();
        assert_eq!((hardware.backend, hardware.reason.as_str()), (Backend::Wgpu, "a hardware WebGPU adapter is available"));
        assert_eq!(browser(BackendChoice::Cpu, vec![]).unwrap().reason, "the CPU backend was requested");
    }

    #[test]
    fn explicit_requests_fail_clearly_when_they_cannot_run() {
        let native = |choice, cuda, adapters| resolve(choice, &machine(Platform::Native, cuda, adapters));
        assert_eq!(native(BackendChoice::Cuda, Cuda::NotBuilt, vec![]), Err(DeviceError::CudaNotBuilt));
        assert_eq!(native(BackendChoice::Cuda, Cuda::NoDriver, vec![]), Err(DeviceError::CudaDriverMissing));
        assert_eq!(native(BackendChoice::Wgpu, Cuda::Ready, vec![]), Err(DeviceError::NoWgpuAdapter));
        let soft = native(BackendChoice::Wgpu, Cuda::NotBuilt, vec![adapter("lavapipe", AdapterKind::Cpu)]).unwrap();
        assert_eq!(soft.backend, Backend::Wgpu);
        assert!(soft.warning.unwrap().contains("software renderer (lavapipe)"));
        let hard = native(BackendChoice::Wgpu, Cuda::NotBuilt, vec![adapter("Intel Arc", AdapterKind::DiscreteGpu)]).unwrap();
        assert_eq!(hard.warning, None);
    }

    #[test]
    fn backend_names_parse_in_both_spellings_and_unknown_ones_are_refused() {
        assert_eq!("webgpu".parse::<BackendChoice>(), Ok(BackendChoice::Wgpu));
        assert_eq!("wgpu".parse::<BackendChoice>(), Ok(BackendChoice::Wgpu));
        assert_eq!("auto".parse::<BackendChoice>(), Ok(BackendChoice::Auto));
        assert_eq!("gpu".parse::<BackendChoice>(), Err(DeviceError::UnknownBackend("gpu".into())));
        for choice in [BackendChoice::Auto, BackendChoice::Wgpu, BackendChoice::Cpu, BackendChoice::Cuda] {
            assert_eq!(choice.to_string().parse::<BackendChoice>(), Ok(choice));
        }
    }

    #[test]
    fn browsers_get_smaller_budgets_than_native_binaries() {
        assert_eq!(memory_budget(Platform::Native, Backend::Cpu), 1 << 30);
        assert_eq!(memory_budget(Platform::Browser, Backend::Wgpu), 512 << 20);
        assert_eq!(memory_budget(Platform::Browser, Backend::Cpu), 256 << 20);
    }
}
