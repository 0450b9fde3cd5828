//! Pieces the fuzz tests share (the weights fuzzing here, the image
//! fuzzing in cli/tests/fuzz_images.rs): a per-thread allocation tracker,
//! a small seeded generator and the integers most likely to break size
//! arithmetic. Included with `#[path]`; each test binary installs
//! `#[global_allocator] static ALLOCATOR: Tracking = Tracking;` itself.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts live and peak bytes per thread, so the test harness's other
/// threads do not blur a case's numbers.
pub struct Tracking;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grow(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + bytes;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrink(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grow(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        shrink(layout.size());
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grow(layout.size());
        }
        pointer
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        moved
    }
}

/// Peak bytes allocated on this thread while `run` ran, above what was live before.
pub fn peak_allocation<T>(run: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = run();
    (result, PEAK.with(Cell::get) - before)
}

/// SplitMix64: a tiny, well-mixed generator, stable across crate versions.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The values most likely to break size arithmetic.
pub const INTERESTING: [i128; 16] = [
    0,
    1,
    2,
    3,
    -1,
    7,
    255,
    65_536,
    1_000_000_000,
    (1 << 31) - 1,
    1 << 32,
    1 << 53,
    (1 << 63) - 1,
    1 << 63,
    u64::MAX as i128,
    -(1 << 63),
];

/// Cases per target: `REALDENOISE_FUZZ_CASES`, else `quick`.
pub fn cases(quick: u64) -> u64 {
    std::env::var("REALDENOISE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(quick)
}

/// `REALDENOISE_FUZZ_SEED`, else a fixed seed so CI is deterministic.
pub fn base_seed() -> u64 {
    std::env::var("REALDENOISE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(2026)
}

/// The seed of case `case`: distinct per case, reproducible alone.
pub fn case_seed(case: u64) -> u64 {
    base_seed() ^ case.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// A panic payload's message.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}
