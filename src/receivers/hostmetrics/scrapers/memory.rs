//! `memory` scraper (`scrapers.memory`): RAM use from `/proc/meminfo` (values in kB there,
//! bytes here; the `HugePages_*` counts are pages).
//!
//! | metric | type | unit | attributes | default | source |
//! | --- | --- | --- | --- | --- | --- |
//! | `system.memory.usage` | non-monotonic sum, int | `By` | `state` | on | see below |
//! | `system.memory.utilization` | gauge, double | `1` | `state` | off | usage / `MemTotal` |
//! | `system.memory.limit` | non-monotonic sum, int | `By` | — | off | `MemTotal` |
//! | `system.memory.page_size` | gauge, int | `By` | — | off | `AT_PAGESZ` of `/proc/self/auxv` (read once) |
//! | `system.linux.memory.available` | non-monotonic sum, int | `By` | — | off | `MemAvailable` |
//! | `system.linux.memory.dirty` | non-monotonic sum, int | `By` | — | off | `Dirty` |
//! | `system.memory.linux.shared` | non-monotonic sum, int | `By` | — | off | `Shmem` |
//! | `system.memory.linux.hugepages.limit` | non-monotonic sum, int | `{page}` | — | off | `HugePages_Total` |
//! | `system.memory.linux.hugepages.page_size` | gauge, int | `By` | — | off | `Hugepagesize` |
//! | `system.memory.linux.hugepages.reserved` | gauge, int | `{page}` | — | off | `HugePages_Rsvd` |
//! | `system.memory.linux.hugepages.surplus` | gauge, int | `{page}` | — | off | `HugePages_Surp` |
//! | `system.memory.linux.hugepages.usage` | non-monotonic sum, int | `{page}` | `system.memory.linux.hugepages.state` = `free`\|`used` | off | `HugePages_Free`, `HugePages_Total − HugePages_Free` |
//! | `system.memory.linux.hugepages.utilization` | gauge, double | `1` | `system.memory.linux.hugepages.state` | off | the usage / `HugePages_Total` (none when 0 pages) |
//!
//! `state` values on Linux, as the Collector computes them (gopsutil's `VirtualMemory`):
//! - `used` = `MemTotal − MemAvailable` (the Collector's default since its
//!   `receiver.hostmetricsreceiver.UseLinuxMemAvailable` gate went beta); on a kernel without
//!   `MemAvailable` (< 3.14) the legacy `MemTotal − MemFree − Buffers − cached`;
//! - `free` = `MemFree`, `buffered` = `Buffers`;
//! - `cached` = `Cached + SReclaimable` (gopsutil adds the reclaimable slab to the page cache);
//! - `slab_reclaimable` = `SReclaimable`, `slab_unreclaimable` = `SUnreclaim`.
//!
//! The states overlap (the slab states are inside `cached`/`used`), exactly as in the Collector:
//! `used + free + buffered + cached` is the one disjoint set, and it sums to `MemTotal` when the
//! legacy `used` applies. `inactive` (macOS) is never emitted on Linux. A value below zero
//! (inconsistent file) is clamped to 0.
//!
//! `/proc/meminfo` is the main source: missing, or without a positive `MemTotal`, is an Err. A
//! line missing from it skips the metrics it feeds (`Buffers`, `Cached` … count as 0 in the
//! usage states, as in gopsutil).

use opentelemetry_proto::tonic::metrics::v1::Metric;
use serde::{Deserialize, Serialize};

use super::{
    attr, enabled_in as enabled, gauge, point, sum, unknown_metrics, Ctx, Num, Output, Switches,
};

pub const USAGE: &str = "system.memory.usage";
pub const UTILIZATION: &str = "system.memory.utilization";
pub const LIMIT: &str = "system.memory.limit";
pub const PAGE_SIZE: &str = "system.memory.page_size";
pub const AVAILABLE: &str = "system.linux.memory.available";
pub const DIRTY: &str = "system.linux.memory.dirty";
pub const SHARED: &str = "system.memory.linux.shared";
pub const HUGEPAGES_LIMIT: &str = "system.memory.linux.hugepages.limit";
pub const HUGEPAGES_PAGE_SIZE: &str = "system.memory.linux.hugepages.page_size";
pub const HUGEPAGES_RESERVED: &str = "system.memory.linux.hugepages.reserved";
pub const HUGEPAGES_SURPLUS: &str = "system.memory.linux.hugepages.surplus";
pub const HUGEPAGES_USAGE: &str = "system.memory.linux.hugepages.usage";
pub const HUGEPAGES_UTILIZATION: &str = "system.memory.linux.hugepages.utilization";

/// Every metric of this scraper with its default (enabled by default in the Collector or not).
pub const METRICS: &[(&str, bool)] = &[
    (USAGE, true),
    (UTILIZATION, false),
    (LIMIT, false),
    (PAGE_SIZE, false),
    (AVAILABLE, false),
    (DIRTY, false),
    (SHARED, false),
    (HUGEPAGES_LIMIT, false),
    (HUGEPAGES_PAGE_SIZE, false),
    (HUGEPAGES_RESERVED, false),
    (HUGEPAGES_SURPLUS, false),
    (HUGEPAGES_USAGE, false),
    (HUGEPAGES_UTILIZATION, false),
];

const HUGEPAGES_STATE: &str = "system.memory.linux.hugepages.state";
/// `AT_PAGESZ` in the auxiliary vector.
const AT_PAGESZ: usize = 6;

/// `scrapers.memory` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names under `metrics`.
    pub fn validate(&self) -> Vec<(String, String)> {
        unknown_metrics("memory", &self.metrics, METRICS)
    }
}

/// Kept between collections: the enabled metrics and the page size (constant while up).
pub struct Scraper {
    on: Vec<bool>,
    page_size: Option<Option<i64>>,
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        let on = METRICS
            .iter()
            .map(|(name, _)| enabled(&cfg.metrics, METRICS, name))
            .collect();
        Ok(Scraper {
            on,
            page_size: None,
        })
    }

    fn on(&self, name: &str) -> bool {
        METRICS
            .iter()
            .position(|(m, _)| *m == name)
            .and_then(|i| self.on.get(i).copied())
            .unwrap_or(false)
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let text = ctx.read("/proc/meminfo")?;
        let m = MemInfo::parse(&text);
        let total = match m.total {
            Some(t) if t > 0 => t,
            _ => {
                return Err(format!(
                    "{}: no positive MemTotal",
                    ctx.path("/proc/meminfo").display()
                ))
            }
        };
        let mut metrics = Vec::new();
        let states = m.states(total);
        if self.on(USAGE) {
            let points = states
                .iter()
                .map(|&(state, v)| point(vec![attr("state", state)], int(v)))
                .collect();
            metrics.push(sum(
                ctx,
                USAGE,
                "Bytes of memory in use.",
                "By",
                false,
                points,
            ));
        }
        if self.on(UTILIZATION) {
            let points = states
                .iter()
                .map(|&(state, v)| {
                    point(
                        vec![attr("state", state)],
                        Num::Double(v as f64 / total as f64),
                    )
                })
                .collect();
            metrics.push(gauge(
                ctx,
                UTILIZATION,
                "Percentage of memory bytes in use.",
                "1",
                points,
            ));
        }
        if self.on(LIMIT) {
            metrics.push(scalar_sum(
                ctx,
                LIMIT,
                "Total bytes of memory available.",
                "By",
                total,
            ));
        }
        if self.on(PAGE_SIZE) {
            let page_size = *self.page_size.get_or_insert_with(|| page_size(ctx));
            if let Some(size) = page_size {
                metrics.push(gauge(
                    ctx,
                    PAGE_SIZE,
                    "A constant value for the system's configured page size.",
                    "By",
                    vec![point(Vec::new(), Num::Int(size))],
                ));
            }
        }
        let linux: [(&str, &str, Option<u64>); 3] = [
            (
                AVAILABLE,
                "An estimate of how much memory is available for starting new applications, without swapping. This is a more accurate alternative than system.memory.usage with state=free. (Linux only)",
                m.available,
            ),
            (
                DIRTY,
                "The amount of dirty memory according to `/proc/meminfo`.",
                m.dirty,
            ),
            (
                SHARED,
                "Shared memory usage, including tmpfs filesystems and System V/POSIX shared memory. Only supported on Linux.",
                m.shmem,
            ),
        ];
        for (name, description, value) in linux {
            if let (true, Some(v)) = (self.on(name), value) {
                metrics.push(scalar_sum(ctx, name, description, "By", v));
            }
        }
        self.hugepages(ctx, &m, &mut metrics);
        Ok(vec![(Vec::new(), metrics)])
    }

    fn hugepages(&self, ctx: &Ctx, m: &MemInfo, metrics: &mut Vec<Metric>) {
        if self.on(HUGEPAGES_PAGE_SIZE) {
            if let Some(size) = m.hugepagesize {
                metrics.push(gauge(
                    ctx,
                    HUGEPAGES_PAGE_SIZE,
                    "System hugepage size in bytes.",
                    "By",
                    vec![point(Vec::new(), int(size))],
                ));
            }
        }
        // A kernel without hugetlbfs has no HugePages_* lines: no hugepage metrics.
        let Some(total) = m.huge_total else { return };
        let free = m.huge_free.unwrap_or(0);
        let used = total.saturating_sub(free);
        if self.on(HUGEPAGES_LIMIT) {
            metrics.push(scalar_sum(
                ctx,
                HUGEPAGES_LIMIT,
                "Total number of hugepages available.",
                "{page}",
                total,
            ));
        }
        if self.on(HUGEPAGES_USAGE) {
            metrics.push(sum(
                ctx,
                HUGEPAGES_USAGE,
                "Number of hugepages in use by state.",
                "{page}",
                false,
                vec![
                    point(vec![attr(HUGEPAGES_STATE, "free")], int(free)),
                    point(vec![attr(HUGEPAGES_STATE, "used")], int(used)),
                ],
            ));
        }
        let gauges: [(&str, &str, Option<u64>); 2] = [
            (
                HUGEPAGES_RESERVED,
                "Number of reserved hugepages (hugepages for which a commitment to allocate has been made, but no allocation has yet been made). This is reported as a separate metric rather than a usage state because reserved pages are already counted in free pages - they represent a subset of free pages that cannot be used for non-reserved allocations.",
                m.huge_rsvd,
            ),
            (
                HUGEPAGES_SURPLUS,
                "Number of surplus hugepages (overcommitted hugepages beyond the persistent pool). This is reported as a separate metric rather than a usage state because surplus pages can be in either used or free state, and including them would break the semantic convention that usage states must sum to the limit.",
                m.huge_surp,
            ),
        ];
        for (name, description, value) in gauges {
            if let (true, Some(v)) = (self.on(name), value) {
                metrics.push(gauge(
                    ctx,
                    name,
                    description,
                    "{page}",
                    vec![point(Vec::new(), int(v))],
                ));
            }
        }
        if self.on(HUGEPAGES_UTILIZATION) && total > 0 {
            metrics.push(gauge(
                ctx,
                HUGEPAGES_UTILIZATION,
                "Percentage of hugepages in use by state.",
                "1",
                vec![
                    point(
                        vec![attr(HUGEPAGES_STATE, "free")],
                        Num::Double(free as f64 / total as f64),
                    ),
                    point(
                        vec![attr(HUGEPAGES_STATE, "used")],
                        Num::Double(used as f64 / total as f64),
                    ),
                ],
            ));
        }
    }
}

/// The `/proc/meminfo` lines used, in bytes (pages for `HugePages_*`).
#[derive(Debug, Default, PartialEq)]
struct MemInfo {
    total: Option<u64>,
    free: Option<u64>,
    available: Option<u64>,
    buffers: Option<u64>,
    cached: Option<u64>,
    sreclaimable: Option<u64>,
    sunreclaim: Option<u64>,
    dirty: Option<u64>,
    shmem: Option<u64>,
    huge_total: Option<u64>,
    huge_free: Option<u64>,
    huge_rsvd: Option<u64>,
    huge_surp: Option<u64>,
    hugepagesize: Option<u64>,
}

impl MemInfo {
    fn parse(text: &str) -> MemInfo {
        let mut m = MemInfo::default();
        for line in text.lines() {
            let Some((key, rest)) = line.split_once(':') else {
                continue;
            };
            let slot = match key.trim() {
                "MemTotal" => &mut m.total,
                "MemFree" => &mut m.free,
                "MemAvailable" => &mut m.available,
                "Buffers" => &mut m.buffers,
                "Cached" => &mut m.cached,
                "SReclaimable" => &mut m.sreclaimable,
                "SUnreclaim" => &mut m.sunreclaim,
                "Dirty" => &mut m.dirty,
                "Shmem" => &mut m.shmem,
                "HugePages_Total" => &mut m.huge_total,
                "HugePages_Free" => &mut m.huge_free,
                "HugePages_Rsvd" => &mut m.huge_rsvd,
                "HugePages_Surp" => &mut m.huge_surp,
                "Hugepagesize" => &mut m.hugepagesize,
                _ => continue,
            };
            let mut fields = rest.split_ascii_whitespace();
            let value = fields.next().and_then(|v| v.parse::<u64>().ok());
            *slot = match fields.next() {
                None => value,
                Some("kB") => value.and_then(|v| v.checked_mul(1024)),
                Some(_) => None,
            };
        }
        m
    }

    /// The `state` values of `system.memory.usage`, in the Collector's recording order.
    fn states(&self, total: u64) -> [(&'static str, u64); 6] {
        let free = self.free.unwrap_or(0);
        let buffers = self.buffers.unwrap_or(0);
        let sreclaimable = self.sreclaimable.unwrap_or(0);
        let cached = self.cached.unwrap_or(0).saturating_add(sreclaimable);
        let used = match self.available {
            Some(available) => total.saturating_sub(available),
            None => total
                .saturating_sub(free)
                .saturating_sub(buffers)
                .saturating_sub(cached),
        };
        [
            ("used", used),
            ("free", free),
            ("buffered", buffers),
            ("cached", cached),
            ("slab_reclaimable", sreclaimable),
            ("slab_unreclaimable", self.sunreclaim.unwrap_or(0)),
        ]
    }
}

fn int(v: u64) -> Num {
    Num::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn scalar_sum(ctx: &Ctx, name: &str, description: &str, unit: &str, v: u64) -> Metric {
    sum(
        ctx,
        name,
        description,
        unit,
        false,
        vec![point(Vec::new(), int(v))],
    )
}

/// The kernel's page size from `AT_PAGESZ` in `/proc/self/auxv` (the reader's own auxiliary
/// vector, so valid for the host's kernel whatever the root). None when unreadable.
fn page_size(ctx: &Ctx) -> Option<i64> {
    let bytes = std::fs::read(ctx.path("/proc/self/auxv")).ok()?;
    const W: usize = std::mem::size_of::<usize>();
    for pair in bytes.chunks_exact(2 * W) {
        let key = usize::from_ne_bytes(pair.get(..W)?.try_into().ok()?);
        let value = usize::from_ne_bytes(pair.get(W..)?.try_into().ok()?);
        if key == AT_PAGESZ {
            return i64::try_from(value).ok().filter(|v| *v > 0);
        }
        if key == 0 {
            break; // AT_NULL
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::cpu::testkit::*;
    use super::*;

    const MEMINFO: &str = "MemTotal:       24683584 kB
MemFree:        19375716 kB
MemAvailable:   23745604 kB
Buffers:            8720 kB
Cached:          4417588 kB
SwapCached:            0 kB
Active:          1551192 kB
Inactive:        3330756 kB
Dirty:              2592 kB
Writeback:             0 kB
AnonPages:        467496 kB
Shmem:              9356 kB
KReclaimable:     279236 kB
Slab:             323420 kB
SReclaimable:     279236 kB
SUnreclaim:        44184 kB
HugePages_Total:      64
HugePages_Free:       16
HugePages_Rsvd:        4
HugePages_Surp:        2
Hugepagesize:       2048 kB
Hugetlb:          131072 kB
DirectMap4k:       32768 kB
";
    const KB: i64 = 1024;

    fn all_on() -> Config {
        let pairs: Vec<(&str, bool)> = METRICS.iter().map(|(m, _)| (*m, true)).collect();
        Config {
            metrics: switches(&pairs),
        }
    }

    #[test]
    fn usage_states_as_the_collector() {
        let root = Root::new();
        root.write("proc/meminfo", MEMINFO);
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![USAGE]);
        let pts = sum_points(find(&out, USAGE), "By", false);
        let get = |s| as_int(point_with(pts, &[("state", s)]));
        assert_eq!(get("used"), (24683584 - 23745604) * KB);
        assert_eq!(get("free"), 19375716 * KB);
        assert_eq!(get("buffered"), 8720 * KB);
        assert_eq!(get("cached"), (4417588 + 279236) * KB);
        assert_eq!(get("slab_reclaimable"), 279236 * KB);
        assert_eq!(get("slab_unreclaimable"), 44184 * KB);
        assert_eq!(pts.len(), 6);
        let order: Vec<&str> = pts.iter().map(|p| attrs(p)[0].1).collect();
        assert_eq!(
            order,
            [
                "used",
                "free",
                "buffered",
                "cached",
                "slab_reclaimable",
                "slab_unreclaimable"
            ]
        );
    }

    #[test]
    fn legacy_used_without_memavailable_sums_to_total() {
        let root = Root::new();
        root.write(
            "proc/meminfo",
            &MEMINFO.replace("MemAvailable:   23745604 kB\n", ""),
        );
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        let pts = sum_points(find(&out, USAGE), "By", false);
        let get = |s| as_int(point_with(pts, &[("state", s)]));
        assert_eq!(
            get("used"),
            (24683584 - 19375716 - 8720 - 4417588 - 279236) * KB
        );
        assert_eq!(
            get("used") + get("free") + get("buffered") + get("cached"),
            24683584 * KB
        );
        assert!(!has(&out, AVAILABLE));
    }

    #[test]
    fn optional_metrics() {
        let root = Root::new();
        root.write("proc/meminfo", MEMINFO);
        let mut auxv = Vec::new();
        for (k, v) in [(33usize, 0x7ffe_0000usize), (AT_PAGESZ, 16384), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes());
            auxv.extend_from_slice(&v.to_ne_bytes());
        }
        root.write_bytes("proc/self/auxv", &auxv);
        let mut s = Scraper::new(&all_on()).unwrap();
        let out = s.scrape(&root.ctx()).unwrap();
        assert_eq!(names(&out).len(), METRICS.len(), "{:?}", names(&out));
        let util = gauge_points(find(&out, UTILIZATION), "1");
        assert!(close(
            as_double(point_with(util, &[("state", "free")])),
            19375716.0 / 24683584.0
        ));
        assert_eq!(util.len(), 6);
        let one = |name, unit| as_int(&sum_points(find(&out, name), unit, false)[0]);
        assert_eq!(one(LIMIT, "By"), 24683584 * KB);
        assert_eq!(one(AVAILABLE, "By"), 23745604 * KB);
        assert_eq!(one(DIRTY, "By"), 2592 * KB);
        assert_eq!(one(SHARED, "By"), 9356 * KB);
        assert_eq!(one(HUGEPAGES_LIMIT, "{page}"), 64);
        assert_eq!(as_int(&gauge_points(find(&out, PAGE_SIZE), "By")[0]), 16384);
        assert_eq!(
            as_int(&gauge_points(find(&out, HUGEPAGES_PAGE_SIZE), "By")[0]),
            2048 * KB
        );
        assert_eq!(
            as_int(&gauge_points(find(&out, HUGEPAGES_RESERVED), "{page}")[0]),
            4
        );
        assert_eq!(
            as_int(&gauge_points(find(&out, HUGEPAGES_SURPLUS), "{page}")[0]),
            2
        );
        let hp = sum_points(find(&out, HUGEPAGES_USAGE), "{page}", false);
        assert_eq!(as_int(point_with(hp, &[(HUGEPAGES_STATE, "free")])), 16);
        assert_eq!(as_int(point_with(hp, &[(HUGEPAGES_STATE, "used")])), 48);
        let hu = gauge_points(find(&out, HUGEPAGES_UTILIZATION), "1");
        assert!(close(
            as_double(point_with(hu, &[(HUGEPAGES_STATE, "used")])),
            0.75
        ));
        // the page size is read once
        root.remove("proc/self/auxv");
        let out = s.scrape(&root.ctx()).unwrap();
        assert_eq!(as_int(&gauge_points(find(&out, PAGE_SIZE), "By")[0]), 16384);
        // no auxv on a fresh scraper: skipped; no hugepages pool: no utilization
        root.write(
            "proc/meminfo",
            &MEMINFO.replace("HugePages_Total:      64", "HugePages_Total:       0"),
        );
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert!(!has(&out, PAGE_SIZE) && !has(&out, HUGEPAGES_UTILIZATION));
        assert!(has(&out, HUGEPAGES_LIMIT));
        // a kernel without hugetlb: no hugepage metrics but the size line
        let no_huge: String = MEMINFO
            .lines()
            .filter(|l| !l.starts_with("HugePages_"))
            .map(|l| format!("{l}\n"))
            .collect();
        root.write("proc/meminfo", &no_huge);
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert!(
            !has(&out, HUGEPAGES_USAGE)
                && !has(&out, HUGEPAGES_LIMIT)
                && !has(&out, HUGEPAGES_RESERVED)
        );
    }

    #[test]
    fn switches_and_validate() {
        let root = Root::new();
        root.write("proc/meminfo", MEMINFO);
        let cfg: Config = serde_norway::from_str(
            "metrics:\n  system.memory.usage:\n    enabled: false\n  system.memory.limit:\n    enabled: true\n",
        )
        .unwrap();
        assert!(cfg.validate().is_empty());
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(names(&out), vec![LIMIT]);
        let cfg = Config {
            metrics: switches(&[("system.memory.usage.bytes", true), (USAGE, true)]),
        };
        let errs = cfg.validate();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "metrics.system.memory.usage.bytes");
        assert!(errs[0].1.contains(HUGEPAGES_UTILIZATION));
        assert!(serde_norway::from_str::<Config>(
            "metrics:\n  system.memory.usage:\n    enabeld: true\n"
        )
        .is_err());
        assert_eq!(
            METRICS
                .iter()
                .filter(|m| m.1)
                .map(|m| m.0)
                .collect::<Vec<_>>(),
            [USAGE]
        );
    }

    #[test]
    fn missing_truncated_or_garbage() {
        let root = Root::new();
        let err = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap_err();
        assert!(err.contains("proc/meminfo"), "{err}");
        for bad in [
            "",
            "MemTotal:",
            "MemTotal: 0 kB\n",
            "MemTotal: x kB\n",
            "MemTotal: 99999999999999999999 kB\n",
            "MemTotal: 18014398509481984 kB\n",
            "MemTotal: 5 MB\n",
            "\u{0}\u{ff}",
        ] {
            root.write("proc/meminfo", bad);
            assert!(
                Scraper::new(&all_on())
                    .unwrap()
                    .scrape(&root.ctx())
                    .is_err(),
                "{bad:?}"
            );
        }
        // inconsistent numbers are clamped, truncated lines skip their metric
        root.write("proc/meminfo", "MemTotal: 100 kB\nMemFree: 500 kB\nMemAvailable: 900 kB\nHugePages_Total: 1\nHugePages_Free: 5\nDirty:\n");
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        let pts = sum_points(find(&out, USAGE), "By", false);
        assert_eq!(as_int(point_with(pts, &[("state", "used")])), 0);
        assert!(!has(&out, DIRTY));
        let hp = sum_points(find(&out, HUGEPAGES_USAGE), "{page}", false);
        assert_eq!(as_int(point_with(hp, &[(HUGEPAGES_STATE, "used")])), 0);
    }

    #[test]
    fn real_host() {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap();
        let m = MemInfo::parse(&text);
        let total = m.total.unwrap();
        let out = Scraper::new(&all_on()).unwrap().scrape(&host()).unwrap();
        let pts = sum_points(find(&out, USAGE), "By", false);
        let get = |s| as_int(point_with(pts, &[("state", s)]));
        // used + free + buffered + cached (legacy) is MemTotal; the default used is total − available
        let legacy = MemInfo {
            available: None,
            ..MemInfo::parse(&text)
        }
        .states(total);
        let legacy_sum: u64 = legacy.iter().take(4).map(|s| s.1).sum();
        assert_eq!(legacy_sum, total);
        assert!(get("used") > 0 && get("free") > 0 && get("cached") >= 0);
        assert!(get("used") + get("free") <= total as i64);
        assert_eq!(
            as_int(&sum_points(find(&out, LIMIT), "By", false)[0]),
            total as i64
        );
        let page = as_int(&gauge_points(find(&out, PAGE_SIZE), "By")[0]);
        assert!([4096, 16384, 65536].contains(&page), "{page}");
    }
}
