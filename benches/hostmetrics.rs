//! `hostmetrics`: one collection of each scraper on this machine's real `/proc` and `/sys`
//! (default metrics), and all of them together — the CPU a collection costs.
//!
//! `cargo bench --bench hostmetrics`

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use otelgw::receivers::hostmetrics::run::boot_ns;
use otelgw::receivers::hostmetrics::scrapers::{
    cpu, disk, filesystem, load, memory, network, paging, process, processes, system, Ctx,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn scrapers(c: &mut Criterion) {
    let root = Path::new("/");
    let ctx = Ctx {
        root,
        now_ns: 1,
        boot_ns: boot_ns(root),
    };
    let mut g = c.benchmark_group("hostmetrics");
    g.measurement_time(Duration::from_secs(3));
    macro_rules! one {
        ($($m:ident),*) => {$(
            let mut s = $m::Scraper::new(&$m::Config::default()).unwrap();
            g.bench_function(stringify!($m), |b| b.iter(|| s.scrape(&ctx).map(|o| o.len())));
        )*};
    }
    one!(cpu, memory, load, disk, filesystem, network, paging, processes, system, process);
    g.finish();
}

criterion_group!(benches, scrapers);
criterion_main!(benches);
