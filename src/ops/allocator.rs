//! The memory allocator of the course's binaries: mimalloc, set up for tensor code; and
//! candle's thread pool for element-wise operations, set up to share two cores.
//!
//! A training step frees and allocates hundreds of megabytes of tensors. By default mimalloc
//! hands freed memory back to the operating system after 10 ms, so every step got fresh pages
//! that the kernel had to zero on first touch: `perf` showed the kernel's `clear_page` at 15–38 %
//! of the CPU time of a DCGAN step (batch 32 to 128). Keeping freed memory for reuse, in an arena
//! reserved up front, measured 20 → 33 img/s at batch 128 on two cores (`bench-train`).

/// `mi_option_purge_delay` in mimalloc's option enum (v2 and v3): how long freed memory waits
/// before it is returned to the OS; −1 = never.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

extern "C" {
    /// mimalloc's `int mi_reserve_os_memory(size_t size, bool commit, bool allow_large)`
    /// (declared here: `libmimalloc-sys` exposes it only behind a feature for custom arenas).
    fn mi_reserve_os_memory(size: usize, commit: bool, allow_large: bool) -> std::ffi::c_int;
}

/// candle's element-wise operations run on their own pool of threads besides rayon's, whose
/// workers spin for a while after each operation (25 000 rounds by default) before sleeping.
/// On two cores that spinning takes a core from the GEMMs running on rayon's threads: `perf`
/// counted 14–17 % of a laptop-preset step's CPU time in it. With no spinning the preset went
/// from 966–1142 to 1212–1352 img/s (chapter-05, 2 epochs, interleaved 3×); the DCGAN step at
/// batch 32 was unchanged. A value the user set is kept.
const CANDLE_SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// Keep freed memory for reuse instead of returning it to the OS, reserve (not commit) an
/// address range for large tensors, and stop candle's element-wise workers from spinning. Call
/// first thing in `main` (before any other thread starts) of a binary whose global allocator is
/// `mimalloc::MiMalloc`; the allocator settings change nothing for other allocators.
pub fn tune_for_tensors() {
    if std::env::var_os(CANDLE_SPIN_LIMIT).is_none() {
        // candle reads it once, when its pool starts (at the first element-wise operation).
        std::env::set_var(CANDLE_SPIN_LIMIT, "0");
    }
    // SAFETY: both calls only change mimalloc's settings; they are documented as safe to make
    // at any time, and they touch no memory of the program.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        // 8 GiB of address space, committed only as used; failure (e.g. a small address-space
        // limit) just leaves mimalloc's default arenas.
        let _ = mi_reserve_os_memory(8 << 30, false, true);
    }
}
