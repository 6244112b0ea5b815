//! `otelgw-loadgen`: the end-to-end load bench.
//!
//! - `run`: replays pre-encoded OTLP requests (generated once from a seed) over N persistent
//!   connections (gRPC or HTTP), at a target rate or at saturation, and reports items/s, latency
//!   percentiles, errors by status, and — sampled from `/proc/<pid>` — the gateway's CPU seconds
//!   and RSS; with `--sink` it also runs the null sink and checks sent = received.
//! - `sink`: only the null sink (counts items by walking the wire format; see `wire.rs`).
//! - `ceiling`: prost decode + encode of the same requests in a tight loop on one thread, the
//!   upper bound for any gateway that decodes everything.
//!
//! Prints a human summary and one JSON line (`RESULT {...}`) that `benches/compare.sh` reads.
#![allow(clippy::print_stdout)] // a command-line tool: its output is its report

mod sink;
mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use otelgw::data::{Signal, Telemetry};
use otelgw::testdata;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "otelgw-loadgen", about = "end-to-end OTLP load bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Sig {
    Traces,
    Metrics,
    Logs,
}

impl Sig {
    fn signal(self) -> Signal {
        match self {
            Sig::Traces => Signal::Traces,
            Sig::Metrics => Signal::Metrics,
            Sig::Logs => Signal::Logs,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Comp {
    None,
    Gzip,
    Zstd,
}

#[derive(clap::Args, Clone)]
struct Shape {
    /// Signal to send.
    #[arg(long, value_enum, default_value = "traces")]
    signal: Sig,
    /// Items per request (spans, log records, or metric data points ≈ this number).
    #[arg(long, default_value_t = 512)]
    items: usize,
    /// Seed for the generated requests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Distinct pre-encoded requests to cycle through.
    #[arg(long, default_value_t = 16)]
    variants: usize,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send load to a gateway.
    Run {
        /// `grpc://host:port` or `http://host:port`.
        #[arg(long)]
        target: String,
        #[command(flatten)]
        shape: Shape,
        /// Persistent connections (one request in flight on each).
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Target items per second over all connections (0 = as fast as possible).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// Request compression.
        #[arg(long, value_enum, default_value = "none")]
        compression: Comp,
        /// Gateway process to sample CPU and RSS from.
        #[arg(long)]
        pid: Option<u32>,
        /// Run the null sink on this address and check sent = received.
        #[arg(long)]
        sink: Option<String>,
        /// A label for the report (e.g. otelgw, rotel).
        #[arg(long, default_value = "gateway")]
        label: String,
    },
    /// Only run the null sink; prints counts every second.
    Sink {
        #[arg(long)]
        listen: String,
    },
    /// Decode + encode the requests in a loop on this thread; prints items/s.
    Ceiling {
        #[command(flatten)]
        shape: Shape,
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
    },
}

fn requests(shape: &Shape) -> Vec<Telemetry> {
    (0..shape.variants.max(1))
        .map(|i| {
            let seed = shape.seed.wrapping_add(i as u64);
            match shape.signal {
                Sig::Traces => Telemetry::Traces(testdata::traces(seed, 1, shape.items)),
                Sig::Logs => Telemetry::Logs(testdata::logs(seed, 1, shape.items)),
                // 5 metric kinds × points ≈ items
                Sig::Metrics => {
                    Telemetry::Metrics(testdata::metrics(seed, 1, (shape.items / 5).max(1)))
                }
            }
        })
        .collect()
}

/// CPU seconds (user + system) and RSS bytes of a process, from /proc.
fn proc_sample(pid: u32, ticks: f64) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(((utime + stime) / ticks, rss_kb * 1024))
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

struct Stats {
    latencies_us: Vec<u32>,
    items: u64,
    errors: BTreeMap<String, u64>,
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn compress(c: Comp, b: &Bytes) -> Bytes {
    use std::io::Write;
    match c {
        Comp::None => b.clone(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = e.write_all(b);
            Bytes::from(e.finish().unwrap_or_default())
        }
        Comp::Zstd => Bytes::from(zstd::bulk::compress(b, 1).unwrap_or_default()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    target: String,
    shape: Shape,
    connections: usize,
    duration: f64,
    rate: f64,
    compression: Comp,
    pid: Option<u32>,
    sink_addr: Option<String>,
    label: String,
) -> Result<(), String> {
    let signal = shape.signal.signal();
    let reqs = requests(&shape);
    let items_per_req: Vec<u64> = reqs.iter().map(|r| r.item_count()).collect();
    let bodies: Vec<Bytes> = reqs.iter().map(|r| r.encode_to_bytes()).collect();
    let avg_item_bytes = bodies[0].len() as f64 / items_per_req[0].max(1) as f64;

    let counts = Arc::new(sink::Counts::default());
    if let Some(addr) = &sink_addr {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("sink bind {addr}: {e}"))?;
        tokio::spawn(sink::serve(l, counts.clone()));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let sent_items = Arc::new(AtomicU64::new(0));
    let per_worker_interval = if rate > 0.0 {
        Some(Duration::from_secs_f64(
            items_per_req[0] as f64 * connections as f64 / rate,
        ))
    } else {
        None
    };
    let grpc = target
        .strip_prefix("grpc://")
        .map(|h| format!("http://{h}"));
    let mut workers = Vec::new();
    for w in 0..connections.max(1) {
        // compressed gRPC goes out as pre-built frames over a plain HTTP/2 connection
        // (`GrpcFrames`): tonic would compress every message again in this process
        let framed = grpc.is_some() && compression != Comp::None;
        let bodies: Vec<Bytes> = if framed {
            bodies
                .iter()
                .map(|b| grpc_frame(&compress(compression, b)))
                .collect()
        } else if grpc.is_some() {
            bodies.clone()
        } else {
            bodies.iter().map(|b| compress(compression, b)).collect()
        };
        let items_per_req = items_per_req.clone();
        let stop = stop.clone();
        let sent_items = sent_items.clone();
        let grpc = grpc.clone();
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut st = Stats {
                latencies_us: Vec::with_capacity(100_000),
                items: 0,
                errors: BTreeMap::new(),
            };
            let mut i = w;
            let mut next = Instant::now();
            let mut frames = match (&grpc, framed) {
                (Some(uri), true) => match GrpcFrames::connect(uri, compression).await {
                    Ok(f) => Some(f),
                    Err(e) => {
                        st.errors.insert(e, 1);
                        return st;
                    }
                },
                _ => None,
            };
            let mut grpc_client = match &grpc {
                Some(_) if framed => None,
                Some(uri) => {
                    let ch = match tonic::transport::Endpoint::from_shared(uri.clone()) {
                        Ok(e) => e.tcp_nodelay(true).connect_lazy(),
                        Err(e) => {
                            st.errors.insert(format!("bad target: {e}"), 1);
                            return st;
                        }
                    };
                    let mut g = tonic::client::Grpc::new(ch);
                    match compression {
                        Comp::Gzip => {
                            g = g.send_compressed(tonic::codec::CompressionEncoding::Gzip)
                        }
                        Comp::Zstd => {
                            g = g.send_compressed(tonic::codec::CompressionEncoding::Zstd)
                        }
                        Comp::None => {}
                    }
                    Some(g)
                }
                None => None,
            };
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap_or_default();
            let url = format!("{}{}", target.trim_end_matches('/'), signal.http_path());
            while !stop.load(Ordering::Relaxed) {
                if let Some(iv) = per_worker_interval {
                    next += iv;
                    let now = Instant::now();
                    if next > now {
                        tokio::time::sleep(next - now).await;
                    }
                }
                let k = i % bodies.len();
                i += 1;
                let t0 = Instant::now();
                let res: Result<(), String> = match (grpc_client.as_mut(), frames.as_mut()) {
                    (Some(g), _) => send_grpc(g, signal, bodies[k].clone()).await,
                    (None, Some(f)) => f.send(signal, bodies[k].clone()).await,
                    (None, None) => {
                        let mut r = http
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .body(bodies[k].clone());
                        match compression {
                            Comp::Gzip => r = r.header("content-encoding", "gzip"),
                            Comp::Zstd => r = r.header("content-encoding", "zstd"),
                            Comp::None => {}
                        }
                        match r.send().await {
                            Ok(resp) if resp.status().is_success() => {
                                let _ = resp.bytes().await;
                                Ok(())
                            }
                            Ok(resp) => Err(format!("http {}", resp.status().as_u16())),
                            Err(e) => Err(if e.is_connect() {
                                "connect".into()
                            } else {
                                "transport".into()
                            }),
                        }
                    }
                };
                st.latencies_us
                    .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                match res {
                    Ok(()) => {
                        st.items += items_per_req[k];
                        sent_items.fetch_add(items_per_req[k], Ordering::Relaxed);
                    }
                    Err(e) => *st.errors.entry(e).or_default() += 1,
                }
            }
            st
        }));
    }

    let ticks = clock_ticks();
    let start = Instant::now();
    let cpu0 = pid.and_then(|p| proc_sample(p, ticks));
    let mut rss_peak = 0u64;
    let mut rss_sum = 0u64;
    let mut rss_n = 0u64;
    while start.elapsed().as_secs_f64() < duration {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some((_, rss)) = pid.and_then(|p| proc_sample(p, ticks)) {
            rss_peak = rss_peak.max(rss);
            rss_sum += rss;
            rss_n += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Stats {
        latencies_us: vec![],
        items: 0,
        errors: BTreeMap::new(),
    };
    for w in workers {
        if let Ok(s) = w.await {
            all.latencies_us.extend(s.latencies_us);
            all.items += s.items;
            for (k, v) in s.errors {
                *all.errors.entry(k).or_default() += v;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = pid.and_then(|p| proc_sample(p, ticks));
    let cpu = match (cpu0, cpu1) {
        (Some((a, _)), Some((b, _))) => b - a,
        _ => 0.0,
    };
    let mut received = None;
    if sink_addr.is_some() {
        let deadline = Instant::now() + Duration::from_secs(15);
        while counts.get(signal) < all.items && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        received = Some(counts.get(signal));
    }
    all.latencies_us.sort_unstable();
    let items_s = all.items as f64 / elapsed;
    let per_cpu = if cpu > 0.0 {
        all.items as f64 / cpu
    } else {
        0.0
    };
    println!(
        "{label}: {} {} in {elapsed:.1}s over {connections} connections ({:.0} B/item)",
        all.items,
        signal.item_noun(),
        avg_item_bytes
    );
    println!("  items/s          {items_s:.0}");
    println!(
        "  gateway cpu      {cpu:.2} s  ({:.0}% of one core)",
        100.0 * cpu / elapsed
    );
    println!("  items/cpu-second {per_cpu:.0}");
    println!(
        "  rss peak / avg   {:.1} / {:.1} MiB",
        rss_peak as f64 / 1048576.0,
        if rss_n > 0 {
            rss_sum as f64 / rss_n as f64 / 1048576.0
        } else {
            0.0
        }
    );
    println!(
        "  latency ms       p50 {:.2}  p99 {:.2}  p999 {:.2}",
        pct(&all.latencies_us, 0.5),
        pct(&all.latencies_us, 0.99),
        pct(&all.latencies_us, 0.999)
    );
    println!("  errors           {:?}", all.errors);
    if let Some(r) = received {
        println!(
            "  received by sink {r} ({})",
            if r == all.items { "all" } else { "MISMATCH" }
        );
    }
    let json = serde_json::json!({
        "label": label, "signal": signal.as_str(), "items": all.items, "seconds": elapsed,
        "items_per_s": items_s, "cpu_s": cpu, "items_per_cpu_s": per_cpu,
        "rss_peak_mib": rss_peak as f64 / 1048576.0,
        "rss_avg_mib": if rss_n > 0 { rss_sum as f64 / rss_n as f64 / 1048576.0 } else { 0.0 },
        "p50_ms": pct(&all.latencies_us, 0.5), "p99_ms": pct(&all.latencies_us, 0.99), "p999_ms": pct(&all.latencies_us, 0.999),
        "errors": all.errors, "received": received,
    });
    println!("RESULT {json}");
    Ok(())
}

/// Sends pre-encoded bytes as one gRPC Export call; the response body is ignored.
/// A gRPC message frame: compressed flag, big-endian length, the (compressed) message.
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut f = Vec::with_capacity(5 + message.len());
    f.push(1);
    f.extend_from_slice(&(message.len() as u32).to_be_bytes());
    f.extend_from_slice(message);
    Bytes::from(f)
}

/// gRPC unary calls over one HTTP/2 connection with pre-built, pre-compressed frames, so the
/// loader spends no CPU compressing (tonic compresses each message as it sends it).
struct GrpcFrames {
    sender: hyper::client::conn::http2::SendRequest<http_body_util::Full<Bytes>>,
    authority: String,
    encoding: &'static str,
}

impl GrpcFrames {
    async fn connect(uri: &str, c: Comp) -> Result<GrpcFrames, String> {
        let authority = uri.trim_start_matches("http://").to_string();
        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|_| "connect".to_string())?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .map_err(|_| "connect".to_string())?;
        tokio::spawn(conn);
        Ok(GrpcFrames {
            sender,
            authority,
            encoding: match c {
                Comp::Zstd => "zstd",
                _ => "gzip",
            },
        })
    }

    async fn send(&mut self, signal: Signal, frame: Bytes) -> Result<(), String> {
        use http_body_util::BodyExt;
        let req = http::Request::post(format!("http://{}{}", self.authority, signal.grpc_path()))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-encoding", self.encoding)
            .body(http_body_util::Full::new(frame))
            .map_err(|_| "request".to_string())?;
        self.sender
            .ready()
            .await
            .map_err(|_| "transport".to_string())?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|_| "transport".to_string())?;
        let head_status = resp.headers().get("grpc-status").cloned();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|_| "transport".to_string())?;
        let status =
            head_status.or_else(|| body.trailers().and_then(|t| t.get("grpc-status").cloned()));
        match status.as_ref().and_then(|v| v.to_str().ok()) {
            Some("0") => Ok(()),
            Some(code) => Err(format!("grpc {code}")),
            None => Err("grpc no status".into()),
        }
    }
}

async fn send_grpc(
    g: &mut tonic::client::Grpc<tonic::transport::Channel>,
    signal: Signal,
    body: Bytes,
) -> Result<(), String> {
    g.ready().await.map_err(|_| "connect".to_string())?;
    let path = http::uri::PathAndQuery::from_static(signal.grpc_path());
    g.unary(
        tonic::Request::new(body),
        path,
        otelgw::grpc::codec::raw_request::<()>(),
    )
    .await
    .map(|_| ())
    .map_err(|s| format!("grpc {:?}", s.code()))
}

fn ceiling(shape: Shape, duration: f64) {
    let signal = shape.signal.signal();
    let bodies: Vec<Bytes> = requests(&shape)
        .iter()
        .map(|r| r.encode_to_bytes())
        .collect();
    let start = Instant::now();
    let mut items = 0u64;
    let mut i = 0;
    while start.elapsed().as_secs_f64() < duration {
        if let Ok(t) = Telemetry::decode_proto(signal, &bodies[i % bodies.len()]) {
            items += t.item_count();
            std::hint::black_box(t.encode_to_bytes());
        }
        i += 1;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "codec ceiling ({}): {:.0} items/s on one thread (decode + encode)",
        signal.as_str(),
        items as f64 / s
    );
    println!(
        "RESULT {}",
        serde_json::json!({"label": "codec-ceiling", "signal": signal.as_str(), "items_per_s": items as f64 / s, "items_per_cpu_s": items as f64 / s})
    );
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Cmd::Ceiling { shape, duration } = &cli.cmd {
        ceiling(shape.clone(), *duration);
        return std::process::ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async move {
        match cli.cmd {
            Cmd::Run {
                target,
                shape,
                connections,
                duration,
                rate,
                compression,
                pid,
                sink,
                label,
            } => {
                run(
                    target,
                    shape,
                    connections,
                    duration,
                    rate,
                    compression,
                    pid,
                    sink,
                    label,
                )
                .await
            }
            Cmd::Sink { listen } => {
                let counts = Arc::new(sink::Counts::default());
                let l = tokio::net::TcpListener::bind(&listen)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(sink::serve(l, counts.clone()));
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    println!(
                        "sink: spans {} metric_points {} log_records {}",
                        counts.get(Signal::Traces),
                        counts.get(Signal::Metrics),
                        counts.get(Signal::Logs)
                    );
                }
            }
            Cmd::Ceiling { .. } => Ok(()),
        }
    });
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otelgw-loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
