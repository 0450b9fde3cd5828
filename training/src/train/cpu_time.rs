//! The CPU time this process has used: a measure of compute that other
//! programs on the machine barely change, unlike wall time. `train
//! --cpu-minutes` budgets proxy runs with it, so runs made while a build or
//! a browser test shares the two cores still get equal compute.

/// User plus system CPU seconds of all this process's threads so far, or
/// `None` where the platform does not say.
#[cfg(unix)]
pub fn process_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given
    // and nothing else; the zeroed value is valid for the type either way.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: initialised above (zeroed, then filled by a successful call).
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// Not available off Unix.
#[cfg(not(unix))]
pub fn process_seconds() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn work_adds_cpu_time_and_it_never_runs_backwards() {
        // Other tests run on other threads of this process and count too, so
        // only what they cannot break is asserted: spinning makes the
        // process's CPU time grow by 0.05 s well within 20 s of wall time
        // (on an idle core in 0.05 s), and it never decreases.
        let start = super::process_seconds().expect("CPU time on this platform");
        let wall = std::time::Instant::now();
        let mut x = 0u64;
        let mut last = start;
        while last - start < 0.05 {
            assert!(wall.elapsed().as_secs() < 20, "CPU time did not grow: {start} -> {last}");
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(std::hint::black_box(1));
            }
            let now = super::process_seconds().expect("CPU time");
            assert!(now >= last, "CPU time ran backwards: {last} -> {now}");
            last = now;
        }
        std::hint::black_box(x);
        println!("0.05 s of CPU time took {:.3} s of wall time", wall.elapsed().as_secs_f64());
    }
}
