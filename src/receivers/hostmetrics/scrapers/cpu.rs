//! `cpu` scraper (`scrapers.cpu`): per-logical-CPU time, utilization, counts and frequency.
//!
//! | metric | type | unit | attributes | default | source |
//! | --- | --- | --- | --- | --- | --- |
//! | `system.cpu.time` | cumulative monotonic sum, double | `s` | `cpu` (`cpu0`…), `state` | on | `/proc/stat` `cpuN` lines, jiffies / USER_HZ (100) |
//! | `system.cpu.utilization` | gauge, double | `1` | `cpu`, `state` | off | delta of `/proc/stat` since the previous scrape |
//! | `system.cpu.logical.count` | non-monotonic sum, int | `{cpu}` | — | off | `/proc/cpuinfo` `processor` entries (else `/proc/stat` `cpuN` lines) |
//! | `system.cpu.physical.count` | non-monotonic sum, int | `{cpu}` | — | off | distinct `/proc/cpuinfo` (`physical id`, `core id`); else distinct `/sys/devices/system/cpu/cpuN/topology/core_cpus_list` |
//! | `system.cpu.frequency` | gauge, double | `Hz` | `cpu` | off | `/proc/cpuinfo` `cpu MHz` × 10⁶ |
//!
//! `state` is one of `user`, `system`, `idle`, `interrupt` (irq), `nice`, `softirq`, `steal`,
//! `wait` (iowait), recorded in that order, as the Collector does on Linux; `guest`/`guest_nice`
//! are already part of `user`/`nice` and get no state of their own.
//!
//! Utilization (as the Collector's `ucal`): per CPU and state, the tick delta since the previous
//! scrape divided by the delta of the CPU's total ticks (all ten `/proc/stat` columns); a CPU
//! with no elapsed ticks reports 0 for every state. The first scrape has no previous reading and
//! emits no utilization; a CPU that appeared since (hotplug) is skipped until its second reading.
//!
//! `/proc/stat` is the main source (missing: Err; no `cpuN` line: Err). `/proc/cpuinfo` is
//! read only when a count or the frequency is enabled; missing, its metrics are skipped (the
//! logical count then falls back to `/proc/stat`). A processor without `cpu MHz` (most ARM
//! kernels) gets no frequency point (the Collector reports 0 for it).

use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint};
use serde::{Deserialize, Serialize};

use super::{
    attr, enabled_in as enabled, gauge, point, sum, unknown_metrics, Ctx, Num, Output, Switches,
};

pub const TIME: &str = "system.cpu.time";
pub const UTILIZATION: &str = "system.cpu.utilization";
pub const LOGICAL_COUNT: &str = "system.cpu.logical.count";
pub const PHYSICAL_COUNT: &str = "system.cpu.physical.count";
pub const FREQUENCY: &str = "system.cpu.frequency";

/// Every metric of this scraper with its default (enabled by default in the Collector or not).
pub const METRICS: &[(&str, bool)] = &[
    (TIME, true),
    (UTILIZATION, false),
    (LOGICAL_COUNT, false),
    (PHYSICAL_COUNT, false),
    (FREQUENCY, false),
];

/// Clock ticks per second of `/proc/stat` (USER_HZ: 100 on every mainstream Linux ABI).
const USER_HZ: f64 = 100.0;
/// `/proc/stat` columns after the label: user nice system idle iowait irq softirq steal guest
/// guest_nice.
const COLUMNS: usize = 10;
/// (`state` attribute, `/proc/stat` column), in the Collector's recording order.
const STATES: [(&str, usize); 8] = [
    ("user", 0),
    ("system", 2),
    ("idle", 3),
    ("interrupt", 5),
    ("nice", 1),
    ("softirq", 6),
    ("steal", 7),
    ("wait", 4),
];

/// `scrapers.cpu` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names under `metrics`.
    pub fn validate(&self) -> Vec<(String, String)> {
        unknown_metrics("cpu", &self.metrics, METRICS)
    }
}

/// One CPU's ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTicks {
    id: u32,
    ticks: [u64; COLUMNS],
}

/// Kept between collections: the previous `/proc/stat` reading (for utilization).
pub struct Scraper {
    time: bool,
    utilization: bool,
    logical: bool,
    physical: bool,
    frequency: bool,
    prev: Vec<CpuTicks>,
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        let on = |name| enabled(&cfg.metrics, METRICS, name);
        Ok(Scraper {
            time: on(TIME),
            utilization: on(UTILIZATION),
            logical: on(LOGICAL_COUNT),
            physical: on(PHYSICAL_COUNT),
            frequency: on(FREQUENCY),
            prev: Vec::new(),
        })
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let stat = ctx.read("/proc/stat")?;
        let cpus = parse_stat(&stat);
        if cpus.is_empty() {
            return Err(format!(
                "{}: no per-CPU (cpuN) line",
                ctx.path("/proc/stat").display()
            ));
        }
        let mut metrics = Vec::new();
        if self.time {
            let mut points = Vec::with_capacity(cpus.len() * STATES.len());
            for c in &cpus {
                let label = format!("cpu{}", c.id);
                for (state, col) in STATES {
                    let secs = column(&c.ticks, col) as f64 / USER_HZ;
                    points.push(point(
                        vec![attr("cpu", &label), attr("state", state)],
                        Num::Double(secs),
                    ));
                }
            }
            metrics.push(sum(
                ctx,
                TIME,
                "Total seconds each logical CPU spent on each mode.",
                "s",
                true,
                points,
            ));
        }
        if self.utilization {
            let points = self.utilization_points(&cpus);
            if !points.is_empty() {
                metrics.push(gauge(
                    ctx,
                    UTILIZATION,
                    "Difference in system.cpu.time since the last measurement per logical CPU, divided by the elapsed time (value in interval [0,1]).",
                    "1",
                    points,
                ));
            }
            self.prev.clone_from(&cpus);
        }
        if self.logical || self.physical || self.frequency {
            let cpuinfo = ctx.read("/proc/cpuinfo").ok();
            let info = cpuinfo.as_deref().map(parse_cpuinfo).unwrap_or_default();
            if self.physical {
                let physical = if info.cores > 0 {
                    info.cores
                } else {
                    sysfs_physical_cores(ctx)
                };
                if physical > 0 {
                    metrics.push(count_metric(
                        ctx,
                        PHYSICAL_COUNT,
                        "Number of available physical CPUs.",
                        physical,
                    ));
                }
            }
            if self.logical {
                let logical = if info.processors > 0 {
                    info.processors
                } else {
                    cpus.len()
                };
                metrics.push(count_metric(
                    ctx,
                    LOGICAL_COUNT,
                    "Number of available logical CPUs.",
                    logical,
                ));
            }
            if self.frequency && !info.frequencies.is_empty() {
                let points = info
                    .frequencies
                    .iter()
                    .map(|&(cpu, hz)| {
                        point(vec![attr("cpu", &format!("cpu{cpu}"))], Num::Double(hz))
                    })
                    .collect();
                metrics.push(gauge(
                    ctx,
                    FREQUENCY,
                    "Current frequency of the CPU core in Hz.",
                    "Hz",
                    points,
                ));
            }
        }
        Ok(vec![(Vec::new(), metrics)])
    }

    /// Per CPU present in both readings: each state's share of the CPU's elapsed ticks.
    fn utilization_points(&self, cpus: &[CpuTicks]) -> Vec<NumberDataPoint> {
        let mut points = Vec::new();
        if self.prev.is_empty() {
            return points;
        }
        for (i, cur) in cpus.iter().enumerate() {
            // Same order as last time unless CPUs came or went.
            let prev = match self.prev.get(i) {
                Some(p) if p.id == cur.id => Some(p),
                _ => self.prev.iter().find(|p| p.id == cur.id),
            };
            let Some(prev) = prev else { continue };
            let delta =
                |col: usize| column(&cur.ticks, col).saturating_sub(column(&prev.ticks, col));
            let total: u64 = (0..COLUMNS).map(delta).sum();
            let label = format!("cpu{}", cur.id);
            for (state, col) in STATES {
                let share = if total == 0 {
                    0.0
                } else {
                    delta(col) as f64 / total as f64
                };
                points.push(point(
                    vec![attr("cpu", &label), attr("state", state)],
                    Num::Double(share),
                ));
            }
        }
        points
    }
}

fn count_metric(ctx: &Ctx, name: &str, description: &str, n: usize) -> Metric {
    sum(
        ctx,
        name,
        description,
        "{cpu}",
        false,
        vec![point(
            Vec::new(),
            Num::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        )],
    )
}

fn column(ticks: &[u64; COLUMNS], col: usize) -> u64 {
    ticks.get(col).copied().unwrap_or(0)
}

/// The `cpuN` lines of `/proc/stat` (the aggregate `cpu` line and malformed lines skipped).
fn parse_stat(text: &str) -> Vec<CpuTicks> {
    let mut cpus = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        if !rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            continue; // the aggregate "cpu  …" line
        }
        let mut fields = rest.split_ascii_whitespace();
        let Some(id) = fields.next().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let mut ticks = [0u64; COLUMNS];
        let mut n = 0;
        let mut bad = false;
        for (slot, field) in ticks.iter_mut().zip(fields) {
            match field.parse::<u64>() {
                Ok(v) => *slot = v,
                Err(_) => {
                    bad = true;
                    break;
                }
            }
            n += 1;
        }
        // user nice system idle at least (the Collector's minimum); older kernels stop early.
        if bad || n < 4 {
            continue;
        }
        cpus.push(CpuTicks { id, ticks });
    }
    cpus
}

/// What `/proc/cpuinfo` says.
#[derive(Debug, Default, PartialEq)]
struct CpuInfo {
    /// `processor` entries.
    processors: usize,
    /// Distinct (`physical id`, `core id`) pairs.
    cores: usize,
    /// (processor, Hz) for processors with `cpu MHz`.
    frequencies: Vec<(u32, f64)>,
}

fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut acc = CpuInfoAcc::default();
    let mut block = Block::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() {
                acc.flush(&mut block);
            }
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "processor" => {
                acc.flush(&mut block);
                block.processor = value.parse().ok();
            }
            "physical id" => block.physical_id = Some(value),
            "core id" => block.core_id = Some(value),
            "cpu MHz" => block.mhz = value.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => {}
        }
    }
    acc.flush(&mut block);
    acc.info.cores = acc.cores.len();
    acc.info
}

/// One processor's entry of `/proc/cpuinfo`.
#[derive(Default)]
struct Block<'a> {
    processor: Option<u32>,
    physical_id: Option<&'a str>,
    core_id: Option<&'a str>,
    mhz: Option<f64>,
}

#[derive(Default)]
struct CpuInfoAcc<'a> {
    info: CpuInfo,
    cores: Vec<(&'a str, &'a str)>,
}

impl<'a> CpuInfoAcc<'a> {
    fn flush(&mut self, b: &mut Block<'a>) {
        if let Some(p) = b.processor {
            self.info.processors += 1;
            if let (Some(phys), Some(core)) = (b.physical_id, b.core_id) {
                if !self.cores.contains(&(phys, core)) {
                    self.cores.push((phys, core));
                }
            }
            if let Some(mhz) = b.mhz {
                self.info.frequencies.push((p, mhz * 1e6));
            }
        }
        *b = Block::default();
    }
}

/// Distinct `core_cpus_list` (or the older `thread_siblings_list`) of the online CPUs: the
/// physical cores when `/proc/cpuinfo` has no core ids (ARM). 0 when unreadable.
fn sysfs_physical_cores(ctx: &Ctx) -> usize {
    let base = ctx.path("/sys/devices/system/cpu");
    let Ok(dir) = std::fs::read_dir(&base) else {
        return 0;
    };
    let mut lists: Vec<String> = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(n) = name.to_str().and_then(|s| s.strip_prefix("cpu")) else {
            continue;
        };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let topology = entry.path().join("topology");
        let list = std::fs::read_to_string(topology.join("core_cpus_list"))
            .or_else(|_| std::fs::read_to_string(topology.join("thread_siblings_list")));
        if let Ok(list) = list {
            let list = list.trim().to_string();
            if !list.is_empty() && !lists.contains(&list) {
                lists.push(list);
            }
        }
    }
    lists.len()
}

/// Test helpers shared by the scrapers' tests: a fake root and metric lookups.
#[cfg(test)]
pub(crate) mod testkit {
    use std::path::Path;

    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, number_data_point, Metric, NumberDataPoint,
    };

    use super::super::{Ctx, MetricSwitch, Output, Switches};

    pub const BOOT: u64 = 1_700_000_000_000_000_000;
    pub const NOW: u64 = 1_700_000_100_000_000_000;

    /// A temporary directory laid out as a root (`<tmp>/proc/stat`, …).
    pub struct Root(pub tempfile::TempDir);

    impl Root {
        pub fn new() -> Root {
            Root(tempfile::tempdir().unwrap())
        }
        pub fn write(&self, rel: &str, content: &str) -> &Root {
            let p = self.0.path().join(rel.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
            self
        }
        pub fn write_bytes(&self, rel: &str, content: &[u8]) -> &Root {
            let p = self.0.path().join(rel.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
            self
        }
        pub fn remove(&self, rel: &str) {
            std::fs::remove_file(self.0.path().join(rel.trim_start_matches('/'))).unwrap();
        }
        pub fn ctx(&self) -> Ctx<'_> {
            Ctx {
                root: self.0.path(),
                now_ns: NOW,
                boot_ns: BOOT,
            }
        }
    }

    /// The real machine.
    pub fn host() -> Ctx<'static> {
        Ctx {
            root: Path::new("/"),
            now_ns: NOW,
            boot_ns: BOOT,
        }
    }

    pub fn switches(pairs: &[(&str, bool)]) -> Switches {
        pairs
            .iter()
            .map(|(n, on)| (n.to_string(), MetricSwitch { enabled: Some(*on) }))
            .collect()
    }

    /// The one host-wide entry's metrics.
    pub fn metrics(out: &Output) -> &[Metric] {
        assert_eq!(out.len(), 1, "one resource entry");
        assert!(out[0].0.is_empty(), "no resource attributes");
        &out[0].1
    }

    pub fn names(out: &Output) -> Vec<&str> {
        metrics(out).iter().map(|m| m.name.as_str()).collect()
    }

    pub fn find<'a>(out: &'a Output, name: &str) -> &'a Metric {
        metrics(out)
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", names(out)))
    }

    pub fn has(out: &Output, name: &str) -> bool {
        metrics(out).iter().any(|m| m.name == name)
    }

    /// Asserts a cumulative sum with the unit and monotonicity, points stamped boot → now.
    pub fn sum_points<'a>(m: &'a Metric, unit: &str, monotonic: bool) -> &'a [NumberDataPoint] {
        assert_eq!(m.unit, unit, "{}", m.name);
        assert!(!m.description.is_empty(), "{}", m.name);
        let Some(metric::Data::Sum(s)) = &m.data else {
            panic!("{} is not a sum", m.name)
        };
        assert_eq!(s.is_monotonic, monotonic, "{}", m.name);
        assert_eq!(s.aggregation_temporality, 2, "{} cumulative", m.name);
        for p in &s.data_points {
            assert_eq!(
                (p.start_time_unix_nano, p.time_unix_nano),
                (BOOT, NOW),
                "{}",
                m.name
            );
        }
        &s.data_points
    }

    /// Asserts a gauge with the unit, points stamped now.
    pub fn gauge_points<'a>(m: &'a Metric, unit: &str) -> &'a [NumberDataPoint] {
        assert_eq!(m.unit, unit, "{}", m.name);
        assert!(!m.description.is_empty(), "{}", m.name);
        let Some(metric::Data::Gauge(g)) = &m.data else {
            panic!("{} is not a gauge", m.name)
        };
        for p in &g.data_points {
            assert_eq!(
                (p.start_time_unix_nano, p.time_unix_nano),
                (0, NOW),
                "{}",
                m.name
            );
        }
        &g.data_points
    }

    /// A point's string attributes, in order.
    pub fn attrs(p: &NumberDataPoint) -> Vec<(&str, &str)> {
        p.attributes
            .iter()
            .map(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => (kv.key.as_str(), s.as_str()),
                    other => panic!("attribute {} is not a string: {other:?}", kv.key),
                },
            )
            .collect()
    }

    /// The one point whose attributes are exactly `want` (in any order).
    pub fn point_with<'a>(
        points: &'a [NumberDataPoint],
        want: &[(&str, &str)],
    ) -> &'a NumberDataPoint {
        let mut want: Vec<(&str, &str)> = want.to_vec();
        want.sort();
        let found: Vec<&NumberDataPoint> = points
            .iter()
            .filter(|p| {
                let mut a = attrs(p);
                a.sort();
                a == want
            })
            .collect();
        assert_eq!(found.len(), 1, "points with {want:?}: {points:?}");
        found[0]
    }

    pub fn as_int(p: &NumberDataPoint) -> i64 {
        match p.value {
            Some(number_data_point::Value::AsInt(i)) => i,
            other => panic!("not an int: {other:?}"),
        }
    }

    pub fn as_double(p: &NumberDataPoint) -> f64 {
        match p.value {
            Some(number_data_point::Value::AsDouble(d)) => d,
            other => panic!("not a double: {other:?}"),
        }
    }

    pub fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    const STAT: &str = "cpu  24690 0 2000 90000 100 0 30 5 0 0
cpu0 12345 10 1000 45000 50 7 15 2 0 0
cpu1 12345 20 1000 45000 50 0 15 3 1 2
intr 2126847 0 0 0 0
ctxt 1368248
btime 1796207170
processes 44058
procs_running 3
procs_blocked 0
softirq 655060 0 108618 4 44309 107037 0 386 168207 5034 221465
";

    const CPUINFO: &str = "processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
cpu MHz\t\t: 2600.000
physical id\t: 0
siblings\t: 4
core id\t\t: 0
cpu cores\t: 2

processor\t: 1
cpu MHz\t\t: 2700.500
physical id\t: 0
core id\t\t: 1

processor\t: 2
cpu MHz\t\t: 1200.000
physical id\t: 0
core id\t\t: 0

processor\t: 3
physical id\t: 0
core id\t\t: 1
";

    fn all_on() -> Config {
        Config {
            metrics: switches(&[
                (UTILIZATION, true),
                (LOGICAL_COUNT, true),
                (PHYSICAL_COUNT, true),
                (FREQUENCY, true),
            ]),
        }
    }

    #[test]
    fn time_from_jiffies_with_the_collector_attributes() {
        let root = Root::new();
        root.write("proc/stat", STAT);
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![TIME]);
        let pts = sum_points(find(&out, TIME), "s", true);
        assert_eq!(pts.len(), 16);
        let get = |cpu, state| as_double(point_with(pts, &[("cpu", cpu), ("state", state)]));
        assert!(close(get("cpu0", "user"), 123.45));
        assert!(close(get("cpu0", "nice"), 0.10));
        assert!(close(get("cpu0", "system"), 10.0));
        assert!(close(get("cpu0", "idle"), 450.0));
        assert!(close(get("cpu0", "wait"), 0.5));
        assert!(close(get("cpu0", "interrupt"), 0.07));
        assert!(close(get("cpu0", "softirq"), 0.15));
        assert!(close(get("cpu0", "steal"), 0.02));
        assert!(close(get("cpu1", "nice"), 0.20));
        // the Collector's order: user system idle interrupt nice softirq steal wait
        let states: Vec<&str> = pts[..8].iter().map(|p| attrs(p)[1].1).collect();
        assert_eq!(
            states,
            [
                "user",
                "system",
                "idle",
                "interrupt",
                "nice",
                "softirq",
                "steal",
                "wait"
            ]
        );
        assert_eq!(attrs(&pts[0]), [("cpu", "cpu0"), ("state", "user")]);
    }

    #[test]
    fn utilization_from_two_scrapes() {
        let root = Root::new();
        root.write("proc/stat", STAT);
        let mut s = Scraper::new(&all_on()).unwrap();
        let first = s.scrape(&root.ctx()).unwrap();
        assert!(!has(&first, UTILIZATION), "no previous reading yet");
        // cpu0: +60 user +20 system +100 idle +20 iowait = 200 ticks; cpu1: no ticks at all.
        root.write(
            "proc/stat",
            "cpu  0 0 0 0 0 0 0 0 0 0
cpu0 12405 10 1020 45100 70 7 15 2 0 0
cpu1 12345 20 1000 45000 50 0 15 3 1 2
cpu2 1 1 1 1 1 1 1 1 0 0
",
        );
        let out = s.scrape(&root.ctx()).unwrap();
        let pts = gauge_points(find(&out, UTILIZATION), "1");
        assert_eq!(pts.len(), 16, "cpu2 is new: no utilization yet");
        let get = |cpu, state| as_double(point_with(pts, &[("cpu", cpu), ("state", state)]));
        assert!(close(get("cpu0", "user"), 0.3));
        assert!(close(get("cpu0", "system"), 0.1));
        assert!(close(get("cpu0", "idle"), 0.5));
        assert!(close(get("cpu0", "wait"), 0.1));
        assert!(close(get("cpu0", "steal"), 0.0));
        assert!(close(get("cpu1", "idle"), 0.0));
        // the time metric keeps following the file
        let t = sum_points(find(&out, TIME), "s", true);
        assert!(close(
            as_double(point_with(t, &[("cpu", "cpu0"), ("state", "user")])),
            124.05
        ));
        // third scrape: cpu2 now has a previous reading
        let out = s.scrape(&root.ctx()).unwrap();
        assert_eq!(gauge_points(find(&out, UTILIZATION), "1").len(), 24);
    }

    #[test]
    fn counts_and_frequency_from_cpuinfo() {
        let root = Root::new();
        root.write("proc/stat", STAT).write("proc/cpuinfo", CPUINFO);
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(
            names(&out),
            vec![TIME, PHYSICAL_COUNT, LOGICAL_COUNT, FREQUENCY]
        );
        let logical = sum_points(find(&out, LOGICAL_COUNT), "{cpu}", false);
        assert_eq!((logical.len(), as_int(&logical[0])), (1, 4));
        assert!(attrs(&logical[0]).is_empty());
        let physical = sum_points(find(&out, PHYSICAL_COUNT), "{cpu}", false);
        assert_eq!(as_int(&physical[0]), 2);
        let freq = gauge_points(find(&out, FREQUENCY), "Hz");
        assert_eq!(freq.len(), 3, "processor 3 has no cpu MHz");
        assert!(close(
            as_double(point_with(freq, &[("cpu", "cpu1")])),
            2_700_500_000.0
        ));
        assert!(close(
            as_double(point_with(freq, &[("cpu", "cpu2")])),
            1_200_000_000.0
        ));
    }

    #[test]
    fn missing_cpuinfo_falls_back_or_skips() {
        let root = Root::new();
        root.write("proc/stat", STAT);
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![TIME, LOGICAL_COUNT]);
        assert_eq!(
            as_int(&sum_points(find(&out, LOGICAL_COUNT), "{cpu}", false)[0]),
            2
        );
        // ARM-style cpuinfo: no core ids, no MHz; sysfs topology gives the cores
        root.write(
            "proc/cpuinfo",
            "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n",
        );
        root.write("sys/devices/system/cpu/cpu0/topology/core_cpus_list", "0\n");
        root.write("sys/devices/system/cpu/cpu1/topology/core_cpus_list", "1\n");
        root.write("sys/devices/system/cpu/cpufreq/policy0/x", "");
        let out = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![TIME, PHYSICAL_COUNT, LOGICAL_COUNT]);
        assert_eq!(
            as_int(&sum_points(find(&out, PHYSICAL_COUNT), "{cpu}", false)[0]),
            2
        );
    }

    #[test]
    fn switches_turn_metrics_off_and_on() {
        let root = Root::new();
        root.write("proc/stat", STAT).write("proc/cpuinfo", CPUINFO);
        let cfg = Config {
            metrics: switches(&[(TIME, false), (LOGICAL_COUNT, true)]),
        };
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(names(&out), vec![LOGICAL_COUNT]);
        let cfg = Config {
            metrics: switches(&[(TIME, false)]),
        };
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert!(names(&out).is_empty());
    }

    #[test]
    fn config_and_validate() {
        let cfg: Config = serde_norway::from_str(
            "metrics:\n  system.cpu.utilization:\n    enabled: true\n  system.cpu.bogus:\n    enabled: true\n",
        )
        .unwrap();
        let errs = cfg.validate();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "metrics.system.cpu.bogus");
        assert!(
            errs[0].1.contains("system.cpu.time") && errs[0].1.contains("system.cpu.frequency")
        );
        assert!(Config::default().validate().is_empty());
        assert!(serde_norway::from_str::<Config>("percpu: true\n").is_err());
        assert!(Scraper::new(&cfg).unwrap().utilization);
        assert_eq!(METRICS.iter().filter(|m| m.1).count(), 1);
    }

    #[test]
    fn missing_truncated_or_garbage_files() {
        let root = Root::new();
        let err = Scraper::new(&all_on())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap_err();
        assert!(err.contains("proc/stat"), "{err}");
        for bad in [
            "",
            "cpu  1 2 3 4\n",
            "cpu0 1 2\n",
            "cpu0 a b c d e\n",
            "cpuX 1 2 3 4 5\n",
            "\u{0}\u{1}garbage",
            "cpu0",
        ] {
            root.write("proc/stat", bad);
            assert!(
                Scraper::new(&all_on())
                    .unwrap()
                    .scrape(&root.ctx())
                    .is_err(),
                "{bad:?}"
            );
        }
        // a truncated line is skipped, the good one kept
        root.write(
            "proc/stat",
            "cpu0 1 2 3 4 5 6 7 8 9 10 11 12\ncpu1 5 5\ncpu2 99999999999999999999999 1 1 1\n",
        );
        root.write(
            "proc/cpuinfo",
            "processor : x\ncpu MHz : NaN\ncore id\nphysical id : 0\n\n::::\n",
        );
        let mut s = Scraper::new(&all_on()).unwrap();
        let out = s.scrape(&root.ctx()).unwrap();
        assert_eq!(sum_points(find(&out, TIME), "s", true).len(), 8);
        // counters going backwards (garbage) give zero shares, not a panic
        root.write("proc/stat", "cpu0 0 0 0 0\n");
        let out = s.scrape(&root.ctx()).unwrap();
        for p in gauge_points(find(&out, UTILIZATION), "1") {
            assert_eq!(as_double(p), 0.0);
        }
    }

    #[test]
    fn real_host() {
        let mut s = Scraper::new(&all_on()).unwrap();
        let out = s.scrape(&host()).unwrap();
        let pts = sum_points(find(&out, TIME), "s", true);
        assert!(as_double(point_with(pts, &[("cpu", "cpu0"), ("state", "idle")])) > 0.0);
        let logical = as_int(&sum_points(find(&out, LOGICAL_COUNT), "{cpu}", false)[0]);
        assert_eq!(pts.len() as i64, logical * 8);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let out = s.scrape(&host()).unwrap();
        let util = gauge_points(find(&out, UTILIZATION), "1");
        for cpu in 0..logical {
            let label = format!("cpu{cpu}");
            let total: f64 = util
                .iter()
                .filter(|p| attrs(p)[0].1 == label)
                .map(as_double)
                .inspect(|v| assert!((0.0..=1.0).contains(v)))
                .sum();
            // 1 unless guest time ran (it is in `user` and in the total again)
            assert!(total <= 1.0 + 1e-9, "{label}: {total}");
        }
    }
}
