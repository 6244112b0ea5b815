//! Randomized comparisons with prost: mutated valid requests, random field soups and random
//! bytes; and valid requests count as otelgw counts.

use super::requests::*;
use super::tree::*;
use super::*;
use crate::data::Telemetry;
use crate::testdata::{self, Rng};
use proptest::prelude::*;

/// How the checks of some mutation cases went.
#[derive(Default, Debug)]
struct Mix {
    accepted: u64,
    rejected: u64,
    with_bad_ids: u64,
}

impl Mix {
    fn check(&mut self, sig: Signal, b: &[u8]) {
        if check(sig, b) {
            self.accepted += 1;
            if scan(sig, b).is_ok_and(|s| s.bad_ids > 0) {
                self.with_bad_ids += 1;
            }
        } else {
            self.rejected += 1;
        }
    }
}

/// Mutates a valid request of `sig` a few times (structure, then bytes) and checks every step.
fn mutation_case(sig: Signal, seed: u64, mix: &mut Mix) {
    let mut rng = Rng::new(seed);
    let b = base(sig, seed);
    assert!(check(sig, &b));
    let Some(mut tree) = parse(&b, 12) else {
        panic!("valid request does not parse: {}", hex(&b))
    };
    for _ in 0..1 + rng.below(4) {
        let donor = pick_field(&tree, &mut rng);
        mutate_tree(&mut tree, &mut rng, &donor);
        mix.check(sig, &enc(&tree));
    }
    let mut b = enc(&tree);
    for _ in 0..rng.below(3) {
        mutate_bytes(&mut b, &mut rng);
        mix.check(sig, &b);
    }
}

/// The mutations are worth something only if they produce both outcomes, and counts to compare.
#[test]
fn mutations_give_a_mix_of_outcomes() {
    for sig in Signal::ALL {
        let mut mix = Mix::default();
        for seed in 0..1500 {
            mutation_case(sig, seed, &mut mix);
        }
        let total = mix.accepted + mix.rejected;
        assert!(
            mix.accepted * 5 > total && mix.rejected * 5 > total,
            "{sig}: {mix:?}"
        );
        if sig != Signal::Metrics {
            assert!(mix.with_bad_ids * 20 > mix.accepted, "{sig}: {mix:?}");
        }
    }
}

fn signal(i: u8) -> Signal {
    Signal::ALL[usize::from(i % 3)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated valid requests of every signal.
    #[test]
    fn agrees_with_prost_on_mutations(seed in any::<u64>(), sig in any::<u8>()) {
        mutation_case(signal(sig), seed, &mut Mix::default());
    }

    /// Random fields, often of the tags and wire types the schemas use, nested.
    #[test]
    fn agrees_with_prost_on_random_fields(seed in any::<u64>(), sig in any::<u8>()) {
        let mut rng = Rng::new(seed);
        let sig = signal(sig);
        let fields = rand_fields(&mut rng, 4);
        // usually wrapped in a valid-looking envelope, so the deeper schemas get reached
        let b = match rng.below(3) {
            0 => enc(&fields),
            1 => enc(&[f(1, V::Msg(vec![f(2, V::Msg(vec![f(2, V::Msg(fields))]))]))]),
            _ => enc(&[f(1, V::Msg(vec![f(1, V::Msg(fields))]))]),
        };
        check(sig, &b);
    }

    /// Random bytes.
    #[test]
    fn agrees_with_prost_on_random_bytes(
        b in prop::collection::vec(any::<u8>(), 0..64),
        sig in any::<u8>(),
    ) {
        check(signal(sig), &b);
    }
}

// ---- valid requests ----

#[test]
fn valid_requests_count_like_otelgw() {
    for seed in 0..12u64 {
        for (resources, n) in [(1, 0), (1, 1), (2, 5), (3, 17), (1, 200)] {
            let t = Telemetry::Traces(testdata::traces(seed, resources, n));
            let s = scan(Signal::Traces, &encode(&t));
            assert_eq!(
                s,
                Ok(Scan {
                    items: t.item_count(),
                    bad_ids: 0
                })
            );
            let t = Telemetry::Logs(testdata::logs(seed, resources, n));
            let s = scan(Signal::Logs, &encode(&t));
            assert_eq!(
                s,
                Ok(Scan {
                    items: t.item_count(),
                    bad_ids: 0
                })
            );
            let t = Telemetry::Metrics(testdata::metrics(seed, resources, n.min(40)));
            let s = scan(Signal::Metrics, &encode(&t));
            assert_eq!(
                s,
                Ok(Scan {
                    items: t.item_count(),
                    bad_ids: 0
                })
            );
        }
        for sig in Signal::ALL {
            for s in [seed, seed + 100, seed + 200] {
                assert!(check(sig, &base(sig, s)));
            }
        }
    }
    assert_eq!(scan(Signal::Traces, &[]), Ok(Scan::default()));
}
