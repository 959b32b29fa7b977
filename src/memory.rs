//! glibc malloc settings for a long-lived, mostly idle daemon.
//!
//! glibc gives every thread that allocates an arena of its own, up to eight
//! per core, and keeps each arena's freed memory for reuse. ops-worker has a
//! dozen mostly idle threads (the two runtimes' workers and the blocking
//! pool), so by default a handful of arenas each hold a few hundred KiB that
//! nothing uses again. Two arenas are plenty for a worker that spends its
//! time waiting; the allocations that matter for latency are small and short.
//! An operator's own `MALLOC_ARENA_MAX` or `glibc.malloc.arena_max` tunable
//! wins.
//!
//! Other allocators (musl) do neither; these are no-ops there.

/// Caps glibc's malloc arenas at two, unless the environment sets their
/// number (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in
/// `GLIBC_TUNABLES`; other tunables leave the cap in place). Call before any
/// thread is started.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if std::env::var_os("MALLOC_ARENA_MAX").is_none()
            && !tunables.contains("glibc.malloc.arena_max")
        {
            // SAFETY: mallopt only changes allocator parameters; it is called
            // from main before any other thread exists.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
    }
}

/// Hands the memory that start-up freed (configuration parsing, migrations,
/// the TLS root store's parsing) back to the kernel. glibc only returns the
/// top of the heap by itself; what was freed below a live allocation stays
/// resident until this.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
