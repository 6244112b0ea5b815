//! The subset of expr-lang (the Collector's expression language) that real configs use:
//! field references, literals, comparisons, `matches`, `contains`, `startsWith`, `endsWith`,
//! `in`, `and`/`or`/`not` (and `&&`/`||`/`!`), arithmetic `+ - * / %` (`+` also concatenates
//! strings), parentheses, lists and `env("NAME")`. Anything else fails to compile.
//! A missing field is nil; comparisons with nil are false except `== nil` / `!= nil`.

use super::field::Field;
use super::Entry;
use regex::Regex;
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// A compiled expression (regexes of `matches` compiled once).
#[derive(Debug, Clone)]
pub struct Expr {
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Lit(Value),
    Field(Field),
    Env(Box<Node>),
    List(Vec<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Matches(Box<Node>, Regex),
    Bin(Op, Box<Node>, Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    EndsWith,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(Value),
    Punct(&'static str),
}

const PUNCTS: [&str; 20] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ",", ".", "+", "-", "*",
    "/", "%",
];

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err("unterminated string literal".into());
                };
                i += 1;
                if d == c {
                    break;
                }
                if d == '\\' && c != '`' {
                    let Some(&e) = chars.get(i) else {
                        return Err("unterminated string literal".into());
                    };
                    i += 1;
                    // Go's string escapes: anything else (`"\d"`) is an error there too,
                    // never silently a different regex
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        '\\' | '"' | '\'' => e,
                        other => {
                            return Err(format!(
                                "invalid escape \\{other} in a string literal (write \\\\{other})"
                            ))
                        }
                    });
                } else {
                    s.push(d);
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|d| d.is_ascii_digit() || *d == '_')
            {
                i += 1;
            }
            let mut float = false;
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                float = true;
                i += 1;
                while chars.get(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let v = if float {
                text.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            } else {
                text.parse::<i64>().ok().map(Value::from)
            };
            out.push(Tok::Num(v.ok_or_else(|| format!("bad number {text}"))?));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|d| d.is_alphanumeric() || *d == '_' || *d == '$')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let p = PUNCTS
                .iter()
                .find(|p| rest.starts_with(**p))
                .ok_or_else(|| format!("unexpected character {c:?}"))?;
            i += p.chars().count();
            out.push(Tok::Punct(p));
        }
    }
    Ok(out)
}

/// Tokens in one expression at most, and how deeply it may nest: the parser and the
/// evaluator recurse, so a hostile config must not be able to exhaust the stack.
const MAX_TOKENS: usize = 1024;
const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn peek_is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
            || matches!(self.peek(), Some(Tok::Ident(q)) if q == p)
    }
    fn eat(&mut self, p: &str) -> bool {
        let hit = self.peek_is(p);
        if hit {
            self.pos += 1;
        }
        hit
    }
    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!("expected {p:?} at token {}", self.pos + 1))
        }
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut l = self.and()?;
        while self.eat("||") || self.eat("or") {
            l = Node::Bin(Op::Or, Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Node, String> {
        let mut l = self.cmp()?;
        while self.eat("&&") || self.eat("and") {
            l = Node::Bin(Op::And, Box::new(l), Box::new(self.cmp()?));
        }
        Ok(l)
    }
    fn cmp(&mut self) -> Result<Node, String> {
        let mut l = self.add()?;
        loop {
            // `not in`, `not matches`, … negate the operator that follows.
            let negate = self.peek_is("not")
                && matches!(self.toks.get(self.pos + 1), Some(Tok::Ident(s))
                    if ["in", "matches", "contains", "startsWith", "endsWith"].contains(&s.as_str()));
            if negate {
                self.pos += 1;
            }
            let op = match self.peek() {
                Some(Tok::Punct("==")) => Op::Eq,
                Some(Tok::Punct("!=")) => Op::Ne,
                Some(Tok::Punct("<")) => Op::Lt,
                Some(Tok::Punct("<=")) => Op::Le,
                Some(Tok::Punct(">")) => Op::Gt,
                Some(Tok::Punct(">=")) => Op::Ge,
                Some(Tok::Ident(s)) if s == "in" => Op::In,
                Some(Tok::Ident(s)) if s == "contains" => Op::Contains,
                Some(Tok::Ident(s)) if s == "startsWith" => Op::StartsWith,
                Some(Tok::Ident(s)) if s == "endsWith" => Op::EndsWith,
                Some(Tok::Ident(s)) if s == "matches" => {
                    self.pos += 1;
                    let Some(Tok::Str(pat)) = self.peek().cloned() else {
                        return Err("`matches` needs a string literal pattern".into());
                    };
                    self.pos += 1;
                    let re = Regex::new(&pat).map_err(|e| format!("bad regex {pat:?}: {e}"))?;
                    l = Node::Matches(Box::new(l), re);
                    if negate {
                        l = Node::Not(Box::new(l));
                    }
                    continue;
                }
                _ => return Ok(l),
            };
            self.pos += 1;
            l = Node::Bin(op, Box::new(l), Box::new(self.add()?));
            if negate {
                l = Node::Not(Box::new(l));
            }
        }
    }
    fn add(&mut self) -> Result<Node, String> {
        let mut l = self.mul()?;
        loop {
            let op = if self.eat("+") {
                Op::Add
            } else if self.eat("-") {
                Op::Sub
            } else {
                return Ok(l);
            };
            l = Node::Bin(op, Box::new(l), Box::new(self.mul()?));
        }
    }
    fn mul(&mut self) -> Result<Node, String> {
        let mut l = self.unary()?;
        loop {
            let op = if self.eat("*") {
                Op::Mul
            } else if self.eat("/") {
                Op::Div
            } else if self.eat("%") {
                Op::Mod
            } else {
                return Ok(l);
            };
            l = Node::Bin(op, Box::new(l), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("expression nested more than {MAX_DEPTH} deep"));
        }
        let node = self.unary_inner();
        self.depth -= 1;
        node
    }
    fn unary_inner(&mut self) -> Result<Node, String> {
        if self.eat("!") || self.eat("not") {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Node, String> {
        let tok = self.peek().cloned().ok_or("unexpected end of expression")?;
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Node::Lit(Value::String(s))),
            Tok::Num(n) => Ok(Node::Lit(n)),
            Tok::Punct("(") => {
                let n = self.or()?;
                self.expect(")")?;
                Ok(n)
            }
            Tok::Punct("[") => {
                let mut items = Vec::new();
                while !self.eat("]") {
                    items.push(self.or()?);
                    if !self.eat(",") {
                        self.expect("]")?;
                        break;
                    }
                }
                Ok(Node::List(items))
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Node::Lit(Value::Bool(true))),
                "false" => Ok(Node::Lit(Value::Bool(false))),
                "nil" | "null" => Ok(Node::Lit(Value::Null)),
                "env" => {
                    self.expect("(")?;
                    let arg = self.or()?;
                    self.expect(")")?;
                    Ok(Node::Env(Box::new(arg)))
                }
                _ => {
                    let root = Field::root_name(&id)
                        .ok_or_else(|| format!("unknown identifier or function {id:?}"))?;
                    let mut f = Field {
                        root,
                        path: Vec::new(),
                    };
                    loop {
                        if self.eat(".") {
                            match self.peek().cloned() {
                                Some(Tok::Ident(k)) => f.path.push(k),
                                _ => return Err("expected a key after '.'".into()),
                            }
                            self.pos += 1;
                        } else if self.eat("[") {
                            match self.peek().cloned() {
                                Some(Tok::Str(k)) => f.path.push(k),
                                _ => return Err("only quoted keys may be indexed".into()),
                            }
                            self.pos += 1;
                            self.expect("]")?;
                        } else {
                            return Ok(Node::Field(f));
                        }
                    }
                }
            },
            Tok::Punct(p) => Err(format!("unexpected {p:?}")),
        }
    }
}

impl Expr {
    pub fn compile(src: &str) -> Result<Expr, String> {
        let toks = lex(src)?;
        if toks.len() > MAX_TOKENS {
            return Err(format!("expression longer than {MAX_TOKENS} tokens"));
        }
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        let node = p.or()?;
        if p.pos != p.toks.len() {
            return Err(format!(
                "unsupported syntax after token {} (supported: fields, literals, comparisons, \
                 matches/contains/startsWith/endsWith/in, and/or/not, + - * / %, env())",
                p.pos
            ));
        }
        Ok(Expr { node })
    }
    pub fn eval(&self, e: &Entry) -> Value {
        eval(&self.node, e)
    }
    /// True only when the expression evaluates to boolean `true`.
    pub fn eval_bool(&self, e: &Entry) -> bool {
        self.eval(e) == Value::Bool(true)
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn eq(a: &Value, b: &Value) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => num(a)?.partial_cmp(&num(b)?),
    }
}

fn arith(op: Op, a: &Value, b: &Value) -> Value {
    if let (Op::Add, Value::String(x), Value::String(y)) = (op, a, b) {
        return Value::String(format!("{x}{y}"));
    }
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let r = match op {
            Op::Add => x.checked_add(y),
            Op::Sub => x.checked_sub(y),
            Op::Mul => x.checked_mul(y),
            Op::Mod => x.checked_rem(y),
            _ => None,
        };
        if let Some(r) = r {
            return Value::from(r);
        }
    }
    let (Some(x), Some(y)) = (num(a), num(b)) else {
        return Value::Null;
    };
    let r = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div => x / y,
        _ => x % y,
    };
    Number::from_f64(r).map_or(Value::Null, Value::Number)
}

fn eval(n: &Node, e: &Entry) -> Value {
    match n {
        Node::Lit(v) => v.clone(),
        Node::Field(f) => f.get(e).unwrap_or(Value::Null),
        Node::Env(a) => match eval(a, e) {
            Value::String(k) => std::env::var(k).map_or(Value::Null, Value::String),
            _ => Value::Null,
        },
        Node::List(items) => Value::Array(items.iter().map(|i| eval(i, e)).collect()),
        Node::Not(a) => Value::Bool(eval(a, e) != Value::Bool(true)),
        Node::Neg(a) => arith(Op::Sub, &Value::from(0), &eval(a, e)),
        Node::Matches(a, re) => {
            Value::Bool(matches!(eval(a, e), Value::String(s) if re.is_match(&s)))
        }
        Node::Bin(Op::And, a, b) => {
            Value::Bool(eval(a, e) == Value::Bool(true) && eval(b, e) == Value::Bool(true))
        }
        Node::Bin(Op::Or, a, b) => {
            Value::Bool(eval(a, e) == Value::Bool(true) || eval(b, e) == Value::Bool(true))
        }
        Node::Bin(op, a, b) => {
            let (a, b) = (eval(a, e), eval(b, e));
            let str_op = |f: fn(&str, &str) -> bool| match (&a, &b) {
                (Value::String(x), Value::String(y)) => Value::Bool(f(x, y)),
                _ => Value::Bool(false),
            };
            match op {
                Op::Eq => Value::Bool(eq(&a, &b)),
                Op::Ne => Value::Bool(!eq(&a, &b)),
                Op::Lt => Value::Bool(order(&a, &b) == Some(Ordering::Less)),
                Op::Le => Value::Bool(matches!(
                    order(&a, &b),
                    Some(Ordering::Less | Ordering::Equal)
                )),
                Op::Gt => Value::Bool(order(&a, &b) == Some(Ordering::Greater)),
                Op::Ge => Value::Bool(matches!(
                    order(&a, &b),
                    Some(Ordering::Greater | Ordering::Equal)
                )),
                Op::In => Value::Bool(match (&a, &b) {
                    (_, Value::Array(items)) => items.iter().any(|i| eq(&a, i)),
                    (Value::String(k), Value::Object(m)) => m.contains_key(k),
                    _ => false,
                }),
                Op::Contains => str_op(|x, y| x.contains(y)),
                Op::StartsWith => str_op(|x, y| x.starts_with(y)),
                Op::EndsWith => str_op(|x, y| x.ends_with(y)),
                _ => arith(*op, &a, &b),
            }
        }
    }
}
