//! Expected values come from the algorithm's definition (FNV-1a, the OTel spec's threshold
//! encoding) and from the Collector contrib processor's own test tables
//! (`processor/probabilisticsamplerprocessor/*_test.go`, `pkg/sampling`), never from this
//! code's output.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use proptest::prelude::*;

use super::threshold::{fnv1a_32, hash_seed_threshold, Randomness, SamplingError, Threshold};
use super::*;
use crate::testdata::Rng;

mod logs;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cfg(yaml: &str) -> ProbabilisticSamplerConfig {
    serde_norway::from_str(yaml).unwrap()
}

fn build_with(
    c: &ProbabilisticSamplerConfig,
    signal: Signal,
) -> (ProbabilisticSampler, Arc<Registry>) {
    let reg = Registry::new();
    let p = c.build("probabilistic_sampler", signal, &reg);
    (p, reg)
}

fn traces_sampler(yaml: &str) -> ProbabilisticSampler {
    build_with(&cfg(yaml), Signal::Traces).0
}

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn span(trace_id: &[u8], tracestate: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: hex("00000000fefefefe"),
        trace_state: tracestate.into(),
        attributes,
        ..Default::default()
    }
}

/// Runs one span through the sampler: its tracestate when kept.
fn run_span(p: &ProbabilisticSampler, mut s: Span) -> Option<String> {
    p.sample_span(&mut s).then_some(s.trace_state)
}

fn attr_map(attrs: &[KeyValue]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = attrs
        .iter()
        .map(|kv| {
            let val = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => format!("int:{i}"),
                Some(Value::DoubleValue(d)) => format!("double:{d}"),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), val)
        })
        .collect();
    v.sort();
    v
}

const DEFAULT_TID: &str = "fefefefefefefefefe80000000000000"; // randomness 0x80000000000000
const IMPROBABLE_TID: &str = "111111111111111111ffffffffffffff"; // sampled at every probability

// ---- the arithmetic ----

#[test]
fn thresholds_encode_as_the_spec_and_the_collector_write_them() {
    let th = |p: f64, prec: u32| Threshold::from_probability(p, prec).unwrap().tvalue();
    assert_eq!(th(1.0, 4), "0");
    assert_eq!(th(0.5, 4), "8");
    assert_eq!(th(0.25, 4), "c");
    // 99/100 = .fd70a3d70a3d70a3d…: rounded at 14, 4 (5 with the leading f) and 3 (4) digits
    assert_eq!(th(0.01, 14), "fd70a3d70a3d71");
    assert_eq!(th(0.01, 4), "fd70a");
    assert_eq!(th(0.01, 3), "fd71");
    assert_eq!(th(0.4, 3), "99a");
    assert_eq!(th(0.4, 6), "99999a");
    assert_eq!(th(0.4 * 0.5, 6), "cccccd");
    assert_eq!(th(f64::powi(2.0, -28), 14), "fffffff");
    // a probability near 1 gains precision for its leading zeros
    assert_eq!(th(f64::from(99.99992_f32) / 100.0, 10), "00000cccccccd");
    assert_eq!(Threshold::from_probability(0.0, 4), None);
    assert_eq!(Threshold::from_probability(1.5, 4), None);
    assert_eq!(Threshold::NEVER.tvalue(), "");
}

#[test]
fn tvalues_and_rvalues_parse_with_the_collectors_errors() {
    assert_eq!(
        Threshold::parse_tvalue("8").unwrap().unsigned(),
        0x80_0000_0000_0000
    );
    assert_eq!(
        Threshold::parse_tvalue("80000000000000").unwrap(),
        Threshold::parse_tvalue("8").unwrap()
    );
    assert_eq!(
        Threshold::parse_tvalue("abababababababab"),
        Err(SamplingError::TValueSize)
    );
    assert_eq!(Threshold::parse_tvalue("-1"), Err(SamplingError::Syntax));
    assert_eq!(Threshold::parse_tvalue(""), Err(SamplingError::TValueEmpty));
    assert_eq!(
        Randomness::parse_rvalue("FD70A3D70A3D71")
            .unwrap()
            .unsigned(),
        0xfd70a3d70a3d71
    );
    assert_eq!(
        Randomness::parse_rvalue("abababababababab"),
        Err(SamplingError::RValueSize)
    );
    let tid: [u8; 16] = hex(DEFAULT_TID).try_into().unwrap();
    assert_eq!(
        Randomness::from_trace_id(&tid).unsigned(),
        0x80_0000_0000_0000
    );
}

#[test]
fn fnv1a_matches_the_collectors_hash() {
    // TestEmptyHashFunction: seed 0 (four zero bytes), then nothing / 16 zero bytes
    assert_eq!(fnv1a_32(0, &[]) & 0x3fff, 0x3515);
    assert_eq!(fnv1a_32(0, &[0; 16]) & 0x3fff, 0x2455);
    // FNV-1a's published vectors, with the seed's bytes as the start of the input
    assert_eq!(fnv1a_32(u32::from_le_bytes(*b"foob"), b"ar"), 0xbf9c_f968);
    assert_eq!(fnv1a_32(u32::from_le_bytes(*b"foob"), b""), 0x3f50_76ef);
    assert_eq!(fnv1a_32(u32::from_le_bytes(*b"foob"), b"a"), 0x39aa_a18a);
}

#[test]
fn hash_seed_thresholds_are_14_bit_truncations() {
    // TestHashSeedTraceState: 14-bit rounding gives e668 for 10 % and aaac for a third
    for (pct, tv) in [
        (100.0, "0"),
        (75.0, "4"),
        (50.0, "8"),
        (25.0, "c"),
        (10.0, "e668"),
        (100.0_f32 / 3.0, "aaac"),
    ] {
        assert_eq!(hash_seed_threshold(pct).unwrap().tvalue(), tv, "{pct}");
    }
    assert_eq!(
        hash_seed_threshold(0.001),
        None,
        "under one bucket in 16384"
    );
}

// ---- hash_seed mode ----

#[test]
fn hash_seed_decisions_match_the_collectors_legacy_vectors() {
    // from TestHashingFunction (50 %, the legacy FNV decision), a subset
    let cases: &[(u32, &str, bool)] = &[
        (653, "474a03c76d75951a4b4c537ced8f1122", true),
        (563, "53a518291e91307e43cd8467bb06f986", true),
        (904, "4e40762d3ee97a1c0932e4fa584f89a8", false),
        (561, "2a8aa76c18d08e1e8be935541f9318c7", false),
        (757, "9e3d0f9481dc422cb613ea550897ae71", false),
        (172, "84a1ce7bcea3e66194e72b4aa2694e31", true),
        (790, "7629ecbea89398bfd9752a2f51c2c137", true),
        (147, "a8a5c3bb9205883fae17ead6675b2450", false),
        (666, "3ee60b013303bcfda06be89071b90bd1", true),
        (35, "855f493c5b5b1e2fcbc9993f8061eac8", false),
        (936, "62dda24e4be24f5198e4d8dd4010c811", true),
        (835, "6c77db08bbded7bdd5c99c6e2fea41d2", false),
        (400, "54156d7434a894ef07f2a80dbf0f1138", true),
        (871, "f6ea221283dcb42f89bfb15fa33398d2", false),
        (6, "d6a68b47c66d1f94eed46b8ddc72faf4", false),
        (965, "022315846d42a38322d6fd26250444b3", true),
        (16, "2533c732bed8c1ba4721c25a1205f06c", false),
        (460, "60c3b9a2dde734d71ba5cca7eb164bce", true),
    ];
    for (seed, tid, want) in cases {
        let p = traces_sampler(&format!("sampling_percentage: 50\nhash_seed: {seed}"));
        let got = run_span(&p, span(&hex(tid), "", vec![]));
        assert_eq!(got.is_some(), *want, "seed {seed} trace {tid}");
    }
}

#[test]
fn hash_seed_records_threshold_and_randomness_in_the_tracestate() {
    // TestHashSeedTraceState: every kept span has th for 25 % and an rv that passes it
    let p = traces_sampler("sampling_percentage: 25\nhash_seed: 4312");
    let mut rng = Rng::new(7);
    let mut kept = 0;
    while kept < 10 {
        let Some(ts) = run_span(&p, span(&rng.bytes(16), "", vec![])) else {
            continue;
        };
        kept += 1;
        let (rv, th) = ts
            .strip_prefix("ot=rv:")
            .and_then(|r| r.split_once(";th:"))
            .unwrap_or_else(|| panic!("{ts}"));
        assert_eq!(th, "c");
        assert!(Threshold::parse_tvalue(th)
            .unwrap()
            .should_sample(Randomness::parse_rvalue(rv).unwrap()));
    }
}

#[test]
fn hash_seed_keeps_other_vendors_and_refuses_spans_already_sampled_by_the_spec() {
    let p = traces_sampler("sampling_percentage: 100\nhash_seed: 1");
    let ts = run_span(
        &p,
        span(
            &hex(DEFAULT_TID),
            "rojo=00f067aa0ba902b7, congo=t61",
            vec![],
        ),
    )
    .unwrap();
    let (ot, rest) = ts.split_once(',').unwrap();
    assert!(ot.starts_with("ot=rv:") && ot.ends_with(";th:0"), "{ts}");
    assert_eq!(rest, "rojo=00f067aa0ba902b7,congo=t61");
    // an arriving rv or th is an error in this mode: dropped (fail_closed) or passed untouched
    for arriving in ["ot=rv:f2341234123412", "ot=th:8"] {
        assert_eq!(
            run_span(&p, span(&hex(IMPROBABLE_TID), arriving, vec![])),
            None
        );
        let open = traces_sampler("sampling_percentage: 100\nfail_closed: false");
        assert_eq!(
            run_span(&open, span(&hex(IMPROBABLE_TID), arriving, vec![])).as_deref(),
            Some(arriving)
        );
    }
}

#[test]
fn same_seed_same_decisions_across_instances_other_seed_differs() {
    let a = traces_sampler("sampling_percentage: 50\nhash_seed: 22");
    let b = traces_sampler("sampling_percentage: 50\nhash_seed: 22");
    let c = traces_sampler("sampling_percentage: 50\nhash_seed: 23");
    let mut rng = Rng::new(1);
    let (mut differ, mut kept) = (0, 0);
    for _ in 0..2000 {
        let id = rng.bytes(16);
        let x = run_span(&a, span(&id, "", vec![]));
        assert_eq!(
            x,
            run_span(&b, span(&id, "", vec![])),
            "same seed, same result"
        );
        kept += usize::from(x.is_some());
        differ += usize::from(x.is_some() != run_span(&c, span(&id, "", vec![])).is_some());
    }
    assert!((900..1100).contains(&kept), "{kept}");
    assert!(
        differ > 700,
        "seeds 22 and 23 agree too often: {differ} of 2000 differ"
    );
}

#[test]
fn spans_of_one_trace_share_the_decision_in_every_mode() {
    for mode in ["hash_seed", "proportional", "equalizing"] {
        let p = traces_sampler(&format!(
            "sampling_percentage: 30\nmode: {mode}\nhash_seed: 9"
        ));
        let mut rng = Rng::new(3);
        let mut req = ExportTraceServiceRequest::default();
        let ids: Vec<Vec<u8>> = (0..300).map(|_| rng.bytes(16)).collect();
        // three spans per trace, spread over two resources, with different attributes
        for r in 0..2 {
            let spans = ids
                .iter()
                .flat_map(|id| {
                    (0..3)
                        .filter(move |k| k % 2 == r)
                        .map(move |k| span(id, "", vec![kv("k", Value::IntValue(k))]))
                })
                .collect();
            req.resource_spans.push(ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        let mut t = Telemetry::Traces(req);
        p.process(&mut t, &RequestMeta::default(), &mut Rejections::default());
        let Telemetry::Traces(out) = t else { panic!() };
        let mut per_trace = std::collections::HashMap::<Vec<u8>, usize>::new();
        for rs in &out.resource_spans {
            for s in &rs.scope_spans[0].spans {
                *per_trace.entry(s.trace_id.clone()).or_default() += 1;
            }
        }
        assert!(
            per_trace.values().all(|n| *n == 3),
            "{mode}: a trace was split"
        );
        assert!(
            (50..130).contains(&per_trace.len()),
            "{mode}: {}",
            per_trace.len()
        );
    }
}

// ---- proportional and equalizing (the Collector's TraceState table) ----

/// The Collector's `Test_tracesamplerprocessor_TraceState` rows (its configs leave
/// `fail_closed` false and precision 0, which is 14): trace id (`-`: DEFAULT_TID), arriving
/// tracestate, percentage, precision, fail_closed, `sampling.priority`, then the tracestate a
/// kept span leaves with in `equalizing` and in `proportional` mode (`-`: dropped).
const TRACESTATE_TABLE: &str = "
- | - | 100 | 14 | false | - | ot=th:0 | ot=th:0
- | - | 50 | 14 | false | - | ot=th:8 | ot=th:8
ddddddddddddddddddc0000000000000 | - | 25 | 14 | false | - | ot=th:c | ot=th:c
ddddddddddddddddddb0000000000000 | - | 25 | 14 | false | - | - | -
- | ot=rv:FD70A3D70A3D71 | 1 | 14 | false | - | ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71 | ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71
- | ot=rv:FD70A3D70A3D71 | 1 | 4 | false | - | ot=rv:FD70A3D70A3D71;th:fd70a | ot=rv:FD70A3D70A3D71;th:fd70a
- | ot=rv:FD70A3D70A3D71 | 1 | 3 | false | - | - | -
- | ot=rv:FD70A3D70A3D70 | 1 | 14 | false | - | - | -
- | - | 49 | 14 | false | - | - | -
- | ot=rv:fd70B000000000 | 1 | 14 | false | - | ot=rv:fd70B000000000;th:fd70a3d70a3d71 | ot=rv:fd70B000000000;th:fd70a3d70a3d71
a0a0a0a0a0a0a0a0a0fe000000000000 | - | 1 | 4 | false | - | ot=th:fd70a | ot=th:fd70a
- | - | 1 | 14 | false | 2 | ot=th:0 | ot=th:0
- | - | 99 | 14 | false | 0 | - | -
- | ot=rv:90000000000000;th:80000000000000 | 50 | 14 | false | - | ot=rv:90000000000000;th:8 | -
- | ot=th:8 | 25 | 14 | false | - | - | -
ffffffffffffffffffffffffffffffff | ot=th:8 | 25 | 14 | false | - | ot=th:c | ot=th:e
- | ot=rv:c0000000000000;th:8 | 50 | 14 | false | - | ot=rv:c0000000000000;th:8 | ot=rv:c0000000000000;th:c
- | ot=rv:40000000000000;th:8 | 100 | 14 | false | - | ot=rv:40000000000000;th:0 | ot=rv:40000000000000;th:0
- | ot=rv:40000000000000;th:8 | 1 | 14 | true | - | - | -
- | ot=rv:a0000000000000 | 40 | 3 | false | - | ot=rv:a0000000000000;th:99a | ot=rv:a0000000000000;th:99a
a0a0a0a0a0a0a0a0a0d0000000000000 | ot=th:8 | 40 | 6 | false | - | ot=th:99999a | ot=th:cccccd
a0a0a0a0a0a0a0a0a0b0000000000000 | ot=th:8 | 40 | 3 | false | - | ot=th:99a | -
a0a0a0a0a0a0a0a0a080000000000000 | ot=th:8 | 40 | 3 | false | - | - | -
- | - | 200 | 14 | false | - | ot=th:0 | ot=th:0
111111111111111111ffffffffffffff | ot=th:fffc | 0.006103515625 | 14 | false | - | ot=th:fffc | ot=th:fffffff
111111111111111111ffffffffffffff | - | 99.99992 | 10 | false | - | ot=th:00000cccccccd | ot=th:00000cccccccd
111111111111111111ffffffffffffff | ot=th:fffffffffffff8 | 0.0625 | 14 | false | - | ot=th:fffffffffffff8 | -
";

#[test]
fn consistent_modes_match_the_collectors_tracestate_table() {
    // what the rows exercise: upper-case rv passes through while th is written in lower case;
    // precision 3 rounds 1 % up to fd71 (not sampled); an arriving th loses its trailing zeros;
    // 50 % of an arriving 50 % is 25 % (proportional); an arriving th the randomness would not
    // pass is dropped (fail open: sampled anew); a probability under 2^-56 is unsampled
    let dash = |s: &str| (s != "-").then(|| s.to_string());
    for (i, line) in TRACESTATE_TABLE
        .lines()
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let [tid, ts, pct, prec, closed, prio, eq, prop] = f[..] else {
            panic!("row {i}: {line}")
        };
        let tid = dash(tid).unwrap_or_else(|| DEFAULT_TID.into());
        let ts = dash(ts).unwrap_or_default();
        let attrs = dash(prio)
            .map(|p| vec![kv("sampling.priority", Value::IntValue(p.parse().unwrap()))])
            .unwrap_or_default();
        for (mode, want) in [("equalizing", dash(eq)), ("proportional", dash(prop))] {
            let p = traces_sampler(&format!(
                "sampling_percentage: {pct}\nmode: {mode}\nsampling_precision: {prec}\n\
                 fail_closed: {closed}\nhash_seed: 4312"
            ));
            let got = run_span(&p, span(&hex(&tid), &ts, attrs.clone()));
            assert_eq!(got, want, "row {i} ({mode}): {line}");
        }
    }
}

#[test]
fn broken_or_inconsistent_sampling_information_fails_closed() {
    // TestTraceStateErrors, both consistent modes, fail_closed
    let rows = [
        ("00000000000000000000000000000000", ""),
        (DEFAULT_TID, "ot=rv:abababababababab"),
        (DEFAULT_TID, "ot=th:abababababababab"),
        (DEFAULT_TID, "ot=th:-1"),
        ("ffffffffffffffffff70000000000000", "ot=th:8"),
        (DEFAULT_TID, "ot=th:8;rv:70000000000000"),
        (DEFAULT_TID, "not a tracestate"),
    ];
    for mode in ["equalizing", "proportional", "hash_seed"] {
        let (p, reg) = build_with(
            &cfg(&format!("sampling_percentage: 100\nmode: {mode}")),
            Signal::Traces,
        );
        for (tid, ts) in rows {
            assert_eq!(
                run_span(&p, span(&hex(tid), ts, vec![])),
                None,
                "{mode} {ts:?}"
            );
        }
        let dropped = Policy::ALL
            .iter()
            .map(|pol| {
                let label = pol.label("");
                reg.value(
                    names::PROCESSOR_PROBABILISTIC_SAMPLER_COUNT_TRACES_SAMPLED,
                    &[
                        ("processor", "probabilistic_sampler"),
                        ("policy", label),
                        ("sampled", "false"),
                    ],
                )
                .unwrap_or(0)
            })
            .sum::<i128>();
        assert_eq!(dropped, rows.len() as i128, "{mode}: every drop counted");
    }
}

#[test]
fn missing_randomness_follows_fail_closed() {
    // Test_tracessamplerprocessor_MissingRandomness
    for (pct, closed, sampled) in [
        (0, true, false),
        (62, true, false),
        (100, true, false),
        (0, false, false),
        (62, false, true),
        (100, false, true),
    ] {
        for mode in ["hash_seed", "proportional", "equalizing"] {
            let p = traces_sampler(&format!(
                "sampling_percentage: {pct}\nfail_closed: {closed}\nmode: {mode}\nhash_seed: 4312"
            ));
            let got = run_span(&p, span(&[0; 16], "", vec![]));
            assert_eq!(got.is_some(), sampled, "{pct}% closed={closed} {mode}");
        }
    }
}

#[test]
fn span_sampling_priority_forces_the_decision() {
    // Test_tracesamplerprocessor_SpanSamplingPriority: the trace id's randomness is 0
    let tid = hex("01000000000000000000000000000000");
    let rows = [
        (0.0, "sampling.priority", Value::IntValue(2), true),
        (0.0, "sampling.priority", Value::DoubleValue(1.0), true),
        (
            0.0,
            "sampling.priority",
            Value::StringValue("1".into()),
            true,
        ),
        (100.0, "sampling.priority", Value::IntValue(0), false),
        (100.0, "sampling.priority", Value::DoubleValue(0.0), false),
        (
            100.0,
            "sampling.priority",
            Value::StringValue("0".into()),
            false,
        ),
        (0.0, "no.sampling.priority", Value::IntValue(2), false),
        (100.0, "no.sampling.priority", Value::IntValue(2), true),
        (100.0, "sampling.priority", Value::IntValue(-1), true),
        (
            100.0,
            "sampling.priority",
            Value::StringValue("NaN".into()),
            true,
        ),
    ];
    for mode in ["hash_seed", "proportional", "equalizing"] {
        for (pct, key, v, want) in &rows {
            let p = traces_sampler(&format!(
                "sampling_percentage: {pct}\nmode: {mode}\nhash_seed: 4312"
            ));
            let got = run_span(&p, span(&tid, "", vec![kv(key, v.clone())]));
            assert_eq!(got.is_some(), *want, "{mode} {pct}% {key}={v:?}");
        }
    }
}

#[test]
fn a_consistently_sampled_span_is_kept_by_every_larger_percentage() {
    let mut rng = Rng::new(11);
    let pcts = [1.0, 10.0, 25.0, 50.0, 90.0];
    let samplers: Vec<_> = pcts
        .iter()
        .map(|p| traces_sampler(&format!("sampling_percentage: {p}\nmode: proportional")))
        .collect();
    for _ in 0..2000 {
        let id = rng.bytes(16);
        let kept: Vec<bool> = samplers
            .iter()
            .map(|s| run_span(s, span(&id, "", vec![])).is_some())
            .collect();
        assert!(kept.windows(2).all(|w| !w[0] || w[1]), "{kept:?}");
    }
}

// ---- the fraction kept ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn kept_fraction_is_close_to_the_percentage(pct in 1.0f32..99.0, seed in any::<u64>(), mode in 0usize..3) {
        let mode = ["hash_seed", "proportional", "equalizing"][mode];
        let p = traces_sampler(&format!("sampling_percentage: {pct}\nmode: {mode}\nhash_seed: {}", seed as u32));
        let mut rng = Rng::new(seed);
        let n = 20_000;
        let kept = (0..n).filter(|_| run_span(&p, span(&rng.bytes(16), "", vec![])).is_some()).count();
        let want = f64::from(pct) / 100.0;
        let got = kept as f64 / n as f64;
        // 5 standard deviations, plus the precision of the threshold (4 hex digits or 14 bits)
        let tolerance = 5.0 * (want * (1.0 - want) / n as f64).sqrt() + 1.0 / 16384.0;
        prop_assert!((got - want).abs() <= tolerance, "{mode} {pct}%: kept {got}");
    }
}

// ---- the processor in a pipeline ----

#[test]
fn decisions_are_counted_by_policy_and_outcome() {
    let (p, reg) = build_with(
        &cfg("sampling_percentage: 50\nmode: proportional"),
        Signal::Traces,
    );
    let mut t = Telemetry::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(&hex(IMPROBABLE_TID), "", vec![]),
                    span(&hex("0000000000000000000000000000000f"), "", vec![]),
                    span(&hex(DEFAULT_TID), "ot=rv:ffffffffffffff", vec![]),
                    span(&[0; 16], "", vec![]),
                    span(
                        &hex(DEFAULT_TID),
                        "",
                        vec![kv("sampling.priority", Value::IntValue(0))],
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let mut rej = Rejections::default();
    p.process(&mut t, &RequestMeta::default(), &mut rej);
    assert_eq!(t.item_count(), 2);
    assert_eq!(rej, Rejections::default(), "sampling is not a rejection");
    let count = |policy: &str, sampled: &str| {
        reg.value(
            names::PROCESSOR_PROBABILISTIC_SAMPLER_COUNT_TRACES_SAMPLED,
            &[
                ("processor", "probabilistic_sampler"),
                ("policy", policy),
                ("sampled", sampled),
            ],
        )
    };
    assert_eq!(count("trace_id_w3c", "true"), Some(1));
    assert_eq!(count("trace_id_w3c", "false"), Some(1));
    assert_eq!(count("sampling_randomness", "true"), Some(1));
    assert_eq!(count("missing_randomness", "false"), Some(1));
    assert_eq!(count("sampling_priority", "false"), Some(1));
    assert_eq!(
        count("trace_id_hash", "true"),
        None,
        "not a policy of this mode"
    );
}

// ---- config ----

#[test]
fn defaults_are_the_collectors() {
    let c = ProbabilisticSamplerConfig::default();
    assert_eq!(c.mode, SamplerMode::HashSeed);
    assert!(c.fail_closed);
    assert_eq!(c.sampling_precision, 4);
    assert_eq!(c.attribute_source, AttributeSource::TraceId);
    let parsed = cfg("sampling_percentage: 15.3\nattribute_source: record\nfrom_attribute: logID\nmode: equalizing");
    assert_eq!(parsed.sampling_percentage, 15.3_f32);
    assert_eq!(parsed.attribute_source, AttributeSource::Record);
    assert_eq!(parsed.mode, SamplerMode::Equalizing);
    // print-config shows the percentage as written, not the f32's binary expansion
    let printed = serde_norway::to_string(&parsed).unwrap();
    assert!(
        printed.starts_with("sampling_percentage: 15.3\n"),
        "{printed}"
    );
    assert_eq!(cfg(&printed).sampling_percentage, 15.3_f32);
    for bad in [
        "mode: random",
        "attribute_source: traceid",
        "sampling_rate: 5",
    ] {
        assert!(
            serde_norway::from_str::<ProbabilisticSamplerConfig>(bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn validation_reports_each_problem_at_its_path() {
    let check = |yaml: &str| {
        let mut d = Diagnostics::default();
        cfg(yaml).validate("processors.probabilistic_sampler", &mut d);
        (
            d.errors.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            d.warnings.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        )
    };
    let (e, w) = check("sampling_percentage: 15.3\nhash_seed: 22");
    assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
    let (e, _) = check("sampling_percentage: -1");
    assert_eq!(
        e,
        ["processors.probabilistic_sampler.sampling_percentage: must not be negative (got -1)"]
    );
    let (e, _) = check("sampling_percentage: .nan");
    assert_eq!(e.len(), 1, "{e:?}");
    let (e, _) = check("sampling_percentage: 1e-20");
    assert!(e[0].contains("too small"), "{e:?}");
    for prec in [0, 15] {
        let (e, _) = check(&format!(
            "sampling_percentage: 5\nsampling_precision: {prec}"
        ));
        assert_eq!(e, [format!("processors.probabilistic_sampler.sampling_precision: must be between 1 and 14 (got {prec})")]);
    }
    let (_, w) = check("sampling_percentage: 0");
    assert!(w[0].contains("drops every item"), "{w:?}");
    let (_, w) = check("sampling_percentage: 5\nattribute_source: record");
    assert!(
        w[0].starts_with("processors.probabilistic_sampler.from_attribute:"),
        "{w:?}"
    );
    let (e, w) =
        check("sampling_percentage: 5\nmode: proportional\nhash_seed: 3\nfrom_attribute: id");
    assert!(e.is_empty());
    assert_eq!(w.len(), 2, "{w:?}");
    // more than 100 is 100 %, as in the Collector
    assert!(check("sampling_percentage: 200").0.is_empty());
}
