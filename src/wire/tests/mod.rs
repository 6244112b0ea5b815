//! `scan` against prost: the oracle is `Telemetry::decode_proto` + `item_count` +
//! `drop_invalid_ids`.
//!
//! [`tree`] is a schema-free protobuf tree with random and mutated inputs, [`requests`] builds
//! valid requests with every field in play, [`properties`] runs the randomized comparisons,
//! [`targeted`] the hand-made cases.

mod properties;
mod requests;
mod targeted;
mod tree;

use super::*;
use crate::data::Telemetry;
use crate::processors::Rejections;
use crate::receivers::intake::drop_invalid_ids;

// ---- the oracle ----

fn oracle(sig: Signal, b: &[u8]) -> Option<Scan> {
    let mut t = Telemetry::decode_proto(sig, b).ok()?;
    let items = t.item_count();
    let mut r = Rejections::default();
    drop_invalid_ids(&mut t, &mut r);
    Some(Scan {
        items,
        bad_ids: r.count,
    })
}

/// Asserts `scan` agrees with prost; returns whether prost accepted.
fn check(sig: Signal, b: &[u8]) -> bool {
    let got = scan(sig, b);
    let want = oracle(sig, b);
    match (&got, &want) {
        (Ok(g), Some(w)) => assert_eq!(g, w, "{sig}: counts differ for {}", hex(b)),
        (Err(_), None) => {}
        _ => panic!("{sig}: scan {got:?} but prost {want:?} for {}", hex(b)),
    }
    want.is_some()
}

fn hex(b: &[u8]) -> String {
    if b.len() > 4096 {
        return format!("<{} bytes>", b.len());
    }
    crate::data::hex(b)
}

fn encode(t: &Telemetry) -> Vec<u8> {
    t.encode_to_bytes().to_vec()
}
