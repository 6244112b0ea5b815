//! Hands back the pages of otelgw's own executable that startup touched.
//!
//! Startup runs code that never runs again (config parsing, validation, building the graph,
//! binding listeners), and the kernel maps each code page it faults in together with its
//! neighbours (fault-around, 64 KiB at a time). An idle gateway would keep ~8 MiB of code
//! resident that it does not use. Once the graph runs, [`release_startup_code`] tells the
//! kernel this process no longer needs the pages of its clean, read-only executable mappings
//! (`madvise(MADV_DONTNEED)`); code that runs afterwards faults back in from the page cache
//! (a minor fault per 64 KiB, no disk read while the file is cached). The pages stay in the
//! page cache, shared and reclaimable, as they are for any idle program.
//!
//! Only mappings that are (a) of the executable itself (`/proc/self/exe`), (b) private and not
//! writable, and (c) hold no anonymous page (`Anonymous: 0 kB` in `/proc/self/smaps`: no page
//! was ever copied on write, so every page is the file's page in the page cache) are advised:
//! the text and read-only data. The RELRO segment, which the dynamic loader wrote before
//! making it read-only, holds anonymous copies and is left alone.

use std::path::Path;

/// One mapping line of `/proc/self/smaps` and the counters that follow it.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    anonymous_kb: u64,
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
                    start,
                    end,
                    perms,
                    path,
                    // unknown until its `Anonymous:` line is read
                    anonymous_kb: u64::MAX,
                });
                continue;
            }
        }
        let mut kb = || f.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        if let Some(m) = out.last_mut() {
            if first == "Anonymous:" {
                m.anonymous_kb = kb();
            }
        }
    }
    out
}

/// The mappings [`release_startup_code`] may advise: private, read-only, of `exe`, without
/// anonymous pages. A mapping whose `Anonymous` line is missing or unreadable is not picked.
fn releasable<'m>(maps: &'m [Mapping], exe: &Path) -> impl Iterator<Item = &'m Mapping> + use<'m> {
    let exe = exe.to_string_lossy().into_owned();
    maps.iter().filter(move |m| {
        m.path == exe
            && m.perms.len() == 4
            && !m.perms.contains('w')
            && m.perms.ends_with('p')
            && m.anonymous_kb == 0
            && m.end > m.start
    })
}

/// Advises the kernel that the executable's read-only file pages are not needed now (see
/// the module docs). Returns the bytes advised. Linux only; elsewhere, and when `/proc` is not
/// readable, it does nothing.
#[allow(unsafe_code)]
pub fn release_startup_code() -> std::io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let maps = mappings(&smaps);
    let mut advised = 0;
    for m in releasable(&maps, &exe) {
        let len = m.end - m.start;
        // SAFETY: `start..end` is a whole mapping the kernel listed for this process, so the
        // range is mapped and page-aligned. It is a private mapping of the executable file
        // that is not writable and holds no anonymous page: no page was copied on write, so
        // every page in it is the file's own page. For such a mapping MADV_DONTNEED only drops this
        // process's page-table entries; the next access maps the same file page again
        // (madvise(2): "private file mappings ... repopulated from the up-to-date contents of
        // the underlying mapped file"). Since nothing wrote these pages, the contents seen
        // afterwards are the contents seen before — exactly what happens when the kernel
        // reclaims clean text under memory pressure, which it may do at any time. Code running
        // on other threads meanwhile just takes a minor fault. The mapping cannot change
        // between reading smaps and this call: nothing in otelgw maps, unmaps or mprotects
        // the executable's segments. Exercised by `tests::released_code_and_constants_work`.
        unsafe {
            rustix::mm::madvise(
                m.start as *mut std::ffi::c_void,
                len,
                rustix::mm::Advice::LinuxDontNeed,
            )?;
        }
        advised += len;
    }
    Ok(advised)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55dc3cc7d000-55dc3d0cd000 r--p 00000000 fe:00 5419628                    /opt/otelgw bin
Size:               4416 kB
Rss:                1484 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
55dc3d0cd000-55dc3df20000 r-xp 0044f000 fe:00 5419628                    /opt/otelgw bin
Private_Dirty:         0 kB
Anonymous:             0 kB
55dc3df20000-55dc3dfb3000 r--p 012a1000 fe:00 5419628                    /opt/otelgw bin
Private_Dirty:       588 kB
Anonymous:           580 kB
55dc3dfb3000-55dc3dfb4000 rw-p 01334000 fe:00 5419628                    /opt/otelgw bin
Private_Dirty:         4 kB
Anonymous:             4 kB
7fe852506000-7fe85252c000 r-xp 00000000 fe:00 326279                     /usr/lib/libc.so.6
Private_Dirty:         0 kB
Anonymous:             0 kB
7ffd1000-7ffd2000 r-xp 00000000 00:00 0 
Private_Dirty:         0 kB
";

    #[test]
    fn only_clean_read_only_mappings_of_the_executable_are_released() {
        let maps = mappings(SMAPS);
        assert_eq!(maps.len(), 6);
        assert_eq!(maps[0].path, "/opt/otelgw bin");
        assert_eq!(maps[2].anonymous_kb, 580);
        let picked: Vec<usize> = releasable(&maps, Path::new("/opt/otelgw bin"))
            .map(|m| m.start)
            .collect();
        // text and rodata; not RELRO (copied on write), not .data (writable), not libc, not an
        // anonymous mapping
        assert_eq!(picked, vec![0x55dc3cc7d000, 0x55dc3d0cd000]);
        // a mapping whose counters are missing or unreadable is never picked
        let broken = "1000-2000 r-xp 0 0:0 1 /x\nAnonymous: ? kB\n2000-3000 r-xp 0 0:0 1 /x\n";
        assert_eq!(releasable(&mappings(broken), Path::new("/x")).count(), 0);
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

    static TABLE: [u64; 4] = [11, 22, 33, 44];

    #[inline(never)]
    fn work(x: u64) -> u64 {
        TABLE.iter().map(|v| v * x).sum::<u64>() + "constant".len() as u64
    }

    #[test]
    fn released_code_and_constants_work() {
        let before = (work(3), exe_rss_kb());
        // other test threads keep running code of this binary meanwhile
        let busy = std::thread::spawn(|| (0..2000u64).map(work).sum::<u64>());
        let advised = release_startup_code().unwrap();
        let after = exe_rss_kb();
        assert!(advised > 0, "the test binary has a text mapping");
        assert_eq!(work(3), before.0, "code and constants read back the same");
        assert_eq!(busy.join().unwrap(), (0..2000u64).map(work).sum::<u64>());
        assert!(
            after < before.1,
            "resident pages of the executable drop: {} kB -> {after} kB",
            before.1
        );
    }
}
