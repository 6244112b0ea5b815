//! `processes` scraper (`scrapers.processes`): how many processes there are, by state, and how
//! many were created since boot.
//!
//! | metric | type | unit | attributes | default | source |
//! | --- | --- | --- | --- | --- | --- |
//! | `system.processes.count` | non-monotonic sum, int | `{processes}` | `status` | on | `/proc/[pid]/stat` states, `/proc/stat`, `/proc/loadavg` |
//! | `system.processes.created` | monotonic sum, int | `{processes}` | — | on | `/proc/stat` `processes` |
//!
//! The count follows the Collector on Linux:
//! 1. every `/proc/[pid]/stat` (processes, not threads) is read for its state letter: `R`
//!    running, `S` sleeping, `D` blocked, `Z` zombies, `T`/`t` stopped, `W` paging, `I` idle
//!    (and the other systems' `A` daemon, `E` detached, `L` locked, `O` orphan, `U` blocked,
//!    `Y` system); any other letter (`X`, `K`, `P` …) counts as `unknown`. A process that exits
//!    meanwhile is skipped;
//! 2. `running` and `blocked` are then replaced by `/proc/stat`'s `procs_running` and
//!    `procs_blocked` (the kernel's single-read figures, which count runnable and
//!    uninterruptible tasks, threads included);
//! 3. if `/proc/loadavg`'s task total (field 4, `running/total`, threads included) exceeds the
//!    sum, the difference is added to `unknown`, so the statuses sum to that total. (The
//!    Collector sets `unknown` to the difference, dropping any letters counted unknown in step
//!    1; only hosts with such processes differ.)
//!
//! `running` and `blocked` are always emitted; other statuses only when non-zero, in the order of
//! the Collector's enum (blocked, daemon, detached, idle, locked, orphan, paging, running,
//! sleeping, stopped, system, unknown, zombies).
//!
//! `/proc/stat` is the main source (missing: Err); the `/proc` walk is done only when the count
//! is on (an unreadable `/proc` directory is then an Err); `/proc/loadavg` is optional.
//! Each `/proc/[pid]/stat` is read once, its first 256 bytes only, into a stack buffer.

use std::io::Read;

use serde::{Deserialize, Serialize};

use super::{attr, point, sum, Ctx, Num, Output, Switches};

pub const COUNT: &str = "system.processes.count";
pub const CREATED: &str = "system.processes.created";

/// Every metric of this scraper with its default (enabled by default in the Collector or not).
pub const METRICS: &[(&str, bool)] = &[(COUNT, true), (CREATED, true)];

/// The `status` values, in the Collector's enum order.
const STATUSES: [&str; N] = [
    "blocked", "daemon", "detached", "idle", "locked", "orphan", "paging", "running", "sleeping",
    "stopped", "system", "unknown", "zombies",
];
/// Number of statuses.
const N: usize = 13;
const BLOCKED: usize = 0;
const RUNNING: usize = 7;
const UNKNOWN: usize = 11;

/// `scrapers.processes` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names under `metrics`.
    pub fn validate(&self) -> Vec<(String, String)> {
        super::unknown_metrics("processes", &self.metrics, METRICS)
    }
}

/// Kept between collections: the enabled metrics.
pub struct Scraper {
    count: bool,
    created: bool,
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        Ok(Scraper {
            count: Ctx::enabled(&cfg.metrics, COUNT, true),
            created: Ctx::enabled(&cfg.metrics, CREATED, true),
        })
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let stat = ctx.read("/proc/stat")?;
        let misc = Misc::parse(&stat);
        let mut metrics = Vec::new();
        if self.count {
            let mut counts = walk_states(ctx)?;
            if let Some(running) = misc.running {
                set(&mut counts, RUNNING, running);
            }
            if let Some(blocked) = misc.blocked {
                set(&mut counts, BLOCKED, blocked);
            }
            if let Some(total) = ctx
                .read("/proc/loadavg")
                .ok()
                .as_deref()
                .and_then(loadavg_tasks)
            {
                let known: u64 = counts.iter().sum();
                if total > known {
                    if let Some(unknown) = counts.get_mut(UNKNOWN) {
                        *unknown = unknown.saturating_add(total - known);
                    }
                }
            }
            let points = STATUSES
                .iter()
                .zip(counts)
                .enumerate()
                .filter(|&(i, (_, n))| n > 0 || i == RUNNING || i == BLOCKED)
                .map(|(_, (status, n))| point(vec![attr("status", status)], int(n)))
                .collect();
            metrics.push(sum(
                ctx,
                COUNT,
                "Total number of processes in each state.",
                "{processes}",
                false,
                points,
            ));
        }
        if let (true, Some(created)) = (self.created, misc.created) {
            metrics.push(sum(
                ctx,
                CREATED,
                "Total number of created processes.",
                "{processes}",
                true,
                vec![point(Vec::new(), int(created))],
            ));
        }
        Ok(vec![(Vec::new(), metrics)])
    }
}

fn set(counts: &mut [u64; N], i: usize, v: u64) {
    if let Some(slot) = counts.get_mut(i) {
        *slot = v;
    }
}

fn int(v: u64) -> Num {
    Num::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// `processes`, `procs_running`, `procs_blocked` of `/proc/stat`.
#[derive(Debug, Default, PartialEq)]
struct Misc {
    created: Option<u64>,
    running: Option<u64>,
    blocked: Option<u64>,
}

impl Misc {
    fn parse(text: &str) -> Misc {
        let mut m = Misc::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let slot = match key {
                "processes" => &mut m.created,
                "procs_running" => &mut m.running,
                "procs_blocked" => &mut m.blocked,
                _ => continue,
            };
            *slot = value.trim().parse().ok();
        }
        m
    }
}

/// The task total of `/proc/loadavg` ("0.18 0.49 0.75 3/96 11596" → 96).
fn loadavg_tasks(text: &str) -> Option<u64> {
    let field = text.split_ascii_whitespace().nth(3)?;
    field.split_once('/')?.1.parse().ok()
}

/// Processes per status index, from every `/proc/[pid]/stat`.
fn walk_states(ctx: &Ctx) -> Result<[u64; N], String> {
    let mut counts = [0u64; N];
    let mut path = ctx.path("/proc");
    let dir = std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = [0u8; 256];
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str() else { continue };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        path.push(pid);
        path.push("stat");
        let state = read_prefix(&path, &mut buf).and_then(state_letter);
        path.pop();
        path.pop();
        // Gone meanwhile (or unreadable): not counted, as in the Collector.
        let Some(letter) = state else { continue };
        if let Some(slot) = counts.get_mut(status_index(letter)) {
            *slot += 1;
        }
    }
    Ok(counts)
}

/// The first bytes of a file (up to the buffer's size).
fn read_prefix<'a>(path: &std::path::Path, buf: &'a mut [u8; 256]) -> Option<&'a [u8]> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut n = 0;
    while n < buf.len() {
        let tail = buf.get_mut(n..)?;
        match file.read(tail) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.get(..n)
}

/// The state letter of a `/proc/[pid]/stat` line: the first field after the last `)` (the
/// command name in parentheses may itself contain `)` and spaces).
fn state_letter(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 1..)?
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
}

/// gopsutil's letter → status mapping (`convertStatusChar`), as a `STATUSES` index.
fn status_index(letter: u8) -> usize {
    match letter {
        b'D' | b'U' => BLOCKED,
        b'A' => 1,
        b'E' => 2,
        b'I' => 3,
        b'L' => 4,
        b'O' => 5,
        b'W' => 6,
        b'R' => RUNNING,
        b'S' => 8,
        b'T' | b't' => 9,
        b'Y' => 10,
        b'Z' => 12,
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::testkit::*;
    use super::*;

    const STAT: &str = "cpu  188445 0 25607 477214 2195 0 239 64 0 0
cpu0 78969 0 10753 256493 547 0 57 31 0 0
ctxt 1368248
btime 1796207170
processes 44058
procs_running 3
procs_blocked 1
softirq 655060 0 108618 4 44309 107037 0 386 168207 5034 221465
";

    fn fixture() -> Root {
        let root = Root::new();
        root.write("proc/stat", STAT);
        root.write("proc/loadavg", "0.18 0.49 0.75 3/40 11596\n");
        let procs: [(u32, &str, char); 11] = [
            (1, "systemd", 'S'),
            (2, "kthreadd", 'S'),
            (3, "rcu_gp", 'I'),
            (10, "bash", 'R'),
            (11, "a) R (b", 'S'),
            (12, "defunct", 'Z'),
            (13, "vim", 'T'),
            (14, "gdb-child", 't'),
            (15, "nfs", 'D'),
            (16, "parked", 'P'),
            (17, "sleeper", 'S'),
        ];
        for (pid, comm, state) in procs {
            root.write(
                &format!("proc/{pid}/stat"),
                &format!("{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 1277 0 0 0 5 3 0 0 20 0 1 0 27 17481728 2898 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"),
            );
        }
        // not processes
        root.write("proc/self/stat", "999 (self) R 1\n");
        root.write("proc/net/dev", "x");
        root.write("proc/18/status", "Name: no stat file\n");
        root
    }

    #[test]
    fn counts_by_status_as_the_collector() {
        let root = fixture();
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![COUNT, CREATED]);
        let pts = sum_points(find(&out, COUNT), "{processes}", false);
        let get = |s| as_int(point_with(pts, &[("status", s)]));
        assert_eq!(get("running"), 3, "procs_running, not the one R process");
        assert_eq!(get("blocked"), 1);
        assert_eq!(get("sleeping"), 4);
        assert_eq!(get("idle"), 1);
        assert_eq!(get("zombies"), 1);
        assert_eq!(get("stopped"), 2);
        // 1 parked + (40 tasks − 13 counted)
        assert_eq!(get("unknown"), 1 + 27);
        let total: i64 = pts.iter().map(as_int).sum();
        assert_eq!(total, 40);
        let order: Vec<&str> = pts.iter().map(|p| attrs(p)[0].1).collect();
        assert_eq!(
            order,
            ["blocked", "idle", "running", "sleeping", "stopped", "unknown", "zombies"]
        );
        let created = sum_points(find(&out, CREATED), "{processes}", true);
        assert_eq!((created.len(), as_int(&created[0])), (1, 44058));
        assert!(attrs(&created[0]).is_empty());
    }

    #[test]
    fn without_loadavg_or_stat_figures() {
        let root = fixture();
        root.remove("proc/loadavg");
        root.write("proc/stat", "cpu0 1 1 1 1\nprocesses 7\n");
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        let pts = sum_points(find(&out, COUNT), "{processes}", false);
        let get = |s| as_int(point_with(pts, &[("status", s)]));
        assert_eq!(
            (get("running"), get("blocked"), get("unknown")),
            (1, 1, 1),
            "from the walk"
        );
        assert_eq!(pts.iter().map(as_int).sum::<i64>(), 11);
        // nothing at all: running and blocked are still there, as zeros
        let empty = Root::new();
        empty.write("proc/stat", "procs_running 0\n");
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&empty.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![COUNT], "no `processes` line: no created");
        let pts = sum_points(find(&out, COUNT), "{processes}", false);
        assert_eq!(pts.len(), 2);
        assert_eq!(pts.iter().map(as_int).sum::<i64>(), 0);
    }

    #[test]
    fn switches_and_validate() {
        let root = Root::new();
        root.write("proc/stat", STAT); // no pid dirs needed when the count is off
        let cfg: Config =
            serde_norway::from_str("metrics:\n  system.processes.count:\n    enabled: false\n")
                .unwrap();
        assert!(cfg.validate().is_empty());
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(names(&out), vec![CREATED]);
        let cfg = Config {
            metrics: switches(&[(CREATED, false), ("system.processes.threads", true)]),
        };
        let errs = cfg.validate();
        assert_eq!(
            (errs.len(), errs[0].0.as_str()),
            (1, "metrics.system.processes.threads")
        );
        assert!(errs[0].1.contains(COUNT) && errs[0].1.contains(CREATED));
        assert!(serde_norway::from_str::<Config>("include: {}\n").is_err());
        assert_eq!(METRICS, &[(COUNT, true), (CREATED, true)]);
    }

    #[test]
    fn missing_truncated_or_garbage() {
        let root = Root::new();
        let err = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap_err();
        assert!(err.contains("proc/stat"), "{err}");
        root.write(
            "proc/stat",
            "processes x\nprocs_running\nprocs_blocked -1\n\u{0}",
        );
        root.write("proc/loadavg", "1 2 3 4\n");
        root.write("proc/5/stat", "5 (no closing paren R 1 2");
        root.write("proc/6/stat", "6 (x)");
        root.write("proc/7/stat", "");
        root.write("proc/8/stat", &format!("8 (long) S {}", "1 ".repeat(500)));
        root.write("proc/9/stat", "9 (x) ?");
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![COUNT]);
        let pts = sum_points(find(&out, COUNT), "{processes}", false);
        let get = |s| as_int(point_with(pts, &[("status", s)]));
        assert_eq!(
            (
                get("sleeping"),
                get("unknown"),
                get("running"),
                get("blocked")
            ),
            (1, 1, 0, 0)
        );
        assert_eq!(state_letter(b"1 (a)) b) ) Z 5"), Some(b'Z'));
        assert_eq!(state_letter(b"1 (a"), None);
        assert_eq!(loadavg_tasks("0.1 0.2 0.3 2/"), None);
    }

    #[test]
    fn real_host() {
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&host())
            .unwrap();
        let pts = sum_points(find(&out, COUNT), "{processes}", false);
        let get = |s| as_int(point_with(pts, &[("status", s)]));
        assert!(get("running") >= 1, "this test is running");
        assert!(get("sleeping") >= 1);
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap();
        let tasks = loadavg_tasks(&loadavg).unwrap() as i64;
        let total: i64 = pts.iter().map(as_int).sum();
        assert!((total - tasks).abs() < 50, "{total} vs {tasks}");
        assert!(as_int(&sum_points(find(&out, CREATED), "{processes}", true)[0]) > 0);
    }
}
