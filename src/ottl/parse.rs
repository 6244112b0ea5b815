//! OTTL grammar → untyped AST, with winnow. Columns are 1-based byte offsets in the statement.
//!
//! ```text
//! statement  := editor ( "where" bool )?
//! condition  := bool
//! editor     := lower_ident "(" args? ")"
//! bool       := term ( "or" term )*
//! term       := factor ( "and" factor )*
//! factor     := "not" factor | "(" bool ")" | math cmp math | math
//! math       := product ( ("+" | "-") product )*
//! product    := unary ( ("*" | "/") unary )*
//! unary      := "-" unary | "(" math ")" | value
//! value      := nil | true | false | string | bytes (0x…) | float | int | list | map
//!             | Converter "(" args? ")" index* | ENUM | path
//! path       := ident ( "." ident )* index*        index := "[" ( string | int ) "]"
//! args       := arg ( "," arg )*                   arg   := ( ident "=" )? bool
//! ```

use winnow::ascii::{digit1, hex_digit1};
use winnow::combinator::{alt, cut_err, delimited, opt, preceded, repeat, separated};
use winnow::error::{ContextError, ErrMode, ModalResult, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::{LocatingSlice, Location, Stream};
use winnow::token::{any, one_of, take_while};

type In<'a> = LocatingSlice<&'a str>;

/// A value expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// An upper-case name (`SPAN_KIND_SERVER`), resolved by the compiler.
    Enum(String, usize),
    Path(Path),
    Call(Call),
    List(Vec<Expr>),
    Map(Vec<(String, Expr)>),
    Math(Box<Expr>, MathOp, Box<Expr>),
    Neg(Box<Expr>),
    /// A boolean expression used as a value (`IsMatch(…) and x`, as an argument).
    Cond(Box<Cond>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `a.b.c["k"][0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub segments: Vec<String>,
    pub keys: Vec<Key>,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Str(String),
    Int(i64),
}

/// An editor or converter invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
    /// Indexes on a converter's result (`ParseJSON(body)["k"]`).
    pub keys: Vec<Key>,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: Expr,
    pub col: usize,
}

/// A boolean expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(Expr, CmpOp, Expr),
    /// A value that must be a boolean (`true`, `IsMatch(…)`, a path holding a bool).
    Value(Expr),
}

/// `editor(args) where condition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub editor: Call,
    pub condition: Option<Cond>,
}

/// A parse failure: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub col: usize,
    pub message: String,
}

fn error(input: &str, e: winnow::error::ParseError<In<'_>, ContextError>) -> ParseError {
    let col = e.offset() + 1;
    let ctx = e.inner().to_string();
    let near: String = input
        .get(e.offset()..)
        .unwrap_or("")
        .chars()
        .take(12)
        .collect();
    let message = match (ctx.is_empty(), near.is_empty()) {
        (false, _) => ctx,
        (true, true) => "unexpected end of statement".to_string(),
        (true, false) => format!("unexpected {near:?}"),
    };
    ParseError { col, message }
}

/// The context names the paths of a statement start with (`span.name` → `span`); `None` for
/// a path without one. For context inference.
pub fn path_prefixes(s: &Statement) -> Vec<Option<String>> {
    fn expr(e: &Expr, out: &mut Vec<Option<String>>) {
        match e {
            Expr::Path(p) => out.push(
                (p.segments.len() > 1)
                    .then(|| p.segments[0].clone())
                    .filter(|f| {
                        matches!(
                            f.as_str(),
                            "span"
                                | "spanevent"
                                | "log"
                                | "datapoint"
                                | "metric"
                                | "scope"
                                | "instrumentation_scope"
                                | "resource"
                        )
                    }),
            ),
            Expr::Call(c) => c.args.iter().for_each(|a| expr(&a.value, out)),
            Expr::List(v) => v.iter().for_each(|x| expr(x, out)),
            Expr::Map(v) => v.iter().for_each(|(_, x)| expr(x, out)),
            Expr::Math(a, _, b) => {
                expr(a, out);
                expr(b, out);
            }
            Expr::Neg(a) => expr(a, out),
            Expr::Cond(c) => cond(c, out),
            _ => {}
        }
    }
    fn cond(c: &Cond, out: &mut Vec<Option<String>>) {
        match c {
            Cond::Or(v) | Cond::And(v) => v.iter().for_each(|x| cond(x, out)),
            Cond::Not(x) => cond(x, out),
            Cond::Cmp(a, _, b) => {
                expr(a, out);
                expr(b, out);
            }
            Cond::Value(e) => expr(e, out),
        }
    }
    let mut out = Vec::new();
    s.editor.args.iter().for_each(|a| expr(&a.value, &mut out));
    if let Some(c) = &s.condition {
        cond(c, &mut out);
    }
    out
}

/// Parses a statement (`transform`).
pub fn statement(input: &str) -> Result<Statement, ParseError> {
    let mut p = (
        ws,
        editor,
        opt(preceded((ws, keyword("where")), cut_err(bool_expr))),
        ws,
    )
        .map(|(_, editor, condition, _)| Statement { editor, condition });
    p.parse(LocatingSlice::new(input))
        .map_err(|e| error(input, e))
}

/// Parses a condition (`filter`, a block's `conditions`).
pub fn condition(input: &str) -> Result<Cond, ParseError> {
    delimited(ws, bool_expr, ws)
        .parse(LocatingSlice::new(input))
        .map_err(|e| error(input, e))
}

fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

fn ws(i: &mut In<'_>) -> ModalResult<()> {
    take_while(0.., char::is_whitespace).void().parse_next(i)
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ident<'a>(i: &mut In<'a>) -> ModalResult<&'a str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., is_ident),
    )
        .take()
        .parse_next(i)
}

/// A keyword not followed by an identifier character.
fn keyword<'a>(k: &'static str) -> impl Parser<In<'a>, (), ErrMode<ContextError>> {
    move |i: &mut In<'a>| {
        let start = i.checkpoint();
        let word = ident.parse_next(i)?;
        if word == k {
            Ok(())
        } else {
            i.reset(&start);
            Err(ErrMode::Backtrack(ContextError::new()))
        }
    }
}

fn sym<'a>(s: &'static str) -> impl Parser<In<'a>, (), ErrMode<ContextError>> {
    delimited(ws, s, ws).void()
}

fn editor(i: &mut In<'_>) -> ModalResult<Call> {
    let col = i.current_token_start() + 1;
    let name = ident
        .verify(|n: &str| n.starts_with(|c: char| c.is_ascii_lowercase()))
        .context(expected("an editor (a lower-case function such as set)"))
        .parse_next(i)?;
    let args = cut_err(args).parse_next(i)?;
    Ok(Call {
        name: name.to_string(),
        args,
        keys: Vec::new(),
        col,
    })
}

fn args(i: &mut In<'_>) -> ModalResult<Vec<Arg>> {
    delimited(
        sym("(").context(expected("(")),
        separated(0.., arg, sym(",")),
        sym(")").context(expected(") or ,")),
    )
    .parse_next(i)
}

fn arg(i: &mut In<'_>) -> ModalResult<Arg> {
    let col = i.current_token_start() + 1;
    let name = opt((ident, sym("="), winnow::combinator::not("=")).map(|(n, _, _)| n.to_string()))
        .parse_next(i)?;
    let value = bool_expr.parse_next(i)?;
    // a plain value stays a value; only a real boolean expression is a `Cond`
    let value = match value {
        Cond::Value(e) => e,
        c => Expr::Cond(Box::new(c)),
    };
    Ok(Arg { name, value, col })
}

fn bool_expr(i: &mut In<'_>) -> ModalResult<Cond> {
    let first = term.parse_next(i)?;
    let rest: Vec<Cond> =
        repeat(0.., preceded((ws, keyword("or"), ws), cut_err(term))).parse_next(i)?;
    Ok(if rest.is_empty() {
        first
    } else {
        Cond::Or(std::iter::once(first).chain(rest).collect())
    })
}

fn term(i: &mut In<'_>) -> ModalResult<Cond> {
    let first = factor.parse_next(i)?;
    let rest: Vec<Cond> =
        repeat(0.., preceded((ws, keyword("and"), ws), cut_err(factor))).parse_next(i)?;
    Ok(if rest.is_empty() {
        first
    } else {
        Cond::And(std::iter::once(first).chain(rest).collect())
    })
}

fn factor(i: &mut In<'_>) -> ModalResult<Cond> {
    ws.parse_next(i)?;
    if keyword("not").parse_next(i).is_ok() {
        ws.parse_next(i)?;
        return cut_err(factor)
            .map(|c| Cond::Not(Box::new(c)))
            .parse_next(i);
    }
    // "(" opens either a boolean group or a math group: a group that is a real boolean
    // expression stands; a plain value is parsed again as math (`(a + 2) * 3 > x`)
    let start = i.checkpoint();
    if let Ok(c) = delimited(sym("("), bool_expr, sym(")")).parse_next(i) {
        if !matches!(c, Cond::Value(_)) {
            return Ok(c);
        }
        i.reset(&start);
    }
    let lhs = math
        .context(expected("a value or a condition"))
        .parse_next(i)?;
    match opt(cmp_op).parse_next(i)? {
        Some(op) => {
            let rhs =
                cut_err(math.context(expected("a value after the comparison"))).parse_next(i)?;
            Ok(Cond::Cmp(lhs, op, rhs))
        }
        None => Ok(Cond::Value(lhs)),
    }
}

fn cmp_op(i: &mut In<'_>) -> ModalResult<CmpOp> {
    delimited(
        ws,
        alt((
            "==".value(CmpOp::Eq),
            "!=".value(CmpOp::Ne),
            "<=".value(CmpOp::Le),
            ">=".value(CmpOp::Ge),
            "<".value(CmpOp::Lt),
            ">".value(CmpOp::Gt),
        )),
        ws,
    )
    .parse_next(i)
}

fn math(i: &mut In<'_>) -> ModalResult<Expr> {
    let mut acc = product.parse_next(i)?;
    loop {
        let start = i.checkpoint();
        ws.parse_next(i)?;
        let op = match opt(one_of(['+', '-'])).parse_next(i)? {
            Some('+') => MathOp::Add,
            Some(_) => MathOp::Sub,
            None => {
                i.reset(&start);
                return Ok(acc);
            }
        };
        let rhs = cut_err(product).parse_next(i)?;
        acc = Expr::Math(Box::new(acc), op, Box::new(rhs));
    }
}

fn product(i: &mut In<'_>) -> ModalResult<Expr> {
    let mut acc = unary.parse_next(i)?;
    loop {
        let start = i.checkpoint();
        ws.parse_next(i)?;
        let op = match opt(one_of(['*', '/'])).parse_next(i)? {
            Some('*') => MathOp::Mul,
            Some(_) => MathOp::Div,
            None => {
                i.reset(&start);
                return Ok(acc);
            }
        };
        let rhs = cut_err(unary).parse_next(i)?;
        acc = Expr::Math(Box::new(acc), op, Box::new(rhs));
    }
}

fn unary(i: &mut In<'_>) -> ModalResult<Expr> {
    ws.parse_next(i)?;
    alt((
        delimited(sym("("), math, sym(")")),
        bytes.map(Expr::Bytes),
        number,
        preceded("-", cut_err(unary)).map(|e| Expr::Neg(Box::new(e))),
        value,
    ))
    .parse_next(i)
}

fn value(i: &mut In<'_>) -> ModalResult<Expr> {
    alt((
        string.map(Expr::Str),
        bytes.map(Expr::Bytes),
        number,
        list,
        map,
        word,
    ))
    .parse_next(i)
}

/// nil, true, false, a converter call, an enum or a path.
fn word(i: &mut In<'_>) -> ModalResult<Expr> {
    let col = i.current_token_start() + 1;
    let first = ident.parse_next(i)?;
    match first {
        "nil" => return Ok(Expr::Nil),
        "true" => return Ok(Expr::Bool(true)),
        "false" => return Ok(Expr::Bool(false)),
        _ => {}
    }
    if first.starts_with(|c: char| c.is_ascii_uppercase()) {
        let start = i.checkpoint();
        ws.parse_next(i)?;
        if i.peek_token() == Some('(') {
            let args = cut_err(args).parse_next(i)?;
            let keys = repeat(0.., index).parse_next(i)?;
            return Ok(Expr::Call(Call {
                name: first.to_string(),
                args,
                keys,
                col,
            }));
        }
        i.reset(&start);
        if first
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Ok(Expr::Enum(first.to_string(), col));
        }
    }
    let mut segments = vec![first.to_string()];
    let rest: Vec<&str> = repeat(0.., preceded(".", cut_err(ident))).parse_next(i)?;
    segments.extend(rest.into_iter().map(str::to_string));
    let keys = repeat(0.., index).parse_next(i)?;
    Ok(Expr::Path(Path {
        segments,
        keys,
        col,
    }))
}

fn index(i: &mut In<'_>) -> ModalResult<Key> {
    delimited(
        "[",
        cut_err(delimited(
            ws,
            alt((string.map(Key::Str), int.map(Key::Int))),
            ws,
        ))
        .context(expected("a string or integer index")),
        cut_err("]").context(expected("]")),
    )
    .parse_next(i)
}

fn list(i: &mut In<'_>) -> ModalResult<Expr> {
    delimited(
        "[",
        separated(0.., delimited(ws, math, ws), ","),
        cut_err("]").context(expected("] or ,")),
    )
    .map(Expr::List)
    .parse_next(i)
}

fn map(i: &mut In<'_>) -> ModalResult<Expr> {
    let entry = (delimited(ws, string, ws), cut_err(sym(":")), cut_err(math));
    delimited(
        "{",
        separated(0.., entry.map(|(k, _, v)| (k, v)), sym(",")),
        cut_err(preceded(ws, "}")).context(expected("} or ,")),
    )
    .map(Expr::Map)
    .parse_next(i)
}

/// A double-quoted string with `\"`, `\\`, `\n`, `\t`, `\r` escapes (any other escaped
/// character is kept with its backslash, as regular expressions need).
fn string(i: &mut In<'_>) -> ModalResult<String> {
    '"'.parse_next(i)?;
    let mut out = String::new();
    loop {
        let c: ModalResult<char> = any.context(expected("a closing \"")).parse_next(i);
        match c.map_err(|e: ErrMode<ContextError>| e.cut())? {
            '"' => return Ok(out),
            '\\' => match any
                .parse_next(i)
                .map_err(|e: ErrMode<ContextError>| e.cut())?
            {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                c @ ('"' | '\\') => out.push(c),
                c => {
                    out.push('\\');
                    out.push(c);
                }
            },
            c => out.push(c),
        }
    }
}

fn bytes(i: &mut In<'_>) -> ModalResult<Vec<u8>> {
    let hex = preceded("0x", hex_digit1).parse_next(i)?;
    if hex.len() % 2 != 0 {
        return Err(ErrMode::Cut(ContextError::new()));
    }
    Ok((0..hex.len())
        .step_by(2)
        .filter_map(|k| u8::from_str_radix(hex.get(k..k + 2)?, 16).ok())
        .collect())
}

fn int(i: &mut In<'_>) -> ModalResult<i64> {
    (opt('-'), digit1)
        .take()
        .try_map(str::parse::<i64>)
        .parse_next(i)
}

fn number(i: &mut In<'_>) -> ModalResult<Expr> {
    let text = (
        opt('-'),
        digit1,
        opt(('.', digit1)),
        opt((one_of(['e', 'E']), opt(one_of(['+', '-'])), digit1)),
    )
        .take()
        .parse_next(i)?;
    if text.contains(['.', 'e', 'E']) {
        text.parse::<f64>()
            .map(Expr::Float)
            .map_err(|_| ErrMode::Cut(ContextError::new()))
    } else {
        text.parse::<i64>()
            .map(Expr::Int)
            .map_err(|_| ErrMode::Cut(ContextError::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_parse() {
        let s = statement(r#"replace_pattern(name, "\\?.*", "")"#).unwrap();
        assert_eq!(s.editor.name, "replace_pattern");
        assert_eq!(s.editor.args.len(), 3);
        assert_eq!(s.editor.args[1].value, Expr::Str("\\?.*".into()));
        let s = statement(
            r#"set(attributes["x"], Concat([resource.attributes["a"], "b"], "-")) where kind == SPAN_KIND_SERVER and not IsMatch(name, "^GET")"#,
        )
        .unwrap();
        let Some(Cond::And(parts)) = s.condition else {
            panic!("{s:?}")
        };
        assert!(matches!(
            parts[0],
            Cond::Cmp(Expr::Path(_), CmpOp::Eq, Expr::Enum(..))
        ));
        assert!(matches!(parts[1], Cond::Not(_)));
        let c = condition("(attributes[\"n\"] + 2) * 3 >= 9 or duration > 1000000").unwrap();
        assert!(matches!(c, Cond::Or(_)));
        let c = condition("attributes[\"n\"] != nil").unwrap();
        assert!(matches!(c, Cond::Cmp(_, CmpOp::Ne, Expr::Nil)));
        let s = statement("limit(attributes, 10, [\"a\", \"b\"])").unwrap();
        assert!(matches!(s.editor.args[2].value, Expr::List(ref l) if l.len() == 2));
        let s = statement("set(severity_number, -3)").unwrap();
        assert_eq!(s.editor.args[1].value, Expr::Int(-3));
        let s = statement("merge_maps(attributes, ParseJSON(body)[\"k\"], \"upsert\")").unwrap();
        assert!(matches!(&s.editor.args[1].value, Expr::Call(c) if c.keys.len() == 1));
    }

    #[test]
    fn errors_carry_a_column() {
        for (bad, col) in [
            ("set(name, \"x\"", 14),
            ("set(name \"x\")", 10),
            ("Set(name, \"x\")", 1),
            ("set(name, \"x) where", 20),
            ("set(name, 1) where", 19),
            ("set(name, 1) when x", 14),
        ] {
            let e = statement(bad).unwrap_err();
            assert_eq!(e.col, col, "{bad}: {e:?}");
        }
        assert!(condition("name == ").is_err());
        assert!(condition("a == 1 and").is_err());
    }
}
