//! Heap allocations per sample on the Prometheus-native paths (the stages of
//! `benches/prometheus_native.rs`), counted by dhat's allocator; prints one line per stage.
//!
//! `cargo bench --bench prometheus_native_allocs` (`-- --write-page FILE` writes the page and
//! exits: `benches/prometheus_scrape.sh` serves it).

#[path = "prometheus_native/page.rs"]
mod page;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn count<T>(what: &str, per: usize, f: impl FnOnce() -> T) -> T {
    let before = dhat::HeapStats::get();
    let out = f();
    let after = dhat::HeapStats::get();
    let blocks = after.total_blocks - before.total_blocks;
    let bytes = after.total_bytes - before.total_bytes;
    eprintln!(
        "{what:<32} {:>8.2} allocations/sample {:>8.1} bytes/sample  ({per} samples)",
        blocks as f64 / per as f64,
        bytes as f64 / per as f64
    );
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write-page") {
        let Some(path) = args.get(i + 1) else {
            eprintln!("--write-page needs a file");
            std::process::exit(2);
        };
        if let Err(e) = std::fs::write(path, page::page()) {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
        return;
    }
    let _profiler = dhat::Profiler::builder().testing().build();
    let text = page::page();
    let fx = page::Fixture::new();
    let (_, n) = fx.samples(&text);
    count("parse", n, || page::parse(&text).len());
    let (samples, _) = count("parse_and_shape", n, || fx.samples(&text));
    let mut state = page::state();
    let (first, warm) = (samples.clone(), samples);
    let rm = count("translate (first scrape)", n, || {
        page::translate(&mut state, first)
    });
    let _ = count("translate (warm)", n, || page::translate(&mut state, warm));
    let rw = page::RemoteWrite::new();
    let _ = rw.points(&rm);
    let points = count("remote write: store → series", n, || rw.points(&rm));
    count("remote write: cut, encode, snappy", n, || {
        page::encode(points)
    });
}
