//! A generic protobuf tree, independent of the schema under test: encoding, schema-free
//! parsing, random fields, and structural and byte-level mutations.

use crate::testdata::Rng;

// ---- a generic protobuf tree, independent of the schema under test ----

#[derive(Clone, Debug)]
pub(super) enum V {
    Varint(u64),
    F64(u64),
    F32(u32),
    Len(Vec<u8>),
    Msg(Vec<F>),
    Group(Vec<F>),
}

#[derive(Clone, Debug)]
pub(super) struct F {
    pub(super) tag: u32,
    pub(super) v: V,
}

pub(super) fn f(tag: u32, v: V) -> F {
    F { tag, v }
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&x, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(x & 0x7f) << (7 * i);
        if x < 0x80 {
            return Some(v);
        }
    }
    None
}

pub(super) fn put_key(out: &mut Vec<u8>, tag: u32, wt: u32) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wt));
}

pub(super) fn enc_fields(fields: &[F], out: &mut Vec<u8>) {
    for x in fields {
        match &x.v {
            V::Varint(v) => {
                put_key(out, x.tag, 0);
                put_varint(out, *v);
            }
            V::F64(v) => {
                put_key(out, x.tag, 1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            V::F32(v) => {
                put_key(out, x.tag, 5);
                out.extend_from_slice(&v.to_le_bytes());
            }
            V::Len(b) => {
                put_key(out, x.tag, 2);
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
            V::Msg(fs) => {
                let inner = enc(fs);
                put_key(out, x.tag, 2);
                put_varint(out, inner.len() as u64);
                out.extend_from_slice(&inner);
            }
            V::Group(fs) => {
                put_key(out, x.tag, 3);
                enc_fields(fs, out);
                put_key(out, x.tag, 4);
            }
        }
    }
}

pub(super) fn enc(fields: &[F]) -> Vec<u8> {
    let mut out = vec![];
    enc_fields(fields, &mut out);
    out
}

/// Parses a message without a schema: a length-delimited payload that parses as fields is taken
/// for a message (strings and ids sometimes are; that only makes mutations more varied).
pub(super) fn parse(mut b: &[u8], depth: u32) -> Option<Vec<F>> {
    let mut out = vec![];
    while !b.is_empty() {
        let k = get_varint(&mut b)?;
        let (tag, wt) = ((k >> 3) as u32, (k & 7) as u32);
        if tag == 0 || k > u64::from(u32::MAX) {
            return None;
        }
        let v = match wt {
            0 => V::Varint(get_varint(&mut b)?),
            1 => {
                let (h, t) = b.split_at_checked(8)?;
                b = t;
                V::F64(u64::from_le_bytes(h.try_into().ok()?))
            }
            5 => {
                let (h, t) = b.split_at_checked(4)?;
                b = t;
                V::F32(u32::from_le_bytes(h.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(get_varint(&mut b)?).ok()?;
                let (h, t) = b.split_at_checked(len)?;
                b = t;
                match (depth > 0 && !h.is_empty()).then(|| parse(h, depth - 1)) {
                    Some(Some(fs)) => V::Msg(fs),
                    _ => V::Len(h.to_vec()),
                }
            }
            _ => return None,
        };
        out.push(f(tag, v));
    }
    Some(out)
}

// ---- random inputs ----

pub(super) fn rand_tag(rng: &mut Rng) -> u32 {
    match rng.below(10) {
        0..=6 => 1 + rng.below(17) as u32,
        7 | 8 => 1 + rng.below(100) as u32,
        _ => 1 + rng.below((1 << 29) - 1) as u32,
    }
}

pub(super) fn rand_u64(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.below(2),
        1 => rng.below(300),
        2 => rng.below(1 << 35),
        _ => rng.next_u64(),
    }
}

pub(super) fn rand_bytes(rng: &mut Rng) -> Vec<u8> {
    let n = match rng.below(4) {
        0 => [0, 1, 7, 8, 9, 15, 16, 17][rng.below(8) as usize],
        1 => rng.below(40) as usize,
        _ => rng.below(12) as usize,
    };
    match rng.below(4) {
        0 => vec![0; n],
        1 => "héllo wörld ✓ abc"
            .bytes()
            .cycle()
            .take(n)
            .collect::<Vec<u8>>(),
        _ => {
            let mut v = rng.bytes(n.max(1));
            v.truncate(n);
            v
        }
    }
}

pub(super) fn rand_field(rng: &mut Rng, depth: u32) -> F {
    let tag = rand_tag(rng);
    let v = match rng.below(if depth > 0 { 7 } else { 4 }) {
        0 => V::Varint(rand_u64(rng)),
        1 => V::F64(rng.next_u64()),
        2 => V::F32(rng.next_u64() as u32),
        3 => V::Len(rand_bytes(rng)),
        4 | 5 => V::Msg(rand_fields(rng, depth - 1)),
        _ => V::Group(rand_fields(rng, depth - 1)),
    };
    f(tag, v)
}

pub(super) fn rand_fields(rng: &mut Rng, depth: u32) -> Vec<F> {
    let n = rng.below(5);
    (0..n).map(|_| rand_field(rng, depth)).collect()
}

pub(super) fn pick_field(fields: &[F], rng: &mut Rng) -> Option<F> {
    if fields.is_empty() {
        return None;
    }
    let x = &fields[rng.below(fields.len() as u64) as usize];
    if let V::Msg(fs) = &x.v {
        if rng.below(3) != 0 {
            if let Some(y) = pick_field(fs, rng) {
                return Some(y);
            }
        }
    }
    Some(x.clone())
}

/// One structural mutation somewhere in the tree; lengths stay consistent.
/// The message is picked by a random walk down the tree, or uniformly among all messages (which
/// reaches rare deep ones, like a summary's quantile values, more often).
pub(super) fn mutate_tree(fields: &mut Vec<F>, rng: &mut Rng, donor: &Option<F>) {
    if rng.below(2) == 0 {
        let mut k = rng.below(count_msgs(fields) as u64 + 1) as usize;
        if let Some(fs) = nth_msg(fields, &mut k) {
            return mutate_here(fs, rng, donor);
        }
        return mutate_here(fields, rng, donor);
    }
    let msgs: Vec<usize> = (0..fields.len())
        .filter(|&i| matches!(fields[i].v, V::Msg(_)))
        .collect();
    if !msgs.is_empty() && rng.below(4) != 0 {
        let i = msgs[rng.below(msgs.len() as u64) as usize];
        if let V::Msg(fs) = &mut fields[i].v {
            return mutate_tree(fs, rng, donor);
        }
    }
    mutate_here(fields, rng, donor)
}

pub(super) fn count_msgs(fields: &[F]) -> usize {
    fields
        .iter()
        .map(|x| match &x.v {
            V::Msg(fs) => 1 + count_msgs(fs),
            _ => 0,
        })
        .sum()
}

pub(super) fn nth_msg<'a>(fields: &'a mut [F], k: &mut usize) -> Option<&'a mut Vec<F>> {
    for x in fields.iter_mut() {
        if let V::Msg(fs) = &mut x.v {
            if *k == 0 {
                return Some(fs);
            }
            *k -= 1;
            if let Some(r) = nth_msg(fs, k) {
                return Some(r);
            }
        }
    }
    None
}

/// One structural mutation of this message's fields.
pub(super) fn mutate_here(fields: &mut Vec<F>, rng: &mut Rng, donor: &Option<F>) {
    let n = fields.len() as u64;
    let at = |rng: &mut Rng| rng.below(n) as usize;
    match rng.below(11) {
        // duplicate a field, next to itself or elsewhere
        0 | 1 if n > 0 => {
            let i = at(rng);
            let c = fields[i].clone();
            let j = if rng.below(2) == 0 {
                i + 1
            } else {
                rng.below(n + 1) as usize
            };
            fields.insert(j, c);
        }
        2 if n > 0 => {
            fields.remove(at(rng));
        }
        // re-tag: oneof switches, wrong wire types for known fields, unknown fields
        3 if n > 0 => {
            let i = at(rng);
            fields[i].tag = rand_tag(rng);
        }
        // re-type the value
        4 if n > 0 => {
            let i = at(rng);
            let old = std::mem::replace(&mut fields[i].v, V::Varint(0));
            fields[i].v = match old {
                V::Varint(v) => match rng.below(3) {
                    0 => {
                        let mut b = vec![];
                        put_varint(&mut b, v);
                        if rng.below(2) == 0 {
                            put_varint(&mut b, rand_u64(rng));
                        }
                        V::Len(b)
                    }
                    1 => V::F64(v),
                    _ => V::F32(v as u32),
                },
                V::F64(v) => match rng.below(3) {
                    0 => {
                        let mut b = v.to_le_bytes().to_vec();
                        match rng.below(3) {
                            0 => b.extend_from_slice(&rng.next_u64().to_le_bytes()),
                            1 => b.extend_from_slice(&[1, 2, 3, 4]),
                            _ => {}
                        }
                        V::Len(b)
                    }
                    1 => V::Varint(v),
                    _ => V::F32(v as u32),
                },
                V::F32(v) => match rng.below(2) {
                    0 => V::Len(v.to_le_bytes().to_vec()),
                    _ => V::F64(u64::from(v)),
                },
                V::Len(b) => match rng.below(3) {
                    0 => V::Varint(b.len() as u64),
                    1 => V::F64(b.len() as u64),
                    _ => V::Group(vec![]),
                },
                V::Msg(fs) => match rng.below(2) {
                    0 => V::Group(fs),
                    _ => V::Len(enc(&fs)),
                },
                V::Group(fs) => V::Msg(fs),
            };
        }
        // a new payload: random bytes, ids of every length, text
        5 if n > 0 => {
            let i = at(rng);
            match &mut fields[i].v {
                V::Len(b) => *b = rand_bytes(rng),
                V::Msg(fs) => *fs = rand_fields(rng, 2),
                V::Varint(v) | V::F64(v) => *v = rand_u64(rng),
                V::F32(v) => *v = rng.next_u64() as u32,
                V::Group(fs) => *fs = rand_fields(rng, 2),
            }
        }
        // invalid utf-8 in some payload
        6 if n > 0 => {
            let i = at(rng);
            if let V::Len(b) = &mut fields[i].v {
                let bad = [0xff, 0xc3, 0x80, 0xed][rng.below(4) as usize];
                if b.is_empty() || rng.below(2) == 0 {
                    b.push(bad);
                } else {
                    let j = rng.below(b.len() as u64) as usize;
                    b[j] = bad;
                }
            }
        }
        7 if n > 1 => {
            let (i, j) = (at(rng), at(rng));
            fields.swap(i, j);
        }
        // splice in a field from elsewhere in the request
        8 => {
            if let Some(d) = donor {
                let j = rng.below(n + 1) as usize;
                fields.insert(j, d.clone());
            }
        }
        // an unknown (or not) field, groups included
        _ => {
            let x = rand_field(rng, 3);
            let j = rng.below(n + 1) as usize;
            fields.insert(j, x);
        }
    }
}

/// One byte-level mutation.
pub(super) fn mutate_bytes(b: &mut Vec<u8>, rng: &mut Rng) {
    let n = b.len() as u64;
    match rng.below(6) {
        0 if n > 0 => {
            let i = rng.below(n) as usize;
            b[i] ^= 1 << rng.below(8);
        }
        1 if n > 0 => {
            let i = rng.below(n) as usize;
            b[i] = rng.next_u64() as u8;
        }
        2 => b.truncate(rng.below(n + 1) as usize),
        3 => {
            let i = rng.below(n + 1) as usize;
            let k = 1 + rng.below(4) as usize;
            let ins = rng.bytes(k);
            b.splice(i..i, ins);
        }
        // overwrite a byte with a varint: lengths and keys go wrong in interesting ways
        4 if n > 0 => {
            let i = rng.below(n) as usize;
            let mut v = vec![];
            put_varint(
                &mut v,
                match rng.below(3) {
                    0 => rng.below(n + 4),
                    1 => rng.below(1 << 14),
                    _ => rng.next_u64(),
                },
            );
            b.splice(i..i + 1, v);
        }
        _ if n > 0 => {
            let i = rng.below(n) as usize;
            let j = (i + 1 + rng.below(8) as usize).min(b.len());
            b.drain(i..j);
        }
        _ => {}
    }
}
