//! `paging` scraper (`scrapers.paging`): swap space and paging activity.
//!
//! | metric | type | unit | attributes | default | source |
//! | --- | --- | --- | --- | --- | --- |
//! | `system.paging.usage` | non-monotonic sum, int | `By` | `device`, `state` = `used`\|`free` | on | `/proc/swaps` Size/Used (kB) |
//! | `system.paging.utilization` | gauge, double | `1` | `device`, `state` | off | the usage / Size |
//! | `system.paging.operations` | monotonic sum, int | `{operations}` | `direction` = `page_in`\|`page_out`, `type` = `major`\|`minor` | on | `/proc/vmstat`: `pswpin`/`pswpout` (major), `pgpgin`/`pgpgout` (minor) |
//! | `system.paging.faults` | monotonic sum, int | `{faults}` | `type` = `major`\|`minor` | on | `/proc/vmstat`: `pgmajfault`, `pgfault − pgmajfault` |
//!
//! `device` is the `/proc/swaps` Filename as written there (octal escapes kept). Linux has no
//! `cached` paging state; it is never emitted. A swap area of size 0 gets no utilization.
//!
//! The operation and fault values are the kernel's counts. (The Collector takes them from
//! gopsutil, which multiplies every one of these `/proc/vmstat` counters by 4096; its values are
//! therefore 4096 times these, under the same `{operations}`/`{faults}` units.)
//!
//! `/proc/vmstat` is the main source (missing: Err; read only when operations or faults are on);
//! a counter missing from it skips its points. `/proc/swaps` is optional (a kernel without
//! swap support has none): missing, the usage and utilization are skipped; malformed rows are
//! skipped. No swap configured gives no usage points, hence no usage metric.

use opentelemetry_proto::tonic::metrics::v1::NumberDataPoint;
use serde::{Deserialize, Serialize};

use super::{
    attr, enabled_in as enabled, gauge, point, sum, unknown_metrics, Ctx, Num, Output, Switches,
};

pub const USAGE: &str = "system.paging.usage";
pub const UTILIZATION: &str = "system.paging.utilization";
pub const OPERATIONS: &str = "system.paging.operations";
pub const FAULTS: &str = "system.paging.faults";

/// Every metric of this scraper with its default (enabled by default in the Collector or not).
pub const METRICS: &[(&str, bool)] = &[
    (USAGE, true),
    (OPERATIONS, true),
    (FAULTS, true),
    (UTILIZATION, false),
];

/// `scrapers.paging` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names under `metrics`.
    pub fn validate(&self) -> Vec<(String, String)> {
        unknown_metrics("paging", &self.metrics, METRICS)
    }
}

/// Kept between collections: the enabled metrics.
pub struct Scraper {
    usage: bool,
    utilization: bool,
    operations: bool,
    faults: bool,
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        let on = |name| enabled(&cfg.metrics, METRICS, name);
        Ok(Scraper {
            usage: on(USAGE),
            utilization: on(UTILIZATION),
            operations: on(OPERATIONS),
            faults: on(FAULTS),
        })
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let mut metrics = Vec::new();
        if self.usage || self.utilization {
            if let Ok(swaps) = ctx.read("/proc/swaps") {
                let devices = parse_swaps(&swaps);
                if self.usage && !devices.is_empty() {
                    let mut points = Vec::with_capacity(devices.len() * 2);
                    for d in &devices {
                        points.push(dev_point(d.name, "used", Num::Int(bytes(d.used_kib))));
                        points.push(dev_point(d.name, "free", Num::Int(bytes(d.free_kib()))));
                    }
                    metrics.push(sum(
                        ctx,
                        USAGE,
                        "Swap (unix) or pagefile (windows) usage.",
                        "By",
                        false,
                        points,
                    ));
                }
                if self.utilization {
                    let mut points = Vec::with_capacity(devices.len() * 2);
                    for d in devices.iter().filter(|d| d.size_kib > 0) {
                        let size = d.size_kib as f64;
                        points.push(dev_point(
                            d.name,
                            "used",
                            Num::Double(d.used_kib as f64 / size),
                        ));
                        points.push(dev_point(
                            d.name,
                            "free",
                            Num::Double(d.free_kib() as f64 / size),
                        ));
                    }
                    if !points.is_empty() {
                        metrics.push(gauge(
                            ctx,
                            UTILIZATION,
                            "Swap (unix) or pagefile (windows) utilization.",
                            "1",
                            points,
                        ));
                    }
                }
            }
        }
        if self.operations || self.faults {
            let text = ctx.read("/proc/vmstat")?;
            let v = VmStat::parse(&text);
            if self.operations {
                let mut points = Vec::with_capacity(4);
                for (value, direction, kind) in [
                    (v.pswpin, "page_in", "major"),
                    (v.pswpout, "page_out", "major"),
                    (v.pgpgin, "page_in", "minor"),
                    (v.pgpgout, "page_out", "minor"),
                ] {
                    if let Some(value) = value {
                        points.push(point(
                            vec![attr("direction", direction), attr("type", kind)],
                            Num::Int(clamp(value)),
                        ));
                    }
                }
                if !points.is_empty() {
                    metrics.push(sum(
                        ctx,
                        OPERATIONS,
                        "The number of paging operations.",
                        "{operations}",
                        true,
                        points,
                    ));
                }
            }
            if self.faults {
                let minor = match (v.pgfault, v.pgmajfault) {
                    (Some(all), Some(major)) => Some(all.saturating_sub(major)),
                    _ => None,
                };
                let points: Vec<NumberDataPoint> = [(v.pgmajfault, "major"), (minor, "minor")]
                    .into_iter()
                    .filter_map(|(value, kind)| {
                        value.map(|n| point(vec![attr("type", kind)], Num::Int(clamp(n))))
                    })
                    .collect();
                if !points.is_empty() {
                    metrics.push(sum(
                        ctx,
                        FAULTS,
                        "The number of page faults.",
                        "{faults}",
                        true,
                        points,
                    ));
                }
            }
        }
        Ok(vec![(Vec::new(), metrics)])
    }
}

fn dev_point(device: &str, state: &str, value: Num) -> NumberDataPoint {
    point(vec![attr("device", device), attr("state", state)], value)
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn bytes(kib: u64) -> i64 {
    clamp(kib.saturating_mul(1024))
}

/// One `/proc/swaps` row.
#[derive(Debug, PartialEq)]
struct Swap<'a> {
    name: &'a str,
    size_kib: u64,
    used_kib: u64,
}

impl Swap<'_> {
    fn free_kib(&self) -> u64 {
        self.size_kib.saturating_sub(self.used_kib)
    }
}

/// `Filename Type Size Used Priority` rows (the header and malformed rows skipped).
fn parse_swaps(text: &str) -> Vec<Swap<'_>> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let name = f.next()?;
            let _kind = f.next()?;
            let size_kib = f.next()?.parse().ok()?;
            let used_kib = f.next()?.parse().ok()?;
            Some(Swap {
                name,
                size_kib,
                used_kib,
            })
        })
        .collect()
}

/// The `/proc/vmstat` counters used.
#[derive(Debug, Default)]
struct VmStat {
    pswpin: Option<u64>,
    pswpout: Option<u64>,
    pgpgin: Option<u64>,
    pgpgout: Option<u64>,
    pgfault: Option<u64>,
    pgmajfault: Option<u64>,
}

impl VmStat {
    fn parse(text: &str) -> VmStat {
        let mut v = VmStat::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let slot = match key {
                "pswpin" => &mut v.pswpin,
                "pswpout" => &mut v.pswpout,
                "pgpgin" => &mut v.pgpgin,
                "pgpgout" => &mut v.pgpgout,
                "pgfault" => &mut v.pgfault,
                "pgmajfault" => &mut v.pgmajfault,
                _ => continue,
            };
            *slot = value.trim().parse().ok();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::testkit::*;
    use super::*;

    const SWAPS: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/dm-1                               partition\t8388604\t\t1048576\t\t-2
/swap\\040file                           file\t\t1024\t\t0\t\t-3
";
    const VMSTAT: &str = "nr_free_pages 4843929
pgpgin 11422325
pgpgout 28415332
pswpin 17
pswpout 42
pgalloc_dma 0
pgfault 71871991
pgmajfault 18286
";

    fn all_on() -> Config {
        Config {
            metrics: switches(&[(UTILIZATION, true)]),
        }
    }

    #[test]
    fn usage_operations_and_faults() {
        let root = Root::new();
        root.write("proc/swaps", SWAPS).write("proc/vmstat", VMSTAT);
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![USAGE, OPERATIONS, FAULTS]);
        let usage = sum_points(find(&out, USAGE), "By", false);
        assert_eq!(usage.len(), 4);
        assert_eq!(
            as_int(point_with(
                usage,
                &[("device", "/dev/dm-1"), ("state", "used")]
            )),
            1048576 * 1024
        );
        assert_eq!(
            as_int(point_with(
                usage,
                &[("device", "/dev/dm-1"), ("state", "free")]
            )),
            (8388604 - 1048576) * 1024
        );
        assert_eq!(
            as_int(point_with(
                usage,
                &[("device", "/swap\\040file"), ("state", "free")]
            )),
            1024 * 1024
        );
        let ops = sum_points(find(&out, OPERATIONS), "{operations}", true);
        assert_eq!(ops.len(), 4);
        let op = |d, t| as_int(point_with(ops, &[("direction", d), ("type", t)]));
        assert_eq!(op("page_in", "major"), 17);
        assert_eq!(op("page_out", "major"), 42);
        assert_eq!(op("page_in", "minor"), 11422325);
        assert_eq!(op("page_out", "minor"), 28415332);
        let faults = sum_points(find(&out, FAULTS), "{faults}", true);
        assert_eq!(as_int(point_with(faults, &[("type", "major")])), 18286);
        assert_eq!(
            as_int(point_with(faults, &[("type", "minor")])),
            71871991 - 18286
        );
    }

    #[test]
    fn utilization() {
        let root = Root::new();
        root.write("proc/swaps", &format!("{SWAPS}/zero partition 0 0 -4\n"))
            .write("proc/vmstat", VMSTAT);
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        let pts = gauge_points(find(&out, UTILIZATION), "1");
        assert_eq!(pts.len(), 4, "the size-0 area has no utilization");
        assert!(close(
            as_double(point_with(
                pts,
                &[("device", "/dev/dm-1"), ("state", "used")]
            )),
            1048576.0 / 8388604.0
        ));
        assert!(close(
            as_double(point_with(
                pts,
                &[("device", "/swap\\040file"), ("state", "used")]
            )),
            0.0
        ));
        assert_eq!(sum_points(find(&out, USAGE), "By", false).len(), 6);
    }

    #[test]
    fn no_swap_and_optional_files() {
        let root = Root::new();
        root.write(
            "proc/swaps",
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        )
        .write("proc/vmstat", VMSTAT);
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![OPERATIONS, FAULTS]);
        root.remove("proc/swaps");
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![OPERATIONS, FAULTS]);
        // vmstat is the main file
        root.remove("proc/vmstat");
        let err = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap_err();
        assert!(err.contains("proc/vmstat"), "{err}");
        // …but not read when its metrics are off
        root.write("proc/swaps", SWAPS);
        let cfg = Config {
            metrics: switches(&[(OPERATIONS, false), (FAULTS, false)]),
        };
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(names(&out), vec![USAGE]);
    }

    #[test]
    fn switches_and_validate() {
        let cfg: Config = serde_norway::from_str(
            "metrics:\n  system.paging.usage:\n    enabled: false\n  system.paging.utilization:\n    enabled: true\n",
        )
        .unwrap();
        assert!(cfg.validate().is_empty());
        let root = Root::new();
        root.write("proc/swaps", SWAPS).write("proc/vmstat", VMSTAT);
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(names(&out), vec![UTILIZATION, OPERATIONS, FAULTS]);
        let cfg = Config {
            metrics: switches(&[("system.swap.usage", true)]),
        };
        let errs = cfg.validate();
        assert_eq!(
            (errs.len(), errs[0].0.as_str()),
            (1, "metrics.system.swap.usage")
        );
        assert!(errs[0].1.contains(FAULTS));
        assert!(serde_norway::from_str::<Config>("devices: [a]\n").is_err());
        let defaults: Vec<&str> = METRICS.iter().filter(|m| m.1).map(|m| m.0).collect();
        assert_eq!(defaults, [USAGE, OPERATIONS, FAULTS]);
    }

    #[test]
    fn truncated_or_garbage() {
        let root = Root::new();
        root.write("proc/swaps", "Filename Type Size Used Priority\n/dev/a partition x 1 -2\n/dev/b partition 10\n/dev/c partition 10 20 -1\n\u{0}\n");
        root.write(
            "proc/vmstat",
            "pgfault 5\npgmajfault 9\npswpin\npswpout -1\npgpgin 18446744073709551615\ngarbage\n\n",
        );
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        let usage = sum_points(find(&out, USAGE), "By", false);
        assert_eq!(usage.len(), 2, "only /dev/c parses");
        assert_eq!(
            as_int(point_with(
                usage,
                &[("device", "/dev/c"), ("state", "free")]
            )),
            0
        );
        let ops = sum_points(find(&out, OPERATIONS), "{operations}", true);
        assert_eq!(ops.len(), 1);
        assert_eq!(as_int(&ops[0]), i64::MAX);
        let faults = sum_points(find(&out, FAULTS), "{faults}", true);
        assert_eq!(as_int(point_with(faults, &[("type", "minor")])), 0);
        root.write("proc/vmstat", "");
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert!(!has(&out, OPERATIONS) && !has(&out, FAULTS));
    }

    #[test]
    fn real_host() {
        let out = Scraper::new(&all_on()).unwrap().scrape(&host()).unwrap();
        let faults = sum_points(find(&out, FAULTS), "{faults}", true);
        assert!(as_int(point_with(faults, &[("type", "minor")])) > 0);
        assert_eq!(
            sum_points(find(&out, OPERATIONS), "{operations}", true).len(),
            4
        );
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap();
        assert_eq!(has(&out, USAGE), swaps.lines().count() > 1);
    }
}
