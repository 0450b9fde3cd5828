//! What the machine running a workspace binary is, for the records that
//! report where something ran (the CLI's benchmarks, the trainer's runs).

/// The processor's model name from `/proc/cpuinfo`, where there is one.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
}
