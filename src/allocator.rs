//! The process's allocator (mimalloc, set as the global allocator in `main.rs`) and the one
//! call the memory gate makes into it.
//!
//! mimalloc keeps memory freed by the program for reuse and hands it back to the OS lazily (on
//! later allocation activity, after a delay). After a burst — a flood the memory gate refused
//! once it was above its soft limit — a process that has gone quiet can keep tens of MiB of
//! freed pages resident. The gate asks for them back while it is above the soft limit
//! ([`release_free_memory`]), as the Collector's memory limiter forces a garbage collection.

/// Returns memory mimalloc holds but the program has freed to the OS. Cheap when there is
/// nothing to return; never frees memory the program still uses.
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: `mi_collect(bool)` takes no pointers and has no preconditions: mimalloc documents
    // it as callable from any thread at any time ("eagerly free memory"); it only returns free
    // pages of the calling thread's heap, abandoned segments and the arenas to the OS. Calling
    // it when mimalloc is not the global allocator (unit tests) touches only mimalloc's own,
    // empty heap. Exercised by `tests::release_is_safe_from_many_threads_and_keeps_live_data`.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_is_safe_from_many_threads_and_keeps_live_data() {
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut live = Vec::new();
                    for i in 0..200u32 {
                        live.push(vec![t; 4096 + (i as usize % 7) * 1024]);
                        if i % 3 == 0 {
                            live.swap_remove(0);
                        }
                        if i % 50 == 0 {
                            release_free_memory();
                        }
                    }
                    release_free_memory();
                    live.iter().all(|v| v.iter().all(|b| *b == t))
                })
            })
            .collect();
        for th in threads {
            assert!(th.join().unwrap_or(false), "live data changed");
        }
    }
}
