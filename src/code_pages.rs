//! Hands back the pages of otelgw's own code that startup touched.
//!
//! Startup runs code that never runs again (config parsing, validation, building the graph,
//! binding listeners), and the kernel maps each code page it faults in together with its
//! neighbours (fault-around, 64 KiB at a time). An idle gateway would keep ~8 MiB of code
//! resident that it does not use. Once the graph runs, [`release_startup_code`] tells the
//! kernel this process does not need the pages of its read-only segments now
//! (`madvise(MADV_DONTNEED)`); code that runs afterwards faults back in from the page cache (a
//! minor fault per 64 KiB, no disk read while the file is cached). The pages stay in the page
//! cache, shared and reclaimable, as they are for any idle program.
//!
//! What is advised, and why each condition holds it safe:
//! - only the executable's **loadable segments the loader mapped read-only** (ELF `PT_LOAD`
//!   without `PF_W`, located at the load address from `AT_PHDR`), minus `PT_GNU_RELRO` (written
//!   by the loader before it is made read-only). The loader never unmaps these, so no other
//!   mapping can sit at those addresses; a second mapping of the same file elsewhere
//!   (a backtrace symbolizer) is never touched;
//! - and of those, only the `/proc/self/smaps` mappings that lie wholly inside a segment, are
//!   private, not writable, of the executable's path, and hold no anonymous and no swapped
//!   page (`Anonymous: 0 kB`, `Swap: 0 kB`): no page was ever copied on write, so every page
//!   is the file's own page and dropping it loses nothing.
//!
//! Linux only; elsewhere, or when `/proc` cannot be read, nothing happens.

use std::ops::Range;

/// One mapping of `/proc/self/smaps` and the counters the check needs.
#[derive(Debug, PartialEq)]
struct Mapping {
    range: Range<usize>,
    perms: String,
    path: String,
    /// `u64::MAX` until read: a mapping with a missing or unreadable counter is never picked.
    anonymous_kb: u64,
    swap_kb: u64,
}

/// Parses `/proc/<pid>/smaps` text.
fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                let perms = f.next().unwrap_or_default().to_string();
                // offset, device, inode; then the path (which may contain spaces)
                let path = line
                    .splitn(6, char::is_whitespace)
                    .nth(5)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                out.push(Mapping {
                    range: start..end,
                    perms,
                    path,
                    anonymous_kb: u64::MAX,
                    swap_kb: u64::MAX,
                });
                continue;
            }
        }
        let mut kb = || f.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        if let Some(m) = out.last_mut() {
            match first {
                "Anonymous:" => m.anonymous_kb = kb(),
                "Swap:" => m.swap_kb = kb(),
                _ => {}
            }
        }
    }
    out
}

const PAGE: usize = 4096;

/// The runtime address ranges of the executable's read-only loadable segments, RELRO removed,
/// from its ELF file header and program headers (`head`: the file's first bytes) and the
/// address its program headers were loaded at (`at_phdr`). `None` when the headers do not
/// parse or the numbers do not add up.
fn read_only_segments(head: &[u8], at_phdr: usize) -> Option<Vec<Range<usize>>> {
    use object::elf::{FileHeader64, PF_W, PT_GNU_RELRO, PT_LOAD};
    use object::read::elf::{FileHeader, ProgramHeader};
    use object::Endianness;
    let fh = FileHeader64::<Endianness>::parse(head).ok()?;
    let e = fh.endian().ok()?;
    let phs = fh.program_headers(e, head).ok()?;
    let phoff = fh.e_phoff(e);
    // the load bias: where the segment holding the program headers put them, against AT_PHDR
    let holder = phs.iter().find(|p| {
        p.p_type(e) == PT_LOAD
            && (p.p_offset(e)..p.p_offset(e).saturating_add(p.p_filesz(e))).contains(&phoff)
    })?;
    let phdr_vaddr = holder.p_vaddr(e).checked_add(phoff - holder.p_offset(e))?;
    let bias = (at_phdr as u64).checked_sub(phdr_vaddr)?;
    let at = |v: u64| usize::try_from(bias.checked_add(v)?).ok();
    let relro: Vec<Range<usize>> = phs
        .iter()
        .filter(|p| p.p_type(e) == PT_GNU_RELRO)
        .filter_map(|p| {
            let start = at(p.p_vaddr(e))? / PAGE * PAGE;
            let end = at(p.p_vaddr(e).checked_add(p.p_memsz(e))?)?.div_ceil(PAGE) * PAGE;
            Some(start..end)
        })
        .collect();
    Some(
        phs.iter()
            .filter(|p| p.p_type(e) == PT_LOAD && p.p_flags(e).0 & PF_W.0 == 0)
            .filter_map(|p| {
                // the pages the loader mapped for it (a page two segments share is mapped by
                // one of them; the smaps check of each mapping decides)
                let start = at(p.p_vaddr(e))? / PAGE * PAGE;
                let end = at(p.p_vaddr(e).checked_add(p.p_memsz(e))?)?.div_ceil(PAGE) * PAGE;
                (start < end).then_some(start..end)
            })
            .filter(|r| relro.iter().all(|x| x.end <= r.start || r.end <= x.start))
            .collect(),
    )
}

/// The mappings [`release_startup_code`] may advise: each lies wholly inside one of
/// `segments`, is a private, non-writable mapping of `exe`, and holds no anonymous or swapped
/// page.
fn releasable<'m>(
    maps: &'m [Mapping],
    segments: &'m [Range<usize>],
    exe: &'m str,
) -> impl Iterator<Item = &'m Mapping> + 'm {
    maps.iter().filter(move |m| {
        m.path == exe
            && m.perms.len() == 4
            && !m.perms.contains('w')
            && m.perms.ends_with('p')
            && m.anonymous_kb == 0
            && m.swap_kb == 0
            && m.range.start < m.range.end
            && segments
                .iter()
                .any(|s| s.start <= m.range.start && m.range.end <= s.end)
    })
}

/// `AT_PHDR` from `/proc/self/auxv` (pairs of native-endian words).
fn at_phdr(auxv: &[u8]) -> Option<usize> {
    const AT_PHDR: usize = 3;
    let w = std::mem::size_of::<usize>();
    let word = |c: &[u8]| Some(usize::from_ne_bytes(c.try_into().ok()?));
    auxv.chunks_exact(2 * w).find_map(|pair| {
        let (k, v) = pair.split_at(w);
        (word(k)? == AT_PHDR).then(|| word(v)).flatten()
    })
}

/// Advises the kernel that the executable's read-only segments' pages are not needed now (see
/// the module docs). Returns the bytes advised.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn release_startup_code() -> std::io::Result<usize> {
    use std::io::{Error, ErrorKind, Read};
    let exe = std::fs::read_link("/proc/self/exe")?;
    let mut head = Vec::new();
    std::fs::File::open(&exe)?
        .take(64 * 1024)
        .read_to_end(&mut head)?;
    let auxv = std::fs::read("/proc/self/auxv")?;
    let bad = |what| Error::new(ErrorKind::InvalidData, what);
    let at_phdr = at_phdr(&auxv).ok_or_else(|| bad("no AT_PHDR in /proc/self/auxv"))?;
    let segments = read_only_segments(&head, at_phdr)
        .ok_or_else(|| bad("the executable's program headers do not parse"))?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let maps = mappings(&smaps);
    let exe = exe.to_string_lossy();
    let mut advised = 0;
    let mut first_error = None;
    for m in releasable(&maps, &segments, &exe) {
        let len = m.range.end - m.range.start;
        // SAFETY: `m.range` is a whole mapping the kernel listed for this process (mapped,
        // page-aligned) and lies inside a read-only loadable segment of the executable, at
        // the address the loader put it. The loader never unmaps those segments and nothing
        // in otelgw maps over them, so the range is still this mapping. It is private, not
        // writable and holds no anonymous or swapped page: no page was copied on write, every
        // page is the file's own page. For such a mapping MADV_DONTNEED only drops this
        // process's page-table entries and the next access maps the same file page again
        // (madvise(2): private file mappings are "repopulated from the up-to-date contents of
        // the underlying mapped file"); nothing wrote these pages, so the contents read
        // afterwards are the contents read before — what the kernel's reclaim does to clean
        // text under memory pressure at any time. Code running on other threads meanwhile
        // takes a minor fault. Exercised by `tests::released_code_and_constants_still_work`.
        let r = unsafe {
            rustix::mm::madvise(
                m.range.start as *mut std::ffi::c_void,
                len,
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
        match r {
            Ok(()) => advised += len,
            // e.g. a locked mapping; the others are still worth advising
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if advised == 0 => Err(e.into()),
        _ => Ok(advised),
    }
}

/// Not Linux: nothing to do.
#[cfg(not(target_os = "linux"))]
pub fn release_startup_code() -> std::io::Result<usize> {
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55dc3cc7d000-55dc3d0cd000 r--p 00000000 fe:00 5419628                    /opt/otelgw bin
Size:               4416 kB
Rss:                1484 kB
Anonymous:             0 kB
Swap:                  0 kB
55dc3d0cd000-55dc3df20000 r-xp 0044f000 fe:00 5419628                    /opt/otelgw bin
Anonymous:             0 kB
Swap:                  0 kB
55dc3df20000-55dc3dfb3000 r--p 012a1000 fe:00 5419628                    /opt/otelgw bin
Anonymous:             0 kB
Swap:                580 kB
55dc3dfb3000-55dc3dfb4000 rw-p 01334000 fe:00 5419628                    /opt/otelgw bin
Anonymous:             4 kB
Swap:                  0 kB
7fe852000000-7fe852400000 r--p 00000000 fe:00 5419628                    /opt/otelgw bin
Anonymous:             0 kB
Swap:                  0 kB
7fe852506000-7fe85252c000 r-xp 00000000 fe:00 326279                     /usr/lib/libc.so.6
Anonymous:             0 kB
Swap:                  0 kB
7ffd1000-7ffd2000 r-xp 00000000 00:00 0 
Anonymous:             0 kB
Swap:                  0 kB
";

    #[test]
    fn only_unmodified_mappings_inside_the_read_only_segments_are_released() {
        let maps = mappings(SMAPS);
        assert_eq!(maps.len(), 7);
        assert_eq!(maps[0].path, "/opt/otelgw bin");
        assert_eq!(maps[2].swap_kb, 580);
        // the loader's segments: rodata, text, and the RELRO page range (which
        // `read_only_segments` would have removed; kept here to show the counters still guard)
        let segments = [
            0x55dc3cc7d000..0x55dc3d0cd000,
            0x55dc3d0cd000..0x55dc3df20000,
            0x55dc3df20000..0x55dc3dfb3000,
        ];
        let picked: Vec<usize> = releasable(&maps, &segments, "/opt/otelgw bin")
            .map(|m| m.range.start)
            .collect();
        // rodata and text; not the swapped-out copy-on-write pages, not .data (writable),
        // not a second mapping of the same file elsewhere, not libc, not an anonymous mapping
        assert_eq!(picked, vec![0x55dc3cc7d000, 0x55dc3d0cd000]);
        // a mapping whose counters are missing or unreadable is never picked
        let broken = "1000-2000 r-xp 0 0:0 1 /x\nAnonymous: ? kB\nSwap: 0 kB\n\
                      2000-3000 r-xp 0 0:0 1 /x\nAnonymous: 0 kB\n";
        assert_eq!(
            releasable(&mappings(broken), std::slice::from_ref(&(0..0x4000)), "/x").count(),
            0
        );
        // nor one that sticks out of its segment
        let wide = "1000-3000 r-xp 0 0:0 1 /x\nAnonymous: 0 kB\nSwap: 0 kB\n";
        assert_eq!(
            releasable(
                &mappings(wide),
                std::slice::from_ref(&(0x1000..0x2000)),
                "/x"
            )
            .count(),
            0
        );
        assert_eq!(
            releasable(
                &mappings(wide),
                std::slice::from_ref(&(0x1000..0x3000)),
                "/x"
            )
            .count(),
            1
        );
    }

    #[inline(never)]
    fn work(x: u64) -> u64 {
        TABLE.iter().map(|v| v * x).sum::<u64>() + "constant".len() as u64
    }

    static TABLE: [u64; 4] = [11, 22, 33, 44];

    /// This test binary's read-only segments, as `release_startup_code` finds them.
    fn segments() -> Vec<Range<usize>> {
        use std::io::Read;
        let mut head = Vec::new();
        std::fs::File::open("/proc/self/exe")
            .unwrap()
            .take(64 * 1024)
            .read_to_end(&mut head)
            .unwrap();
        let auxv = std::fs::read("/proc/self/auxv").unwrap();
        read_only_segments(&head, at_phdr(&auxv).unwrap()).unwrap()
    }

    #[test]
    fn the_segments_hold_this_code_and_its_constants_but_no_writable_data() {
        let segs = segments();
        let inside = |a: usize| segs.iter().any(|s| s.contains(&a));
        assert!(
            inside(work as *const () as usize),
            "text is a read-only segment"
        );
        assert!(inside("constant".as_ptr() as usize), "rodata is one");
        static WRITABLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        WRITABLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(!inside(&WRITABLE as *const _ as usize), ".data is not");
        // a relocated pointer table lives in RELRO: never advised
        static FNS: [fn(u64) -> u64; 1] = [work];
        assert!(!inside(&FNS as *const _ as usize), "RELRO is not");
    }

    fn exe_rss_kb() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy().to_string();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut kb = 0;
        for line in smaps.lines() {
            let head = line.split_whitespace().next().unwrap_or_default();
            if head.contains('-') && !head.ends_with(':') {
                ours = line.trim_end().ends_with(&exe);
            } else if ours && head == "Rss:" {
                kb += line
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
            }
        }
        kb
    }

    #[test]
    fn released_code_and_constants_still_work() {
        static FNS: [fn(u64) -> u64; 1] = [work];
        let before = (work(3), FNS[0](5), exe_rss_kb());
        // other test threads keep running code of this binary meanwhile
        let busy = std::thread::spawn(|| (0..2000u64).map(work).sum::<u64>());
        let advised = release_startup_code().unwrap();
        let after = exe_rss_kb();
        assert!(advised > 0, "the test binary has read-only segments");
        assert_eq!(
            (work(3), FNS[0](5)),
            (before.0, before.1),
            "same code, same data"
        );
        assert_eq!(busy.join().unwrap(), (0..2000u64).map(work).sum::<u64>());
        assert!(
            after < before.2,
            "resident pages of the executable drop: {} kB -> {after} kB",
            before.2
        );
    }
}
