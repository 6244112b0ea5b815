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
    Sha256,
    Substring,
    Split,
    ParseJson,
    ExtractPatterns(Regex),
    TraceId,
    SpanId,
    Hex,
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
    ReplacePattern(Place, Regex, Ex),
    /// `true`: replace in keys, `false`: in values.
    ReplaceAllPatterns(Place, bool, Regex, Ex),
    ReplaceMatch(Place, Regex, Ex),
    ReplaceAllMatches(Place, Regex, Ex),
    MergeMaps(Place, Ex, Strategy),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    Insert,
    Update,
    Upsert,
}
