//! What a call of `train` ran on: the backend, burn's device, the processor
//! and the NVIDIA GPUs, recorded in the run state for the model card. Runs
//! trained before 2026-12 have no such record; the card says so.

use std::fmt::Debug;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// One call of `train`: where it started and what it ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainCall {
    /// The run's step when the call started.
    pub first_step: u64,
    /// The backend as `train` names it, e.g. "cpu (burn ndarray)".
    pub backend: String,
    /// burn's device, e.g. "Cpu" or "Cuda(0)".
    pub device: String,
    /// The processor and how many threads this process may use.
    pub cpu: String,
    /// The NVIDIA GPUs `nvidia-smi` lists (name and memory); `None` for a
    /// CPU device, where it is not asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<String>,
}

impl TrainCall {
    /// The call starting at `first_step` on this machine.
    pub fn here(backend: &str, device: &impl Debug, first_step: u64) -> Self {
        let device = format!("{device:?}");
        let on_cpu = device.contains("Cpu");
        Self {
            first_step,
            backend: backend.into(),
            cpu: cpu_description(),
            gpus: (!on_cpu).then(|| nvidia_gpus().unwrap_or_else(|| "none listed by nvidia-smi".into())),
            device,
        }
    }

    /// "cpu (burn ndarray) on Cpu: AMD EPYC 7B13 (2 threads)", with the GPUs
    /// where there are any.
    pub fn describe(&self) -> String {
        let gpus = self.gpus.as_ref().map_or(String::new(), |g| format!("; GPU: {g}"));
        format!("{} on {}: {}{gpus}", self.backend, self.device, self.cpu)
    }
}

/// The processor's model name (from /proc/cpuinfo where there is one) and
/// the threads this process may use.
pub fn cpu_description() -> String {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = realdenoise::host::cpu_model().unwrap_or_else(|| format!("{} processor", std::env::consts::ARCH));
    format!("{model} ({threads} threads)")
}

/// "NVIDIA H200, 143771 MiB" per GPU, joined by "; ", when `nvidia-smi` runs.
fn nvidia_gpus() -> Option<String> {
    let out = Command::new("nvidia-smi").args(["--query-gpu=name,memory.total", "--format=csv,noheader"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let gpus: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    (out.status.success() && !gpus.is_empty()).then(|| gpus.join("; "))
}
