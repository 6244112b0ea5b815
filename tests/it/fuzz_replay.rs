//! The fuzz targets (`tests/fuzz/targets/`) in plain `cargo test`, so CI always runs them:
//! for each target, every file of its corpus (`tests/fuzz/corpus/<target>/`: seeds and the
//! inputs of crashes found so far), then a bounded proptest run of random inputs and of
//! mutations of the corpus (256 cases, a fixed seed so a run is reproducible).
//!
//! `write_seed_corpus` (ignored) writes the generated seeds; README.md in tests/fuzz says when.

#[path = "../fuzz/targets/mod.rs"]
mod targets;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn target(name: &str) -> targets::Target {
    targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no target {name}"))
        .1
}

/// Runs `f` on every corpus file, collecting the files that panic (each is named).
fn replay(name: &str) {
    let f = target(name);
    let files = corpus(name);
    assert!(
        files.len() >= 3,
        "{name}: the seed corpus has {} files",
        files.len()
    );
    let failed: Vec<&str> = files
        .iter()
        .filter(|(_, data)| std::panic::catch_unwind(|| f(data)).is_err())
        .map(|(file, _)| file.as_str())
        .collect();
    assert!(failed.is_empty(), "{name}: panicked on {failed:?}");
}

/// One mutation of a corpus input, as libFuzzer makes them.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
    /// Splice another corpus file in at a position.
    Splice(usize, prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Edit::Flip(i, x)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1..16usize).prop_map(|(i, n)| Edit::Remove(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<prop::sample::Index>()).prop_map(|(i, f)| Edit::Splice(i, f)),
    ]
}

fn mutate(mut data: Vec<u8>, edits: &[Edit], corpus: &[(String, Vec<u8>)]) -> Vec<u8> {
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match e {
            Edit::Flip(i, x) if !data.is_empty() => {
                let i = i % data.len();
                data[i] ^= x;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, b) => {
                let i = at(*i, data.len());
                data.splice(i..i, b.iter().copied());
            }
            Edit::Remove(i, n) => {
                let i = at(*i, data.len());
                let end = (i + n).min(data.len());
                data.drain(i..end);
            }
            Edit::Truncate(n) => data.truncate(at(*n, data.len())),
            Edit::Splice(i, f) => {
                let other = &corpus[f.index(corpus.len())].1;
                let i = at(*i, data.len());
                data.splice(i..i, other.iter().copied().take(256));
            }
        }
    }
    data
}

/// 256 cases: a third random bytes, the rest corpus files with 1–6 mutations. Fixed seed.
fn random_and_mutated(name: &str) {
    let f = target(name);
    let files = corpus(name);
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[15; 32]);
    let input = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        2 => (any::<prop::sample::Index>(), prop::collection::vec(edit(), 1..6))
            .prop_map(move |(i, edits)| {
                let base = files[i.index(files.len())].1.clone();
                mutate(base, &edits, &files)
            }),
    ];
    TestRunner::new_with_rng(config, rng)
        .run(&input, |data| {
            f(&data);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

macro_rules! fuzz_targets {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn corpus_replays() {
                super::replay(stringify!($name));
            }

            #[test]
            fn random_and_mutated_inputs() {
                super::random_and_mutated(stringify!($name));
            }
        }
    )*};
}

fuzz_targets!(
    wire_scan,
    json_decode,
    decompress,
    config_load,
    resource_edit,
    loki_labels,
    prometheus_names,
    item_edit,
    ottl_compile,
    prometheus_exposition,
    prometheus_relabel,
);

#[test]
fn every_target_is_replayed_and_has_a_libfuzzer_binary() {
    let replayed = [
        "wire_scan",
        "json_decode",
        "decompress",
        "config_load",
        "resource_edit",
        "loki_labels",
        "prometheus_names",
        "item_edit",
        "ottl_compile",
        "prometheus_exposition",
        "prometheus_relabel",
    ];
    let names: Vec<&str> = targets::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, replayed);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for n in names {
        assert!(
            root.join(format!("fuzz_targets/{n}.rs")).is_file(),
            "fuzz_targets/{n}.rs"
        );
        assert!(
            manifest.contains(&format!("name = \"{n}\"")),
            "{n} in Cargo.toml"
        );
        assert!(corpus_dir(n).is_dir(), "corpus/{n}");
    }
}

#[test]
fn the_oracles_follow_the_rules() {
    use otelgw::exporters::prometheus::render::Format;
    use targets::{check_exposition_line, is_label_name, is_metric_name};
    for ok in ["a", "_", "A_9", "__name__"] {
        assert!(is_label_name(ok) && is_metric_name(ok), "{ok}");
    }
    for bad in ["", "9a", "a-b", "a.b", "é", "a b"] {
        assert!(!is_label_name(bad) && !is_metric_name(bad), "{bad}");
    }
    assert!(is_metric_name("a:b") && is_metric_name(":a") && !is_label_name("a:b"));
    let ok = [
        "# HELP http_requests_total Requests.",
        "# TYPE http_requests_total counter",
        r#"http_requests_total{code="200",path="/a\"b\\c\nd"} 3 1700000000000"#,
        "up 1",
    ];
    for l in ok {
        assert_eq!(check_exposition_line(l, Format::Text), Ok(()), "{l}");
    }
    assert_eq!(
        check_exposition_line(
            r#"h_bucket{le="1"} 1 # {trace_id="ab"} 1 1700000000.000"#,
            Format::OpenMetrics
        ),
        Ok(())
    );
    assert_eq!(check_exposition_line("# EOF", Format::OpenMetrics), Ok(()));
    for bad in [
        "# EOF",
        "# UNIT x seconds",
        "9up 1",
        "up",
        r#"up{a.b="1"} 1"#,
        r#"up{a="1} 1"#,
        r#"up{a="\x"} 1"#,
        "up 1 2 3",
        "free text in a help string",
    ] {
        assert!(check_exposition_line(bad, Format::Text).is_err(), "{bad}");
    }
}

// ---- the seed corpus ----

/// Writes the generated seeds into tests/fuzz/corpus/ (hand-made tricky inputs and real
/// encodings of otelgw's test data). Run after changing the generators:
/// `cargo test --test it fuzz_replay::write_seed_corpus -- --ignored`.
#[test]
#[ignore]
fn write_seed_corpus() {
    for (target, files) in seeds::all() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in files {
            std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
        }
    }
}

mod seeds;
