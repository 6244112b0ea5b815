//! Which compiled statements and conditions can run on an encoded item
//! ([`super::targets::WireTarget`]): what they read and write must be there.

use super::program::{Co, Editor, Ex};
use super::{Context, Field, Owner, Place};

pub(super) fn ok(ctx: Context) -> bool {
    matches!(ctx, Context::Span | Context::Log | Context::DataPoint)
}

/// Fields an encoded item can read ([`super::targets::WireTarget::get`]).
fn reads(f: Field) -> bool {
    matches!(
        f,
        Field::Attributes(Owner::Item | Owner::Resource)
            | Field::Cache
            | Field::Name
            | Field::Kind
            | Field::Body
            | Field::SeverityNumber
            | Field::SeverityText
            | Field::MetricName
            | Field::TraceIdString
            | Field::SpanIdString
    )
}

/// Fields an encoded item can write ([`super::targets::WireTarget::set`]).
fn writes(f: Field) -> bool {
    matches!(
        f,
        Field::Attributes(Owner::Item)
            | Field::Cache
            | Field::Name
            | Field::SeverityNumber
            | Field::SeverityText
            | Field::Body
    )
}

fn ex(e: &Ex) -> bool {
    match e {
        Ex::Lit(_) => true,
        Ex::Get(p) => reads(p.field),
        Ex::Conv(c) => c.args.iter().all(ex),
        Ex::List(v) => v.iter().all(ex),
        Ex::Map(v) => v.iter().all(|(_, x)| ex(x)),
        Ex::Math(a, _, b) => ex(a) && ex(b),
        Ex::Neg(a) => ex(a),
        Ex::Cond(c) => co(c),
    }
}

pub(super) fn co(c: &Co) -> bool {
    match c {
        Co::Or(v) | Co::And(v) => v.iter().all(co),
        Co::Not(x) => co(x),
        Co::Cmp(a, _, b) => ex(a) && ex(b),
        Co::Value(e) => ex(e),
    }
}

pub(super) fn editor(e: &Editor) -> bool {
    let place = |p: &Place| reads(p.field) && writes(p.field);
    match e {
        Editor::Set(p, v)
        | Editor::DeleteKey(p, v)
        | Editor::ReplacePattern(p, _, v, _)
        | Editor::ReplaceMatch(p, _, v, _)
        | Editor::ReplaceAllMatches(p, _, v, _)
        | Editor::MergeMaps(p, v, _)
        | Editor::ReplaceAllPatterns(p, _, _, v, _) => place(p) && ex(v),
        // these build lists and nested keys: the decoded path
        Editor::Append(..) | Editor::Flatten(..) => false,
        Editor::DeleteMatchingKeys(p, _)
        | Editor::KeepKeys(p, _)
        | Editor::KeepMatchingKeys(p, _)
        | Editor::Limit(p, _, _)
        | Editor::TruncateAll(p, _) => place(p),
    }
}
