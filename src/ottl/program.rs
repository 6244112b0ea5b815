//! The compiled form of OTTL: what [`super::compile`] produces and [`super::eval`] runs.

use regex::Regex;

use super::parse::{CmpOp, MathOp};
use super::{Place, Val};

/// A compile error: the column in the statement and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at column {})", self.message, self.col)
    }
}

/// A compiled statement of a `transform` processor.
#[derive(Debug)]
pub struct Statement {
    pub(super) editor: Editor,
    pub(super) condition: Option<Co>,
    pub(super) on_wire: bool,
    pub text: String,
}

impl Statement {
    /// True when the statement reads and writes only what an encoded item offers
    /// ([`super::targets::WireTarget`]), so it can run without decoding the request.
    pub fn on_wire(&self) -> bool {
        self.on_wire
    }
}

/// A compiled condition (`filter`, a block's `conditions`).
#[derive(Debug)]
pub struct Condition {
    pub(super) co: Co,
    pub(super) on_wire: bool,
    pub text: String,
}

impl Condition {
    pub fn on_wire(&self) -> bool {
        self.on_wire
    }
}

#[derive(Debug)]
pub(super) enum Ex {
    Lit(Val<'static>),
    Get(Place),
    Conv(Box<Conv>),
    List(Vec<Ex>),
    Map(Vec<(String, Ex)>),
    Math(Box<Ex>, MathOp, Box<Ex>),
    Neg(Box<Ex>),
    Cond(Box<Co>),
}

#[derive(Debug)]
pub(super) enum Co {
    Or(Vec<Co>),
    And(Vec<Co>),
    Not(Box<Co>),
    Cmp(Ex, CmpOp, Ex),
    Value(Ex),
}

#[derive(Debug)]
pub(super) struct Conv {
    pub f: ConvFn,
    pub args: Vec<Ex>,
    /// An index on the result (`ParseJSON(body)["k"]`).
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Case {
    Lower,
    Upper,
    Snake,
    Camel,
}

#[derive(Debug)]
pub(super) enum ConvFn {
    Concat,
    ConvertCase(Case),
    Int,
    Double,
    String,
    IsMatch(Regex),
    IsString,
    IsInt,
    IsDouble,
    IsBool,
    IsMap,
    IsList,
    Len,
    Substring,
    Split,
    ParseJson,
    ExtractPatterns(Regex),
    TraceId,
    SpanId,
    Hex,
    /// `Trim(target, replacement?)`: the characters of `replacement` (default " ") off both ends.
    Trim,
    /// `Format(formatString, args)`: Go's `fmt.Sprintf` verbs `%s %v %d %f %.Nf %x %q %t %%`.
    Format,
    /// Times are Unix nanoseconds (an int) in otelgw's OTTL: `Now()`, `Time(...)`, `Unix(...)`
    /// produce them, `UnixNano(...)` and friends read them.
    Now,
    Time(TimeFormat),
    Unix,
    /// Divides a time (nanoseconds) by this many: `UnixNano` 1, `UnixMicro` 1e3, …
    UnixPart(i64),
    Hash(Hash),
}

/// A hash converter (also the optional `function` of the `replace_*` editors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Sha1,
    Sha256,
    Sha512,
    Md5,
    /// 64-bit FNV-1a, as an int (the Collector's `FNV`).
    Fnv,
}

impl Hash {
    pub(super) fn by_name(name: &str) -> Option<Hash> {
        Some(match name {
            "SHA1" => Hash::Sha1,
            "SHA256" => Hash::Sha256,
            "SHA512" => Hash::Sha512,
            "MD5" => Hash::Md5,
            "FNV" => Hash::Fnv,
            _ => return None,
        })
    }
}

/// `Time`'s `format` (strptime directives, translated to chrono's) and `location`.
#[derive(Debug)]
pub(super) struct TimeFormat {
    pub chrono: String,
    /// The format carries its own offset (`%z`), else the time is in `offset_secs` east of UTC.
    pub has_offset: bool,
    pub offset_secs: i32,
    /// `location: Local`.
    pub local: bool,
}

/// What the `replace_*` editors do to each replacement: the optional `function` (a hash) and
/// `replacementFormat` (one `%s`).
#[derive(Debug, Default)]
pub(super) struct Post {
    pub hash: Option<Hash>,
    pub format: Option<String>,
}

impl Post {
    pub(super) fn is_identity(&self) -> bool {
        self.hash.is_none() && self.format.is_none()
    }
}

#[derive(Debug)]
pub(super) enum Editor {
    Set(Place, Ex),
    DeleteKey(Place, Ex),
    DeleteMatchingKeys(Place, Regex),
    KeepKeys(Place, Vec<String>),
    KeepMatchingKeys(Place, Regex),
    Limit(Place, usize, Vec<String>),
    TruncateAll(Place, usize),
    ReplacePattern(Place, Regex, Ex, Post),
    /// `true`: replace in keys, `false`: in values.
    ReplaceAllPatterns(Place, bool, Regex, Ex, Post),
    ReplaceMatch(Place, Regex, Ex, Post),
    ReplaceAllMatches(Place, Regex, Ex, Post),
    MergeMaps(Place, Ex, Strategy),
    /// `append(target, value?, values?)`.
    Append(Place, Ex, Ex),
    /// `flatten(target, prefix?, depth?)`.
    Flatten(Place, String, Option<usize>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    Insert,
    Update,
    Upsert,
}
