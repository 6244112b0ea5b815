//! `scrapers.process`: per-process metrics from `/proc/<pid>/*` (under `root_path`), the
//! Collector's `processscraper` (metadata.yaml, semantic conventions 1.9.0). One [`Output`]
//! entry per process, its resource attributes first.
//!
//! Resource attributes (`resource_attributes.<name>.enabled` overrides the default):
//!
//! | attribute | type | default | from |
//! | --- | --- | --- | --- |
//! | `process.pid` | int | on | the `/proc` directory name |
//! | `process.parent_pid` | int | on | `stat` field 4 |
//! | `process.executable.name` | string | on | `status` `Name:`; a name of 15+ characters (the kernel's cut) is replaced by the base name of `cmdline`'s first argument when that starts with it |
//! | `process.executable.path` | string | on | `readlink exe` (`""` when unreadable) |
//! | `process.command` | string | on | `cmdline`'s first argument (`""` for a kernel thread) |
//! | `process.command_line` | string | on | `cmdline`'s arguments joined by spaces |
//! | `process.owner` | string | on | the real uid of `status` `Uid:`, named by `/etc/passwd` under the root, else the uid itself |
//! | `process.cgroup` | string | off | `cgroup` (trailing newline removed) |
//!
//! Metrics (sums are cumulative and start at the process's start: boot time + `stat` field 22
//! `starttime` jiffies / 100; every point's time is the scrape's):
//!
//! | metric | type | unit | attributes | default | from |
//! | --- | --- | --- | --- | --- | --- |
//! | `process.cpu.time` | monotonic double sum | `s` | `state` = `user`\|`system`\|`wait` | on | `stat` utime (14), stime (15), delayacct_blkio_ticks (42), / 100 |
//! | `process.cpu.utilization` | double gauge | `1` | `state` | off | the cpu.time deltas / elapsed time / logical CPUs (`cpuN` lines of `/proc/stat`); nothing on a process's first scrape |
//! | `process.memory.usage` | non-monotonic int sum | `By` | | on | `status` `VmRSS` × 1024 (0 for a kernel thread) |
//! | `process.memory.virtual` | non-monotonic int sum | `By` | | on | `stat` vsize (23) |
//! | `process.memory.utilization` | double gauge | `1` | | off | RSS / `/proc/meminfo` `MemTotal` × 100 — a percentage, as the Collector (gopsutil's `MemoryPercent`) emits it |
//! | `process.disk.io` | monotonic int sum | `By` | `direction` = `read`\|`write` | on | `io` `rchar` / `wchar` (what gopsutil v4, so the Collector, reports) |
//! | `process.disk.operations` | monotonic int sum | `{operations}` | `direction` | off | `io` `syscr` / `syscw` |
//! | `process.paging.faults` | monotonic int sum | `{faults}` | `type` = `major`\|`minor` | off | `stat` majflt (12) / minflt (10) |
//! | `process.threads` | non-monotonic int sum | `{threads}` | | off | `stat` num_threads (20) |
//! | `process.context_switches` | monotonic int sum | `{count}` | `type` = `involuntary`\|`voluntary` | off | `status` `nonvoluntary_ctxt_switches` / `voluntary_ctxt_switches` |
//! | `process.open_file_descriptors` | non-monotonic int sum | `{count}` | | off | the entries of `fd/` |
//! | `process.signals_pending` | non-monotonic int sum | `{signals}` | | off | `status` `ShdPnd` read as a hex number (gopsutil's `RLIMIT_SIGPENDING` "used") |
//! | `process.uptime` | double gauge | `s` | | off | scrape time − start time |
//! | `process.handles` | non-monotonic int sum | `{count}` | | off | Windows only: never emitted here |
//!
//! Which processes: every numeric entry of `/proc`, listed once per scrape (`/proc` unreadable
//! is the scrape's error); `include` / `exclude` (`{names, match_type}`) filter on the
//! executable name before anything else is read; `scrape_process_delay` (a Go duration:
//! `10s`, `1m30s`, `500ms`) skips processes younger than it. A process that vanishes while it
//! is read (its `/proc/<pid>` gone) is skipped silently.
//!
//! Errors: the Collector reports per-process read errors as a partial scrape error while still
//! emitting the rest; here they never fail the scrape but are kept in [`Scraper::errors`] (the
//! last scrape's), unless muted: `mute_process_name_error` (`status` unreadable: the process is
//! skipped), `mute_process_exe_error` (`exe`: path `""`), `mute_process_io_error` (`io`: no
//! disk metrics — reading another user's `io` needs privileges), `mute_process_user_error`
//! (uid not in `/etc/passwd`), `mute_process_cgroup_error` (`cgroup`: the process is skipped),
//! `mute_process_all_errors` (all of them and the rest).

use std::collections::{HashMap, HashSet};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric, NumberDataPoint};
use serde::{Deserialize, Serialize};

use super::{
    attr, attr_int, gauge, point, sum, Ctx, Filter, MatchType, Matcher, Num, Output, Switches,
};

/// `include` / `exclude`: executable names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NameMatch {
    pub names: Vec<String>,
    pub match_type: MatchType,
}

/// `scrapers.process` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
    /// `resource_attributes.<name>.enabled`.
    pub resource_attributes: Switches,
    pub include: NameMatch,
    pub exclude: NameMatch,
    pub mute_process_all_errors: bool,
    pub mute_process_name_error: bool,
    pub mute_process_exe_error: bool,
    pub mute_process_io_error: bool,
    pub mute_process_user_error: bool,
    pub mute_process_cgroup_error: bool,
    /// A Go duration (`10s`, `1m30s`, `500ms`); empty or `0`: no delay.
    pub scrape_process_delay: String,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric or resource attribute names, bad
    /// regexps, a bad `scrape_process_delay`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = unknown("metrics", &self.metrics, METRICS);
        out.extend(unknown(
            "resource_attributes",
            &self.resource_attributes,
            RESOURCE_ATTRIBUTES,
        ));
        for (key, m) in [("include", &self.include), ("exclude", &self.exclude)] {
            if let Err(e) = Matcher::new(m.match_type, &m.names) {
                out.push((format!("{key}.names"), e));
            }
        }
        if let Err(e) = parse_duration(&self.scrape_process_delay) {
            out.push(("scrape_process_delay".to_string(), e));
        }
        out
    }
}

/// Every metric with its Collector default.
pub const METRICS: &[(&str, bool)] = &[
    (CPU_TIME, true),
    (CPU_UTILIZATION, false),
    (MEMORY_USAGE, true),
    (MEMORY_VIRTUAL, true),
    (MEMORY_UTILIZATION, false),
    (DISK_IO, true),
    (DISK_OPERATIONS, false),
    (PAGING_FAULTS, false),
    (SIGNALS_PENDING, false),
    (THREADS, false),
    (OPEN_FDS, false),
    (HANDLES, false),
    (CONTEXT_SWITCHES, false),
    (UPTIME, false),
];

/// Every resource attribute with its Collector default.
pub const RESOURCE_ATTRIBUTES: &[(&str, bool)] = &[
    (PID, true),
    (PARENT_PID, true),
    (EXE_NAME, true),
    (EXE_PATH, true),
    (COMMAND, true),
    (COMMAND_LINE, true),
    (OWNER, true),
    (CGROUP, false),
];

const CPU_TIME: &str = "process.cpu.time";
const CPU_UTILIZATION: &str = "process.cpu.utilization";
const MEMORY_USAGE: &str = "process.memory.usage";
const MEMORY_VIRTUAL: &str = "process.memory.virtual";
const MEMORY_UTILIZATION: &str = "process.memory.utilization";
const DISK_IO: &str = "process.disk.io";
const DISK_OPERATIONS: &str = "process.disk.operations";
const PAGING_FAULTS: &str = "process.paging.faults";
const SIGNALS_PENDING: &str = "process.signals_pending";
const THREADS: &str = "process.threads";
const OPEN_FDS: &str = "process.open_file_descriptors";
const HANDLES: &str = "process.handles";
const CONTEXT_SWITCHES: &str = "process.context_switches";
const UPTIME: &str = "process.uptime";

const PID: &str = "process.pid";
const PARENT_PID: &str = "process.parent_pid";
const EXE_NAME: &str = "process.executable.name";
const EXE_PATH: &str = "process.executable.path";
const COMMAND: &str = "process.command";
const COMMAND_LINE: &str = "process.command_line";
const OWNER: &str = "process.owner";
const CGROUP: &str = "process.cgroup";

/// `/proc` reports times in USER_HZ, 100 on every Linux architecture.
const TICKS_PER_SEC: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / TICKS_PER_SEC;

fn unknown(section: &str, switches: &Switches, known: &[(&str, bool)]) -> Vec<(String, String)> {
    switches
        .keys()
        .filter(|k| !known.iter().any(|(n, _)| n == k))
        .map(|k| {
            let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
            (
                format!("{section}.{k}"),
                format!("unknown name; known: {}", names.join(", ")),
            )
        })
        .collect()
}

/// A Go duration string in nanoseconds: `""`/`0` → 0; else one or more `<number><unit>`
/// (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; the number may have a fraction).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() {
        return Ok(0);
    }
    crate::component::units::parse_duration(t)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What the scraper keeps between collections and from the last one.
pub struct Scraper {
    cfg: Config,
    filter: Filter,
    delay_ns: u64,
    /// pid → (start ticks, time, user s, system s, wait s) of the last scrape.
    prev_cpu: HashMap<u32, (u64, u64, [f64; 3])>,
    /// Logical CPUs, read once.
    cores: Option<f64>,
    errors: Vec<String>,
}

/// The fields of `/proc/<pid>/stat` used here.
#[derive(Debug, Clone, Default, PartialEq)]
struct Stat {
    ppid: i64,
    minflt: u64,
    majflt: u64,
    utime: u64,
    stime: u64,
    threads: u64,
    starttime: u64,
    vsize: u64,
    blkio: u64,
}

/// Parses `pid (comm) state ppid …`: the name may hold spaces and parentheses, so fields are
/// counted after the last `)`. `None` when a needed field is missing or not a number.
fn parse_stat(text: &str) -> Option<Stat> {
    let close = text.rfind(')')?;
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // field n (1-based, as in proc(5)) is rest[n - 3]
    let f = |n: usize| rest.get(n - 3).and_then(|s| s.parse::<u64>().ok());
    Some(Stat {
        ppid: rest.get(1).and_then(|s| s.parse::<i64>().ok())?,
        minflt: f(10)?,
        majflt: f(12)?,
        utime: f(14)?,
        stime: f(15)?,
        threads: f(20)?,
        starttime: f(22)?,
        vsize: f(23)?,
        blkio: f(42).unwrap_or(0),
    })
}

/// The fields of `/proc/<pid>/status` used here.
#[derive(Debug, Clone, Default, PartialEq)]
struct Status {
    name: Option<String>,
    uid: Option<u32>,
    rss_kb: u64,
    voluntary: u64,
    involuntary: u64,
    shd_pnd: u64,
}

fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let v = value.trim();
        let num = |x: &str| {
            x.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        };
        match key {
            "Name" => s.name = Some(value.trim_matches(['\t', ' ']).to_string()),
            "Uid" => s.uid = v.split_whitespace().next().and_then(|u| u.parse().ok()),
            "VmRSS" => s.rss_kb = num(v).unwrap_or(0),
            "voluntary_ctxt_switches" => s.voluntary = num(v).unwrap_or(0),
            "nonvoluntary_ctxt_switches" => s.involuntary = num(v).unwrap_or(0),
            "ShdPnd" => {
                let hex = v.get(v.len().saturating_sub(16)..).unwrap_or(v);
                s.shd_pnd = u64::from_str_radix(hex, 16).unwrap_or(0);
            }
            _ => {}
        }
    }
    s
}

/// `/proc/<pid>/io` counters (missing keys are 0; a value that is not a number is an error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Io {
    rchar: u64,
    wchar: u64,
    syscr: u64,
    syscw: u64,
}

fn parse_io(text: &str) -> Result<Io, String> {
    let mut io = Io::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "rchar" => &mut io.rchar,
            "wchar" => &mut io.wchar,
            "syscr" => &mut io.syscr,
            "syscw" => &mut io.syscw,
            _ => continue,
        };
        *slot = value
            .trim()
            .parse()
            .map_err(|_| format!("bad value in io line {line:?}"))?;
    }
    Ok(io)
}

/// `cmdline`'s arguments (NUL-separated; trailing NULs dropped).
fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    match bytes.get(..end) {
        Some(b) if !b.is_empty() => b
            .split(|c| *c == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// uid → user name from a passwd file.
fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut users = HashMap::new();
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if let Ok(uid) = uid.trim().parse::<u32>() {
            users.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    users
}

fn int(v: u64) -> Num {
    Num::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// A cumulative sum starting at the process's start.
fn psum(
    ctx: &Ctx,
    start_ns: u64,
    name: &str,
    description: &str,
    unit: &str,
    monotonic: bool,
    points: Vec<NumberDataPoint>,
) -> Metric {
    let mut m = sum(ctx, name, description, unit, monotonic, points);
    if let Some(metric::Data::Sum(s)) = &mut m.data {
        for p in &mut s.data_points {
            p.start_time_unix_nano = start_ns;
        }
    }
    m
}

/// Which mute flag silences an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Name,
    Exe,
    Io,
    User,
    Cgroup,
    Other,
}

/// Read once per scrape, shared by every process.
struct Shared {
    users: Option<HashMap<u32, String>>,
    mem_total: Option<u64>,
    cores: f64,
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        Ok(Scraper {
            cfg: cfg.clone(),
            filter: Filter {
                include: Matcher::new(cfg.include.match_type, &cfg.include.names)
                    .map_err(|e| format!("include: {e}"))?,
                exclude: Matcher::new(cfg.exclude.match_type, &cfg.exclude.names)
                    .map_err(|e| format!("exclude: {e}"))?,
            },
            delay_ns: parse_duration(&cfg.scrape_process_delay)
                .map_err(|e| format!("scrape_process_delay: {e}"))?,
            prev_cpu: HashMap::new(),
            cores: None,
            errors: Vec::new(),
        })
    }

    /// The last scrape's per-process read errors that were not muted (the Collector's partial
    /// scrape errors).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    fn on(&self, name: &str) -> bool {
        super::enabled_in(&self.cfg.metrics, METRICS, name)
    }

    fn ra(&self, name: &str) -> bool {
        super::enabled_in(&self.cfg.resource_attributes, RESOURCE_ATTRIBUTES, name)
    }

    fn report(&mut self, kind: Kind, msg: String) {
        let c = &self.cfg;
        let muted = c.mute_process_all_errors
            || match kind {
                Kind::Name => c.mute_process_name_error,
                Kind::Exe => c.mute_process_exe_error,
                Kind::Io => c.mute_process_io_error,
                Kind::User => c.mute_process_user_error,
                Kind::Cgroup => c.mute_process_cgroup_error,
                Kind::Other => false,
            };
        if !muted {
            self.errors.push(msg);
        }
    }

    /// Logical CPUs: `cpuN` lines of `/proc/stat`, else what the OS gives this process.
    fn cores(&mut self, ctx: &Ctx) -> f64 {
        if let Some(c) = self.cores {
            return c;
        }
        let from_stat = ctx.read("/proc/stat").ok().map(|t| {
            t.lines()
                .filter(|l| {
                    l.strip_prefix("cpu")
                        .and_then(|r| r.chars().next())
                        .is_some_and(|c| c.is_ascii_digit())
                })
                .count()
        });
        let n = match from_stat {
            Some(n) if n > 0 => n,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let c = n as f64;
        self.cores = Some(c);
        c
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        self.errors.clear();
        let proc_dir = ctx.path("/proc");
        let entries =
            std::fs::read_dir(&proc_dir).map_err(|e| format!("{}: {e}", proc_dir.display()))?;
        let mut pids: Vec<u32> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
            .collect();
        pids.sort_unstable();
        let shared = Shared {
            users: if self.ra(OWNER) {
                Some(
                    ctx.read("/etc/passwd")
                        .map(|t| parse_passwd(&t))
                        .unwrap_or_default(),
                )
            } else {
                None
            },
            mem_total: if self.on(MEMORY_UTILIZATION) {
                ctx.read("/proc/meminfo").ok().and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("MemTotal:"))
                        .and_then(|v| v.split_whitespace().next())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|kb| kb.saturating_mul(1024))
                })
            } else {
                None
            },
            cores: if self.on(CPU_UTILIZATION) {
                self.cores(ctx)
            } else {
                1.0
            },
        };
        let mut out: Output = Vec::new();
        let mut seen: HashSet<u32> = HashSet::new();
        for pid in pids {
            if let Some(entry) = self.one(ctx, pid, &shared, &mut seen) {
                out.push(entry);
            }
        }
        self.prev_cpu.retain(|pid, _| seen.contains(pid));
        Ok(out)
    }

    /// One process: its resource attributes and metrics, or `None` (gone, filtered out, too
    /// young, or unreadable).
    fn one(
        &mut self,
        ctx: &Ctx,
        pid: u32,
        shared: &Shared,
        seen: &mut HashSet<u32>,
    ) -> Option<(Vec<KeyValue>, Vec<Metric>)> {
        let dir = format!("/proc/{pid}");
        let gone = || !ctx.path(&dir).exists();
        let read = |file: &str| std::fs::read(ctx.path(&format!("{dir}/{file}")));

        // stat is world-readable: failing to read it means the process is gone
        let stat_text = read("stat").ok()?;
        let Some(stat) = parse_stat(&String::from_utf8_lossy(&stat_text)) else {
            if !gone() {
                self.report(Kind::Other, format!("error parsing stat of pid {pid}"));
            }
            return None;
        };
        let status = match read("status") {
            Ok(b) => parse_status(&String::from_utf8_lossy(&b)),
            Err(e) => {
                if !gone() {
                    self.report(
                        Kind::Name,
                        format!("error reading process name for pid {pid}: {e}"),
                    );
                }
                return None;
            }
        };
        let Some(short_name) = status.name.clone() else {
            self.report(
                Kind::Name,
                format!("error reading process name for pid {pid}: no Name in status"),
            );
            return None;
        };
        // cmdline: for long names, and for the command attributes
        let cmdline: Result<Vec<String>, std::io::Error> =
            read("cmdline").map(|b| parse_cmdline(&b));
        let name = match &cmdline {
            Ok(args) if short_name.len() >= 15 => args
                .first()
                .and_then(|a| a.rsplit('/').next())
                .filter(|base| base.starts_with(&short_name))
                .map_or(short_name.clone(), str::to_string),
            _ => short_name,
        };
        if !self.filter.allows(&name) {
            return None;
        }
        let start_ns = ctx
            .boot_ns
            .saturating_add(stat.starttime.saturating_mul(NS_PER_TICK));
        if self.delay_ns > 0 && ctx.now_ns.saturating_sub(start_ns) < self.delay_ns {
            return None;
        }

        let mut attrs: Vec<KeyValue> = Vec::new();
        if self.ra(PID) {
            attrs.push(attr_int(PID, i64::from(pid)));
        }
        if self.ra(PARENT_PID) {
            attrs.push(attr_int(PARENT_PID, stat.ppid));
        }
        if self.ra(EXE_NAME) {
            attrs.push(attr(EXE_NAME, &name));
        }
        if self.ra(EXE_PATH) {
            let path = match std::fs::read_link(ctx.path(&format!("{dir}/exe"))) {
                Ok(p) => p.to_string_lossy().into_owned(),
                Err(e) => {
                    if gone() {
                        return None;
                    }
                    self.report(
                        Kind::Exe,
                        format!("error reading process executable for pid {pid}: {e}"),
                    );
                    String::new()
                }
            };
            attrs.push(attr(EXE_PATH, &path));
        }
        match &cmdline {
            Ok(args) => {
                if self.ra(COMMAND) {
                    attrs.push(attr(COMMAND, args.first().map_or("", String::as_str)));
                }
                if self.ra(COMMAND_LINE) {
                    attrs.push(attr(COMMAND_LINE, &args.join(" ")));
                }
            }
            Err(e) => {
                if gone() {
                    return None;
                }
                self.report(
                    Kind::Other,
                    format!("error reading command for process {name:?} (pid {pid}): {e}"),
                );
            }
        }
        if let Some(users) = &shared.users {
            match status.uid {
                Some(uid) => match users.get(&uid) {
                    Some(user) => attrs.push(attr(OWNER, user)),
                    None => {
                        self.report(
                            Kind::User,
                            format!("error reading username for process {name:?} (pid {pid}): unknown userid {uid}"),
                        );
                        attrs.push(attr(OWNER, &uid.to_string()));
                    }
                },
                None => self.report(
                    Kind::User,
                    format!(
                        "error reading username for process {name:?} (pid {pid}): no Uid in status"
                    ),
                ),
            }
        }
        if self.ra(CGROUP) {
            match read("cgroup") {
                Ok(b) => {
                    let text = String::from_utf8_lossy(&b);
                    attrs.push(attr(CGROUP, text.strip_suffix('\n').unwrap_or(&text)));
                }
                Err(e) => {
                    if !gone() {
                        self.report(
                            Kind::Cgroup,
                            format!("error reading process cgroup for pid {pid}: {e}"),
                        );
                    }
                    return None;
                }
            }
        }

        seen.insert(pid);
        let metrics = self.metrics(ctx, pid, &name, &stat, &status, start_ns, shared);
        Some((attrs, metrics))
    }

    #[allow(clippy::too_many_arguments)]
    fn metrics(
        &mut self,
        ctx: &Ctx,
        pid: u32,
        name: &str,
        stat: &Stat,
        status: &Status,
        start_ns: u64,
        shared: &Shared,
    ) -> Vec<Metric> {
        let mut m: Vec<Metric> = Vec::new();
        let dir = format!("/proc/{pid}");
        let gone = || !ctx.path(&dir).exists();
        let secs = |ticks: u64| ticks as f64 / TICKS_PER_SEC as f64;
        let cpu = [secs(stat.utime), secs(stat.stime), secs(stat.blkio)];
        const STATES: [&str; 3] = ["user", "system", "wait"];
        if self.on(CPU_TIME) {
            let pts = STATES
                .iter()
                .zip(cpu)
                .map(|(s, v)| point(vec![attr("state", s)], Num::Double(v)))
                .collect();
            m.push(psum(
                ctx,
                start_ns,
                CPU_TIME,
                "Total CPU seconds broken down by different states.",
                "s",
                true,
                pts,
            ));
        }
        if self.on(CPU_UTILIZATION) {
            let prev = self.prev_cpu.insert(pid, (stat.starttime, ctx.now_ns, cpu));
            if let Some((start, t0, c0)) = prev {
                let elapsed = ctx.now_ns.saturating_sub(t0) as f64 / 1e9;
                if start == stat.starttime && elapsed > 0.0 {
                    let pts = STATES
                        .iter()
                        .zip(cpu.iter().zip(c0))
                        .map(|(s, (now, before))| {
                            let u = (now - before) / elapsed / shared.cores;
                            point(vec![attr("state", s)], Num::Double(u))
                        })
                        .collect();
                    m.push(gauge(
                        ctx,
                        CPU_UTILIZATION,
                        "Percentage of total CPU time used by the process since last scrape, expressed as a value between 0 and 1. On the first scrape, no data point is emitted for this metric.",
                        "1",
                        pts,
                    ));
                }
            }
        }
        let rss = status.rss_kb.saturating_mul(1024);
        if self.on(MEMORY_USAGE) {
            m.push(psum(
                ctx,
                start_ns,
                MEMORY_USAGE,
                "The amount of physical memory in use.",
                "By",
                false,
                vec![point(Vec::new(), int(rss))],
            ));
        }
        if self.on(MEMORY_VIRTUAL) {
            m.push(psum(
                ctx,
                start_ns,
                MEMORY_VIRTUAL,
                "Virtual memory size.",
                "By",
                false,
                vec![point(Vec::new(), int(stat.vsize))],
            ));
        }
        if self.on(MEMORY_UTILIZATION) {
            match shared.mem_total {
                Some(total) if total > 0 => m.push(gauge(
                    ctx,
                    MEMORY_UTILIZATION,
                    "Percentage of total physical memory that is used by the process.",
                    "1",
                    vec![point(
                        Vec::new(),
                        Num::Double(100.0 * rss as f64 / total as f64),
                    )],
                )),
                _ => self.report(
                    Kind::Other,
                    format!("error reading memory utilization for process {name:?} (pid {pid}): no MemTotal in /proc/meminfo"),
                ),
            }
        }
        let (want_io, want_ops) = (self.on(DISK_IO), self.on(DISK_OPERATIONS));
        if want_io || want_ops {
            let io = std::fs::read(ctx.path(&format!("{dir}/io")))
                .map_err(|e| e.to_string())
                .and_then(|b| parse_io(&String::from_utf8_lossy(&b)));
            match io {
                Ok(io) => {
                    let rw = |r: u64, w: u64| {
                        vec![
                            point(vec![attr("direction", "read")], int(r)),
                            point(vec![attr("direction", "write")], int(w)),
                        ]
                    };
                    if want_io {
                        m.push(psum(
                            ctx,
                            start_ns,
                            DISK_IO,
                            "Disk bytes transferred.",
                            "By",
                            true,
                            rw(io.rchar, io.wchar),
                        ));
                    }
                    if want_ops {
                        m.push(psum(
                            ctx,
                            start_ns,
                            DISK_OPERATIONS,
                            "Number of disk operations performed by the process.",
                            "{operations}",
                            true,
                            rw(io.syscr, io.syscw),
                        ));
                    }
                }
                Err(e) => {
                    if !gone() {
                        self.report(
                            Kind::Io,
                            format!(
                                "error reading disk usage for process {name:?} (pid {pid}): {e}"
                            ),
                        );
                    }
                }
            }
        }
        if self.on(PAGING_FAULTS) {
            m.push(psum(
                ctx,
                start_ns,
                PAGING_FAULTS,
                "Number of page faults the process has made.",
                "{faults}",
                true,
                vec![
                    point(vec![attr("type", "major")], int(stat.majflt)),
                    point(vec![attr("type", "minor")], int(stat.minflt)),
                ],
            ));
        }
        if self.on(THREADS) {
            m.push(psum(
                ctx,
                start_ns,
                THREADS,
                "Process threads count.",
                "{threads}",
                false,
                vec![point(Vec::new(), int(stat.threads))],
            ));
        }
        if self.on(CONTEXT_SWITCHES) {
            m.push(psum(
                ctx,
                start_ns,
                CONTEXT_SWITCHES,
                "Number of times the process has been context switched.",
                "{count}",
                true,
                vec![
                    point(vec![attr("type", "involuntary")], int(status.involuntary)),
                    point(vec![attr("type", "voluntary")], int(status.voluntary)),
                ],
            ));
        }
        if self.on(OPEN_FDS) {
            match std::fs::read_dir(ctx.path(&format!("{dir}/fd"))) {
                Ok(entries) => {
                    let n = entries.filter(|e| e.is_ok()).count() as u64;
                    m.push(psum(
                        ctx,
                        start_ns,
                        OPEN_FDS,
                        "Number of file descriptors in use by the process.",
                        "{count}",
                        false,
                        vec![point(Vec::new(), int(n))],
                    ));
                }
                Err(e) => {
                    if !gone() {
                        self.report(
                            Kind::Other,
                            format!("error reading open file descriptor count for process {name:?} (pid {pid}): {e}"),
                        );
                    }
                }
            }
        }
        if self.on(SIGNALS_PENDING) {
            m.push(psum(
                ctx,
                start_ns,
                SIGNALS_PENDING,
                "Number of pending signals for the process.",
                "{signals}",
                false,
                vec![point(Vec::new(), int(status.shd_pnd))],
            ));
        }
        if self.on(UPTIME) {
            let up = ctx.now_ns.saturating_sub(start_ns) as f64 / 1e9;
            m.push(gauge(
                ctx,
                UPTIME,
                "The time the process has been running.",
                "s",
                vec![point(Vec::new(), Num::Double(up))],
            ));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::super::MetricSwitch;
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point;
    use std::path::Path;

    const BOOT_S: u64 = 1_700_000_000;
    const BOOT: u64 = BOOT_S * 1_000_000_000;
    const NOW: u64 = BOOT + 10_000 * 1_000_000_000;

    /// A `stat` line with the given fields (1-based as in proc(5)), the rest 0.
    fn stat_line(pid: u32, comm: &str, set: &[(usize, u64)]) -> String {
        let mut f: Vec<String> = vec!["0".into(); 53];
        f[3] = "S".into();
        for (i, v) in set {
            f[*i] = v.to_string();
        }
        format!("{pid} ({comm}) {}\n", f[3..].join(" "))
    }

    fn status(name: &str, uid: u32, rss_kb: Option<u64>) -> String {
        let rss = rss_kb.map_or(String::new(), |r| {
            format!("VmPeak:\t 1100000 kB\nVmSize:\t 1024000 kB\nVmRSS:\t{r:>8} kB\n")
        });
        format!(
            "Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nPPid:\t1\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\nFDSize:\t64\n{rss}Threads:\t4\nSigQ:\t0/63428\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000002\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n"
        )
    }

    struct P<'a> {
        pid: u32,
        comm: &'a str,
        stat: Vec<(usize, u64)>,
        uid: u32,
        rss_kb: Option<u64>,
        cmdline: &'a [u8],
        exe: Option<&'a str>,
        io: Option<&'a str>,
        fds: usize,
    }

    fn write_proc(root: &Path, p: &P) {
        let d = root.join(format!("proc/{}", p.pid));
        std::fs::create_dir_all(d.join("fd")).unwrap();
        std::fs::write(d.join("stat"), stat_line(p.pid, p.comm, &p.stat)).unwrap();
        std::fs::write(d.join("status"), status(p.comm, p.uid, p.rss_kb)).unwrap();
        std::fs::write(d.join("cmdline"), p.cmdline).unwrap();
        std::fs::write(d.join("cgroup"), "0::/system.slice/app.service\n").unwrap();
        if let Some(exe) = p.exe {
            std::os::unix::fs::symlink(exe, d.join("exe")).unwrap();
        }
        if let Some(io) = p.io {
            std::fs::write(d.join("io"), io).unwrap();
        }
        for i in 0..p.fds {
            std::fs::write(d.join(format!("fd/{i}")), "").unwrap();
        }
    }

    const IO: &str = "rchar: 5000\nwchar: 3000\nsyscr: 50\nsyscw: 30\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        std::fs::create_dir_all(root.join("proc/sys")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken line\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("proc/stat"),
            format!("cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 1 1 1 1 1 1 0 0 0\ncpu1 1 1 1 1 1 1 1 0 0 0\nintr 1\nbtime {BOOT_S}\n"),
        )
        .unwrap();
        std::fs::write(
            root.join("proc/meminfo"),
            "MemTotal:       16384000 kB\nMemFree: 1 kB\n",
        )
        .unwrap();
        let app = [
            (10, 2500),
            (12, 12),
            (14, 350),
            (15, 120),
            (20, 4),
            (22, 5000),
            (23, 1_048_576_000),
            (24, 2560),
            (42, 5),
        ];
        write_proc(
            root,
            &P {
                pid: 1234,
                comm: "myapp",
                stat: [&app[..], &[(4, 1)]].concat(),
                uid: 1000,
                rss_kb: Some(10240),
                cmdline: b"/usr/bin/myapp\0--config\0/etc/my app.yaml\0",
                exe: Some("/usr/bin/myapp"),
                io: Some(IO),
                fds: 3,
            },
        );
        write_proc(
            root,
            &P {
                pid: 1,
                comm: "systemd",
                stat: vec![(14, 100), (22, 1), (23, 200_000_000)],
                uid: 0,
                rss_kb: Some(9000),
                cmdline: b"/sbin/init\0splash\0",
                exe: Some("/usr/lib/systemd/systemd"),
                io: None, // unreadable (as for another user's process)
                fds: 0,
            },
        );
        write_proc(
            root,
            &P {
                pid: 2,
                comm: "kthreadd",
                stat: vec![(22, 2)],
                uid: 0,
                rss_kb: None,
                cmdline: b"",
                exe: None,
                io: Some(IO),
                fds: 0,
            },
        );
        write_proc(
            root,
            &P {
                pid: 999,
                comm: "containerd-shim",
                stat: vec![(4, 1), (22, 900)],
                uid: 4242,
                rss_kb: Some(1),
                cmdline: b"/usr/bin/containerd-shim-runc-v2\0-namespace\0k8s.io\0",
                exe: Some("/usr/bin/containerd-shim-runc-v2"),
                io: Some(IO),
                fds: 0,
            },
        );
        write_proc(
            root,
            &P {
                pid: 4321,
                comm: "some (odd) name",
                stat: vec![(4, 1234), (22, 999_000)],
                uid: 1000,
                rss_kb: Some(4),
                cmdline: b"worker\0",
                exe: Some("/opt/worker"),
                io: Some(IO),
                fds: 0,
            },
        );
        dir
    }

    fn ctx(root: &Path, now: u64) -> Ctx<'_> {
        Ctx {
            root,
            now_ns: now,
            boot_ns: BOOT,
        }
    }

    fn val(kv: &KeyValue) -> String {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            Some(any_value::Value::IntValue(i)) => format!("#{i}"),
            other => format!("{other:?}"),
        }
    }

    fn attrs(a: &[KeyValue]) -> Vec<(String, String)> {
        a.iter().map(|kv| (kv.key.clone(), val(kv))).collect()
    }

    fn entry(out: &Output, pid: i64) -> &(Vec<KeyValue>, Vec<Metric>) {
        out.iter()
            .find(|(a, _)| {
                a.iter()
                    .any(|kv| kv.key == PID && val(kv) == format!("#{pid}"))
            })
            .unwrap()
    }

    fn metric<'a>(e: &'a (Vec<KeyValue>, Vec<Metric>), name: &str) -> &'a Metric {
        e.1.iter().find(|m| m.name == name).unwrap()
    }

    /// (attributes, value, start) of every point; and (is sum, monotonic).
    fn pts(m: &Metric) -> (Vec<(String, Num, u64)>, Option<bool>) {
        let (points, mono) = match &m.data {
            Some(metric::Data::Sum(s)) => (&s.data_points, Some(s.is_monotonic)),
            Some(metric::Data::Gauge(g)) => (&g.data_points, None),
            _ => panic!("{}", m.name),
        };
        let v = points
            .iter()
            .map(|p| {
                assert_eq!(p.time_unix_nano, NOW.max(p.time_unix_nano));
                let a: Vec<String> = attrs(&p.attributes)
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let n = match p.value {
                    Some(number_data_point::Value::AsInt(i)) => Num::Int(i),
                    Some(number_data_point::Value::AsDouble(d)) => Num::Double(d),
                    None => panic!(),
                };
                (a.join(","), n, p.start_time_unix_nano)
            })
            .collect();
        (v, mono)
    }

    fn on(cfg: &mut Config, names: &[&str]) {
        for n in names {
            cfg.metrics.insert(
                (*n).into(),
                MetricSwitch {
                    enabled: Some(true),
                },
            );
        }
    }

    #[test]
    fn default_metrics_and_resource_attributes() {
        let dir = fixture();
        let mut sc = Scraper::new(&Config::default()).unwrap();
        let out = sc.scrape(&ctx(dir.path(), NOW)).unwrap();
        let pids: Vec<String> = out.iter().map(|(a, _)| val(&a[0])).collect();
        assert_eq!(pids, ["#1", "#2", "#999", "#1234", "#4321"]);
        let app = entry(&out, 1234);
        assert_eq!(
            attrs(&app.0),
            [
                ("process.pid", "#1234"),
                ("process.parent_pid", "#1"),
                ("process.executable.name", "myapp"),
                ("process.executable.path", "/usr/bin/myapp"),
                ("process.command", "/usr/bin/myapp"),
                (
                    "process.command_line",
                    "/usr/bin/myapp --config /etc/my app.yaml"
                ),
                ("process.owner", "alice"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let names: Vec<&str> = app.1.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "process.cpu.time",
                "process.memory.usage",
                "process.memory.virtual",
                "process.disk.io"
            ]
        );
        let start = BOOT + 50 * 1_000_000_000; // starttime 5000 jiffies
        let m = metric(app, CPU_TIME);
        assert_eq!(
            (m.unit.as_str(), m.description.as_str()),
            ("s", "Total CPU seconds broken down by different states.")
        );
        assert_eq!(
            pts(m),
            (
                vec![
                    ("state=user".into(), Num::Double(3.5), start),
                    ("state=system".into(), Num::Double(1.2), start),
                    ("state=wait".into(), Num::Double(0.05), start),
                ],
                Some(true)
            )
        );
        let m = metric(app, MEMORY_USAGE);
        assert_eq!(
            (m.unit.as_str(), m.description.as_str()),
            ("By", "The amount of physical memory in use.")
        );
        assert_eq!(
            pts(m),
            (
                vec![(String::new(), Num::Int(10240 * 1024), start)],
                Some(false)
            )
        );
        let m = metric(app, MEMORY_VIRTUAL);
        assert_eq!(
            (m.unit.as_str(), m.description.as_str()),
            ("By", "Virtual memory size.")
        );
        assert_eq!(
            pts(m),
            (
                vec![(String::new(), Num::Int(1_048_576_000), start)],
                Some(false)
            )
        );
        let m = metric(app, DISK_IO);
        assert_eq!(
            (m.unit.as_str(), m.description.as_str()),
            ("By", "Disk bytes transferred.")
        );
        assert_eq!(
            pts(m),
            (
                vec![
                    ("direction=read".into(), Num::Int(5000), start),
                    ("direction=write".into(), Num::Int(3000), start),
                ],
                Some(true)
            )
        );
        // kernel thread: empty command, no exe (an error), RSS 0
        let k = entry(&out, 2);
        assert_eq!(
            attrs(&k.0)[2..7],
            [
                ("process.executable.name", "kthreadd"),
                ("process.executable.path", ""),
                ("process.command", ""),
                ("process.command_line", ""),
                ("process.owner", "root"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(pts(metric(k, MEMORY_USAGE)).0[0].1, Num::Int(0));
        // a 15-character name is completed from cmdline; an unknown uid is the owner
        let shim = entry(&out, 999);
        assert_eq!(val(&shim.0[2]), "containerd-shim-runc-v2");
        assert_eq!(val(&shim.0[6]), "4242");
        // parentheses and spaces in the name
        let odd = entry(&out, 4321);
        assert_eq!(val(&odd.0[1]), "#1234");
        assert_eq!(val(&odd.0[2]), "some (odd) name");
        // pid 1: io unreadable, the rest still there
        let init = entry(&out, 1);
        assert!(init.1.iter().all(|m| m.name != DISK_IO));
        assert_eq!(init.1.len(), 3);
        let errs = sc.errors();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].contains("disk usage") && errs[0].contains("pid 1)"),
            "{errs:?}"
        );
        assert!(errs[1].contains("executable for pid 2"), "{errs:?}");
        assert!(errs[2].contains("unknown userid 4242"), "{errs:?}");
    }

    #[test]
    fn mute_flags() {
        let dir = fixture();
        for yaml in [
            "mute_process_all_errors: true\n",
            "mute_process_io_error: true\nmute_process_exe_error: true\nmute_process_user_error: true\n",
        ] {
            let cfg: Config = serde_norway::from_str(yaml).unwrap();
            let mut sc = Scraper::new(&cfg).unwrap();
            let out = sc.scrape(&ctx(dir.path(), NOW)).unwrap();
            assert_eq!(out.len(), 5);
            assert!(sc.errors().is_empty(), "{:?}", sc.errors());
        }
        let cfg: Config = serde_norway::from_str("mute_process_io_error: true\n").unwrap();
        let mut sc = Scraper::new(&cfg).unwrap();
        sc.scrape(&ctx(dir.path(), NOW)).unwrap();
        assert_eq!(sc.errors().len(), 2);
        // status unreadable: skipped, a name error (muted by mute_process_name_error)
        std::fs::remove_file(dir.path().join("proc/1234/status")).unwrap();
        let mut sc = Scraper::new(&Config::default()).unwrap();
        let out = sc.scrape(&ctx(dir.path(), NOW)).unwrap();
        assert_eq!(out.len(), 4);
        assert!(sc
            .errors()
            .iter()
            .any(|e| e.contains("process name for pid 1234")));
        let cfg: Config = serde_norway::from_str("mute_process_name_error: true\n").unwrap();
        let mut sc = Scraper::new(&cfg).unwrap();
        sc.scrape(&ctx(dir.path(), NOW)).unwrap();
        assert!(!sc.errors().iter().any(|e| e.contains("process name")));
        // cgroup unreadable (only read when the attribute is on): the process is skipped
        std::fs::remove_file(dir.path().join("proc/4321/cgroup")).unwrap();
        let cfg: Config =
            serde_norway::from_str("resource_attributes: {process.cgroup: {enabled: true}}\n")
                .unwrap();
        let mut sc = Scraper::new(&cfg).unwrap();
        let out = sc.scrape(&ctx(dir.path(), NOW)).unwrap();
        assert_eq!(out.len(), 3);
        assert!(sc
            .errors()
            .iter()
            .any(|e| e.contains("cgroup for pid 4321")));
        let cfg: Config = serde_norway::from_str(
            "resource_attributes: {process.cgroup: {enabled: true}}\nmute_process_cgroup_error: true\n",
        )
        .unwrap();
        let mut sc = Scraper::new(&cfg).unwrap();
        sc.scrape(&ctx(dir.path(), NOW)).unwrap();
        assert!(!sc.errors().iter().any(|e| e.contains("cgroup")));
    }

    #[test]
    fn optional_metrics_and_cpu_utilization() {
        let dir = fixture();
        let mut cfg: Config = serde_norway::from_str("include: {names: [myapp]}\n").unwrap();
        on(
            &mut cfg,
            &[
                CPU_UTILIZATION,
                MEMORY_UTILIZATION,
                DISK_OPERATIONS,
                PAGING_FAULTS,
                SIGNALS_PENDING,
                THREADS,
                OPEN_FDS,
                HANDLES,
                CONTEXT_SWITCHES,
                UPTIME,
            ],
        );
        let mut sc = Scraper::new(&cfg).unwrap();
        let out = sc.scrape(&ctx(dir.path(), NOW)).unwrap();
        assert_eq!(out.len(), 1);
        let app = &out[0];
        let names: Vec<&str> = app.1.iter().map(|m| m.name.as_str()).collect();
        // no cpu.utilization on the first scrape; no handles on Linux
        assert_eq!(
            names,
            [
                CPU_TIME,
                MEMORY_USAGE,
                MEMORY_VIRTUAL,
                MEMORY_UTILIZATION,
                DISK_IO,
                DISK_OPERATIONS,
                PAGING_FAULTS,
                THREADS,
                CONTEXT_SWITCHES,
                OPEN_FDS,
                SIGNALS_PENDING,
                UPTIME
            ]
        );
        let start = BOOT + 50 * 1_000_000_000;
        let m = metric(app, MEMORY_UTILIZATION);
        assert_eq!(m.unit, "1");
        let (p, kind) = pts(m);
        assert_eq!(kind, None);
        assert_eq!(p[0].1, Num::Double(100.0 * 10240.0 / 16384000.0));
        let m = metric(app, DISK_OPERATIONS);
        assert_eq!(m.unit, "{operations}");
        assert_eq!(
            pts(m),
            (
                vec![
                    ("direction=read".into(), Num::Int(50), start),
                    ("direction=write".into(), Num::Int(30), start)
                ],
                Some(true)
            )
        );
        let m = metric(app, PAGING_FAULTS);
        assert_eq!(m.unit, "{faults}");
        assert_eq!(
            pts(m),
            (
                vec![
                    ("type=major".into(), Num::Int(12), start),
                    ("type=minor".into(), Num::Int(2500), start)
                ],
                Some(true)
            )
        );
        let m = metric(app, THREADS);
        assert_eq!(m.unit, "{threads}");
        assert_eq!(
            pts(m),
            (vec![(String::new(), Num::Int(4), start)], Some(false))
        );
        let m = metric(app, CONTEXT_SWITCHES);
        assert_eq!(m.unit, "{count}");
        assert_eq!(
            pts(m),
            (
                vec![
                    ("type=involuntary".into(), Num::Int(7), start),
                    ("type=voluntary".into(), Num::Int(150), start)
                ],
                Some(true)
            )
        );
        let m = metric(app, OPEN_FDS);
        assert_eq!(m.unit, "{count}");
        assert_eq!(
            pts(m),
            (vec![(String::new(), Num::Int(3), start)], Some(false))
        );
        let m = metric(app, SIGNALS_PENDING);
        assert_eq!(m.unit, "{signals}");
        assert_eq!(
            pts(m),
            (vec![(String::new(), Num::Int(2), start)], Some(false))
        );
        let m = metric(app, UPTIME);
        assert_eq!(m.unit, "s");
        assert_eq!(
            pts(m),
            (vec![(String::new(), Num::Double(9950.0), 0)], None)
        );

        // second scrape 10 s later: +100 user ticks, +20 system ticks, 2 CPUs
        let mut set = vec![
            (4, 1),
            (10, 2500),
            (12, 12),
            (14, 450),
            (15, 140),
            (20, 4),
            (22, 5000),
            (23, 1_048_576_000),
            (42, 5),
        ];
        std::fs::write(
            dir.path().join("proc/1234/stat"),
            stat_line(1234, "myapp", &set),
        )
        .unwrap();
        let later = NOW + 10_000_000_000;
        let out = sc.scrape(&ctx(dir.path(), later)).unwrap();
        let m = metric(&out[0], CPU_UTILIZATION);
        assert_eq!(m.unit, "1");
        let (p, kind) = pts(m);
        assert_eq!(kind, None);
        let got: Vec<(String, f64)> = p
            .into_iter()
            .map(|(a, v, _)| match v {
                Num::Double(d) => (a, d),
                Num::Int(_) => panic!(),
            })
            .collect();
        assert_eq!(got[0].0, "state=user");
        assert!((got[0].1 - 0.05).abs() < 1e-9, "{got:?}");
        assert_eq!(got[1].0, "state=system");
        assert!((got[1].1 - 0.01).abs() < 1e-9, "{got:?}");
        assert_eq!(got[2], ("state=wait".into(), 0.0));
        // the pid reused by a new process (other start time): no utilization
        set[6] = (22, 9000);
        std::fs::write(
            dir.path().join("proc/1234/stat"),
            stat_line(1234, "myapp", &set),
        )
        .unwrap();
        let out = sc.scrape(&ctx(dir.path(), later + 10_000_000_000)).unwrap();
        assert!(out[0].1.iter().all(|m| m.name != CPU_UTILIZATION));
    }

    #[test]
    fn filters_switches_resource_attributes_and_delay() {
        let dir = fixture();
        let pids = |yaml: &str| -> Vec<String> {
            let cfg: Config = serde_norway::from_str(yaml).unwrap();
            assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
            let out = Scraper::new(&cfg)
                .unwrap()
                .scrape(&ctx(dir.path(), NOW))
                .unwrap();
            out.iter().map(|(a, _)| val(&a[0])).collect()
        };
        assert_eq!(
            pids("include: {names: [myapp, systemd]}\n"),
            ["#1", "#1234"]
        );
        assert_eq!(pids("include: {names: [myap]}\n"), Vec::<String>::new());
        assert_eq!(
            pids("include: {names: ['.*d.*'], match_type: regexp}\nexclude: {names: [systemd]}\n"),
            ["#2", "#999", "#4321"]
        );
        assert_eq!(
            pids("exclude: {names: ['k.*', 'containerd-.*'], match_type: regexp}\n"),
            ["#1", "#1234", "#4321"]
        );
        // now is boot + 10000 s; ages: pids 1 and 2 ~10000 s, 999 9991 s, 1234 9950 s, 4321 10 s
        assert_eq!(
            pids("scrape_process_delay: 2h45m\n"),
            ["#1", "#2", "#999", "#1234"]
        );
        assert_eq!(pids("scrape_process_delay: 9992s\n"), ["#1", "#2"]);
        assert_eq!(pids("scrape_process_delay: 9991s\n"), ["#1", "#2", "#999"]);
        assert_eq!(pids("scrape_process_delay: 0s\n").len(), 5);

        let cfg: Config = serde_norway::from_str(
            "include: {names: [myapp]}\nresource_attributes: {process.pid: {enabled: false}, process.owner: {enabled: false}, process.command_line: {enabled: false}, process.cgroup: {enabled: true}}\nmetrics: {process.cpu.time: {enabled: false}, process.disk.io: {enabled: false}, process.threads: {enabled: true}}\n",
        )
        .unwrap();
        assert!(cfg.validate().is_empty());
        let out = Scraper::new(&cfg)
            .unwrap()
            .scrape(&ctx(dir.path(), NOW))
            .unwrap();
        let keys: Vec<String> = attrs(&out[0].0).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [PARENT_PID, EXE_NAME, EXE_PATH, COMMAND, CGROUP].map(String::from)
        );
        assert_eq!(val(&out[0].0[4]), "0::/system.slice/app.service");
        let names: Vec<&str> = out[0].1.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, [MEMORY_USAGE, MEMORY_VIRTUAL, THREADS]);
    }

    #[test]
    fn validate_and_durations() {
        let cfg: Config = serde_norway::from_str(
            "metrics: {process.cpu.seconds: {enabled: true}}\nresource_attributes: {host.name: {enabled: true}}\ninclude: {names: ['*'], match_type: regexp}\nscrape_process_delay: 10 s\n",
        )
        .unwrap();
        let errs = cfg.validate();
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "metrics.process.cpu.seconds",
                "resource_attributes.host.name",
                "include.names",
                "scrape_process_delay"
            ]
        );
        assert!(errs[0].1.contains("process.open_file_descriptors"));
        assert!(errs[1].1.contains("process.owner"));
        assert!(Scraper::new(&cfg).is_err());
        assert!(serde_norway::from_str::<Config>("mute_process_everything: true\n").is_err());
        assert!(serde_norway::from_str::<Config>("include: {devices: [x]}\n").is_err());
        for name in METRICS.iter().chain(RESOURCE_ATTRIBUTES) {
            assert!(name.0.starts_with("process."));
        }
        assert_eq!(METRICS.len(), 14);

        for (s, ns) in [
            ("", 0),
            ("0", 0),
            ("0s", 0),
            ("10s", 10_000_000_000),
            ("1m30s", 90_000_000_000),
            ("500ms", 500_000_000),
            ("1.5h", 5_400_000_000_000),
            ("2us", 2_000),
            ("3µs", 3_000),
            ("7ns", 7),
            ("+1m", 60_000_000_000),
        ] {
            assert_eq!(parse_duration(s), Ok(ns), "{s}");
        }
        for s in [
            "10",
            "s",
            "1x",
            "-1s",
            "1s2",
            ".s",
            "1..2s",
            "1e3s",
            "10 s",
            "99999999999999h",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn missing_and_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&ctx(dir.path(), NOW))
            .unwrap_err();
        assert!(err.contains("proc"), "{err}");
        let dir = fixture();
        let root = dir.path();
        // a pid whose files are gone (exited between listing and reading): skipped silently
        std::fs::create_dir_all(root.join("proc/77")).unwrap();
        let mut sc = Scraper::new(&serde_norway::from_str("mute_process_io_error: true\nmute_process_exe_error: true\nmute_process_user_error: true\n").unwrap()).unwrap();
        assert_eq!(sc.scrape(&ctx(root, NOW)).unwrap().len(), 5);
        assert!(sc.errors().is_empty(), "{:?}", sc.errors());
        let mut cfg = Config::default();
        on(
            &mut cfg,
            &[
                CPU_UTILIZATION,
                MEMORY_UTILIZATION,
                DISK_OPERATIONS,
                PAGING_FAULTS,
                SIGNALS_PENDING,
                THREADS,
                OPEN_FDS,
                CONTEXT_SWITCHES,
                UPTIME,
            ],
        );
        cfg.resource_attributes.insert(
            CGROUP.into(),
            MetricSwitch {
                enabled: Some(true),
            },
        );
        let garbage: [&[u8]; 9] = [
            b"",
            b"\n",
            b"1234 (myapp",
            b"1234 myapp) S",
            b"1234 (myapp) S 1 2 3",
            b")))(((",
            b"\xff\xfe\x00\x01 (\xc3) S x y z",
            b"1234 (a) S 1 1 1 0 -1 0 0 0 0 0 -5 0 0 0 20 0 1 0 -1 0 0",
            b"1234 (a) S 99999999999999999999 1 1 0 -1 0 0 0 0 0 5 0 0 0 20 0 1 0 1 0 0",
        ];
        for g in garbage {
            for file in ["stat", "status", "io", "cmdline", "cgroup"] {
                let dir = fixture();
                std::fs::write(dir.path().join(format!("proc/1234/{file}")), g).unwrap();
                std::fs::write(dir.path().join("proc/meminfo"), g).unwrap();
                std::fs::write(dir.path().join("proc/stat"), g).unwrap();
                std::fs::write(dir.path().join("etc/passwd"), g).unwrap();
                let mut sc = Scraper::new(&cfg).unwrap();
                let out = sc.scrape(&ctx(dir.path(), NOW)).unwrap();
                let out2 = sc.scrape(&ctx(dir.path(), NOW + 1)).unwrap();
                assert!(out.len() >= 4 && out2.len() == out.len());
            }
        }
        // times before boot or a clock going backwards do not panic
        let dir = fixture();
        let mut sc = Scraper::new(&cfg).unwrap();
        sc.scrape(&ctx(dir.path(), 0)).unwrap();
        sc.scrape(&ctx(dir.path(), 0)).unwrap();
        assert_eq!(parse_stat("1 (x) S 1"), None);
        assert_eq!(parse_cmdline(b"\0\0\0"), Vec::<String>::new());
        assert_eq!(parse_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
        assert!(parse_io("rchar: x\n").is_err());
        assert_eq!(parse_io("junk\nrchar: 5\n").unwrap().rchar, 5);
        assert_eq!(
            parse_status("ShdPnd:\tzz\nVmRSS: lots\n"),
            Status::default()
        );
    }

    #[test]
    fn this_machine_our_own_process() {
        let root = Path::new("/");
        let btime: u64 = std::fs::read_to_string("/proc/stat")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let ctx = Ctx {
            root,
            now_ns: now,
            boot_ns: btime * 1_000_000_000,
        };
        let exe = std::env::current_exe().unwrap();
        let exe_name = exe.file_name().unwrap().to_string_lossy().into_owned();
        let mut cfg = Config::default();
        on(
            &mut cfg,
            &[
                THREADS,
                OPEN_FDS,
                CONTEXT_SWITCHES,
                PAGING_FAULTS,
                CPU_UTILIZATION,
            ],
        );
        let mut sc = Scraper::new(&cfg).unwrap();
        let out = sc.scrape(&ctx).unwrap();
        assert!(out.len() > 1);
        let me = entry(&out, i64::from(std::process::id()));
        let a: HashMap<String, String> = attrs(&me.0).into_iter().collect();
        assert_eq!(a[EXE_NAME], exe_name);
        assert_eq!(a[EXE_PATH], exe.to_string_lossy());
        assert_eq!(
            a[PARENT_PID],
            format!("#{}", std::os::unix::process::parent_id())
        );
        assert!(a[COMMAND_LINE].contains(&a[COMMAND]));
        assert!(!a[OWNER].is_empty());
        let (rss, _) = pts(metric(me, MEMORY_USAGE));
        assert!(matches!(rss[0].1, Num::Int(v) if v > 0));
        let start = rss[0].2;
        assert!(start > ctx.boot_ns && start <= now, "{start} {now}");
        let (threads, _) = pts(metric(me, THREADS));
        assert!(matches!(threads[0].1, Num::Int(v) if v >= 1));
        let (fds, _) = pts(metric(me, OPEN_FDS));
        assert!(matches!(fds[0].1, Num::Int(v) if v >= 3));
        assert!(me.1.iter().any(|m| m.name == DISK_IO));
        // the include filter on our own name: only us (and other test binaries of ours)
        let cfg: Config =
            serde_norway::from_str(&format!("include: {{names: ['{exe_name}']}}\n")).unwrap();
        let out = Scraper::new(&cfg).unwrap().scrape(&ctx).unwrap();
        assert!(!out.is_empty());
        assert!(out.iter().all(|(a, _)| val(&a[2]) == exe_name));
    }
}
