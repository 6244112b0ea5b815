//! From the AST to what runs: paths resolved for a context, functions looked up and checked,
//! literal arguments (patterns, key lists, sizes) prepared once.

use regex::Regex;

use super::parse::{self, Cond, Expr, Key};
use super::program::{Case, Co, Conv, ConvFn, Editor, Ex, Hash, Post, Strategy, TimeFormat};
pub use super::program::{CompileError, Condition, Statement};
use super::{Context, Field, Place, Val};

fn err<T>(col: usize, message: impl Into<String>) -> Result<T, CompileError> {
    Err(CompileError {
        col,
        message: message.into(),
    })
}

/// Compiles a `transform` statement for `ctx`.
pub fn compile_statement(ctx: Context, text: &str) -> Result<Statement, CompileError> {
    let s = parse::statement(text).map_err(|e| CompileError {
        col: e.col,
        message: e.message,
    })?;
    let c = Compiler { ctx };
    let editor = c.editor(&s.editor)?;
    let condition = s.condition.as_ref().map(|k| c.cond(k)).transpose()?;
    let on_wire = super::on_wire::ok(ctx)
        && super::on_wire::editor(&editor)
        && condition.as_ref().is_none_or(super::on_wire::co);
    Ok(Statement {
        editor,
        condition,
        on_wire,
        text: text.to_string(),
    })
}

/// Compiles a condition for `ctx`.
pub fn compile_condition(ctx: Context, text: &str) -> Result<Condition, CompileError> {
    let k = parse::condition(text).map_err(|e| CompileError {
        col: e.col,
        message: e.message,
    })?;
    let co = Compiler { ctx }.cond(&k)?;
    let on_wire = super::on_wire::ok(ctx) && super::on_wire::co(&co);
    Ok(Condition {
        co,
        on_wire,
        text: text.to_string(),
    })
}

struct Compiler {
    ctx: Context,
}

/// One editor or converter signature: parameter names (`?` = optional).
fn signature(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "set" => &["target", "value"],
        "delete_key" => &["target", "key"],
        "delete_matching_keys" | "keep_matching_keys" => &["target", "pattern"],
        "keep_keys" => &["target", "keys"],
        "limit" => &["target", "limit", "priority_keys"],
        "truncate_all" => &["target", "limit"],
        "replace_pattern" => &[
            "target",
            "regex",
            "replacement",
            "function?",
            "replacementFormat?",
        ],
        "replace_all_patterns" => &[
            "target",
            "mode",
            "regex",
            "replacement",
            "function?",
            "replacementFormat?",
        ],
        "replace_match" | "replace_all_matches" => &[
            "target",
            "pattern",
            "replacement",
            "function?",
            "replacementFormat?",
        ],
        "merge_maps" => &["target", "source", "strategy"],
        "Concat" => &["vals", "delimiter"],
        "ConvertCase" => &["target", "toCase"],
        "Int" | "Double" | "String" | "IsString" | "IsInt" | "IsDouble" | "IsBool" | "IsMap"
        | "IsList" | "Len" | "SHA256" | "SHA1" | "SHA512" | "MD5" | "FNV" | "ParseJSON" | "Hex" => {
            &["target"]
        }
        "Trim" => &["target", "replacement?"],
        "Format" => &["formatString", "formatArguments"],
        "Now" => &[],
        "Time" => &["target", "format", "location?", "locale?"],
        "Unix" => &["seconds", "nanoseconds?"],
        "UnixNano" | "UnixMicro" | "UnixMilli" | "UnixSeconds" => &["time"],
        "append" => &["target", "value?", "values?"],
        "flatten" => &["target", "prefix?", "depth?", "resolveConflicts?"],
        "IsMatch" => &["target", "pattern"],
        "Substring" => &["target", "start", "length"],
        "Split" => &["target", "delimiter"],
        "ExtractPatterns" => &["target", "pattern"],
        "TraceID" | "SpanID" => &["bytes"],
        _ => return None,
    })
}

/// Functions of the Collector's OTTL that otelgw does not implement yet: named in the error.
const NOT_YET: &[&str] = &[
    "delete_index",
    "keep_matching_keys_regex",
    "set_semconv_span_name",
    "Base64Decode",
    "Decode",
    "Duration",
    "ExtractGrokPatterns",
    "GetXML",
    "Hour",
    "Hours",
    "InsertXML",
    "IsRootSpan",
    "Keys",
    "Log",
    "Microseconds",
    "Milliseconds",
    "Minute",
    "Minutes",
    "Month",
    "Nanoseconds",
    "ParseCSV",
    "ParseKeyValue",
    "ParseSimplifiedXML",
    "ParseXML",
    "RemoveXML",
    "Second",
    "Seconds",
    "SliceToMap",
    "Sort",
    "ToKeyValueString",
    "TruncateTime",
    "URL",
    "UUID",
    "UserAgent",
    "Values",
    "Weekday",
    "Year",
    "TrimPrefix",
    "TrimSuffix",
    "HasPrefix",
    "HasSuffix",
    "Contains",
    "Index",
    "ToLowerCase",
    "ToUpperCase",
    "ToSnakeCase",
    "ToCamelCase",
    "ContainsValue",
    "IsValidLuhn",
    "CommunityID",
    "ProfileID",
];

impl Compiler {
    /// Arguments in signature order (named ones placed by name), with the arity checked.
    fn args<'c>(&self, call: &'c parse::Call) -> Result<Vec<Option<&'c parse::Arg>>, CompileError> {
        let Some(sig) = signature(&call.name) else {
            return if NOT_YET.contains(&call.name.as_str()) {
                err(
                    call.col,
                    format!("function {} is not implemented by otelgw yet", call.name),
                )
            } else {
                err(call.col, format!("unknown function {}", call.name))
            };
        };
        let mut out: Vec<Option<&parse::Arg>> = vec![None; sig.len()];
        for (i, a) in call.args.iter().enumerate() {
            let slot = match &a.name {
                Some(n) => sig.iter().position(|p| p.trim_end_matches('?') == n),
                None => (i < sig.len()).then_some(i),
            };
            match slot {
                Some(s) if out[s].is_none() => out[s] = Some(a),
                Some(_) => return err(a.col, format!("{}: argument given twice", call.name)),
                None => {
                    return err(
                        a.col,
                        format!(
                            "{} takes {} arguments, got {}",
                            call.name,
                            sig.len(),
                            call.args.len()
                        ),
                    )
                }
            }
        }
        for (p, a) in sig.iter().zip(&out) {
            if a.is_none() && !p.ends_with('?') {
                return err(call.col, format!("{}: missing argument {p}", call.name));
            }
        }
        Ok(out)
    }

    fn editor(&self, call: &parse::Call) -> Result<Editor, CompileError> {
        if !call.name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return err(
                call.col,
                format!(
                    "{} is a converter; a statement starts with an editor",
                    call.name
                ),
            );
        }
        let a = self.args(call)?;
        let arg = |i: usize| a.get(i).copied().flatten();
        let target = |i: usize| match arg(i) {
            Some(parse::Arg {
                value: Expr::Path(p),
                ..
            }) => self.path(p),
            Some(x) => err(x.col, format!("{}: the target must be a path", call.name)),
            None => err(call.col, format!("{}: missing target", call.name)),
        };
        let map_target = |i: usize| {
            let p = target(i)?;
            if p.field.is_map() && p.key.is_none() {
                Ok(p)
            } else {
                err(
                    arg(i).map_or(call.col, |x| x.col),
                    format!(
                        "{}: the target must be a map (attributes, cache)",
                        call.name
                    ),
                )
            }
        };
        let string_target = |i: usize| {
            let p = target(i)?;
            if p.field.is_map() && p.key.is_none() {
                err(
                    arg(i).map_or(call.col, |x| x.col),
                    format!("{}: the target must be a string, not a map", call.name),
                )
            } else {
                Ok(p)
            }
        };
        let regex = |i: usize| self.regex(call, arg(i));
        let value = |i: usize| match arg(i) {
            Some(x) => self.expr(&x.value),
            None => Ok(Ex::Lit(Val::Nil)),
        };
        // the optional `function` (a hash converter, named bare) and `replacementFormat`
        let post = |from: usize| -> Result<Post, CompileError> {
            let hash = match arg(from).map(|x| (&x.value, x.col)) {
                None => None,
                Some((Expr::Enum(name, _), col)) => match Hash::by_name(name) {
                    Some(h) => Some(h),
                    None => {
                        return err(
                            col,
                            format!(
                                "{}: function must be one of SHA1, SHA256, SHA512, MD5, FNV",
                                call.name
                            ),
                        )
                    }
                },
                Some((_, col)) => {
                    return err(
                        col,
                        format!(
                            "{}: function must name a hash converter (e.g. SHA256)",
                            call.name
                        ),
                    )
                }
            };
            let format = match arg(from + 1) {
                None => None,
                Some(x) => {
                    let f = self.literal_str(call, Some(x), "replacementFormat")?;
                    if f.matches("%s").count() != 1 || f.replace("%s", "").contains('%') {
                        return err(
                            x.col,
                            format!(
                                "{}: replacementFormat must contain exactly one %s and no other verb",
                                call.name
                            ),
                        );
                    }
                    Some(f.to_string())
                }
            };
            Ok(Post { hash, format })
        };
        Ok(match call.name.as_str() {
            "set" => {
                let t = target(0)?;
                if matches!(
                    t.field,
                    Field::TraceIdString
                        | Field::SpanIdString
                        | Field::ParentSpanIdString
                        | Field::MetricType
                ) {
                    return err(call.col, "set: this path is read-only");
                }
                Editor::Set(t, value(1)?)
            }
            "delete_key" => Editor::DeleteKey(map_target(0)?, value(1)?),
            "delete_matching_keys" => Editor::DeleteMatchingKeys(map_target(0)?, regex(1)?),
            "keep_matching_keys" => Editor::KeepMatchingKeys(map_target(0)?, regex(1)?),
            "keep_keys" => Editor::KeepKeys(map_target(0)?, self.strings(call, arg(1))?),
            "limit" => Editor::Limit(
                map_target(0)?,
                self.size(call, arg(1))?,
                self.strings(call, arg(2))?,
            ),
            "truncate_all" => Editor::TruncateAll(map_target(0)?, self.size(call, arg(1))?),
            "replace_pattern" => {
                Editor::ReplacePattern(string_target(0)?, regex(1)?, value(2)?, post(3)?)
            }
            "replace_all_patterns" => {
                let keys = match arg(1).map(|x| &x.value) {
                    Some(Expr::Str(m)) if m == "key" => true,
                    Some(Expr::Str(m)) if m == "value" => false,
                    _ => {
                        return err(
                            arg(1).map_or(call.col, |x| x.col),
                            "replace_all_patterns: mode must be \"key\" or \"value\"",
                        )
                    }
                };
                Editor::ReplaceAllPatterns(map_target(0)?, keys, regex(2)?, value(3)?, post(4)?)
            }
            "replace_match" => Editor::ReplaceMatch(
                string_target(0)?,
                self.glob(call, arg(1))?,
                value(2)?,
                post(3)?,
            ),
            "replace_all_matches" => Editor::ReplaceAllMatches(
                map_target(0)?,
                self.glob(call, arg(1))?,
                value(2)?,
                post(3)?,
            ),
            "append" => Editor::Append(target(0)?, value(1)?, value(2)?),
            "flatten" => {
                if let Some(x) = arg(3) {
                    if !matches!(x.value, Expr::Bool(false)) {
                        return err(
                            x.col,
                            "flatten: resolveConflicts is not supported by otelgw yet",
                        );
                    }
                }
                let prefix = match arg(1) {
                    None => String::new(),
                    Some(x) => self.literal_str(call, Some(x), "the prefix")?.to_string(),
                };
                let depth = match arg(2) {
                    None => None,
                    Some(_) => Some(self.size(call, arg(2))?),
                };
                Editor::Flatten(map_target(0)?, prefix, depth)
            }
            "merge_maps" => {
                let strategy = match arg(2).map(|x| &x.value) {
                    Some(Expr::Str(s)) if s == "insert" => Strategy::Insert,
                    Some(Expr::Str(s)) if s == "update" => Strategy::Update,
                    Some(Expr::Str(s)) if s == "upsert" => Strategy::Upsert,
                    _ => {
                        return err(
                            arg(2).map_or(call.col, |x| x.col),
                            "merge_maps: strategy must be \"insert\", \"update\" or \"upsert\"",
                        )
                    }
                };
                Editor::MergeMaps(map_target(0)?, value(1)?, strategy)
            }
            other => {
                return err(
                    call.col,
                    format!("{other} is a converter; a statement starts with an editor"),
                )
            }
        })
    }

    fn literal_str<'c>(
        &self,
        call: &parse::Call,
        a: Option<&'c parse::Arg>,
        what: &str,
    ) -> Result<&'c str, CompileError> {
        match a.map(|x| &x.value) {
            Some(Expr::Str(s)) => Ok(s),
            _ => err(
                a.map_or(call.col, |x| x.col),
                format!("{}: {what} must be a string literal", call.name),
            ),
        }
    }

    fn regex(&self, call: &parse::Call, a: Option<&parse::Arg>) -> Result<Regex, CompileError> {
        let s = self.literal_str(call, a, "the pattern")?;
        Regex::new(s).or_else(|e| {
            err(
                a.map_or(call.col, |x| x.col),
                format!("{}: invalid regular expression: {e}", call.name),
            )
        })
    }

    /// A glob (`*`, `?`, `[…]`, `{a,b}`) as an anchored regular expression.
    fn glob(&self, call: &parse::Call, a: Option<&parse::Arg>) -> Result<Regex, CompileError> {
        let s = self.literal_str(call, a, "the pattern")?;
        let mut re = String::from("^(?s:");
        let mut chars = s.chars();
        let mut in_alt = 0;
        while let Some(c) = chars.next() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                '[' => {
                    re.push('[');
                    for c in chars.by_ref() {
                        match c {
                            ']' => break,
                            '!' => re.push('^'),
                            '\\' => re.push_str("\\\\"),
                            c => re.push(c),
                        }
                    }
                    re.push(']');
                }
                '{' => {
                    in_alt += 1;
                    re.push_str("(?:");
                }
                '}' if in_alt > 0 => {
                    in_alt -= 1;
                    re.push(')');
                }
                ',' if in_alt > 0 => re.push('|'),
                '\\' => {
                    if let Some(n) = chars.next() {
                        re.push_str(&regex::escape(&n.to_string()));
                    }
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push_str(")$");
        Regex::new(&re).or_else(|e| {
            err(
                a.map_or(call.col, |x| x.col),
                format!("{}: invalid pattern: {e}", call.name),
            )
        })
    }

    fn strings(
        &self,
        call: &parse::Call,
        a: Option<&parse::Arg>,
    ) -> Result<Vec<String>, CompileError> {
        match a.map(|x| &x.value) {
            None => Ok(Vec::new()),
            Some(Expr::List(items)) => items
                .iter()
                .map(|e| match e {
                    Expr::Str(s) => Ok(s.clone()),
                    _ => err(
                        a.map_or(call.col, |x| x.col),
                        format!("{}: the keys must be string literals", call.name),
                    ),
                })
                .collect(),
            Some(_) => err(
                a.map_or(call.col, |x| x.col),
                format!("{}: expected a list of strings", call.name),
            ),
        }
    }

    fn size(&self, call: &parse::Call, a: Option<&parse::Arg>) -> Result<usize, CompileError> {
        match a.map(|x| &x.value) {
            Some(Expr::Int(n)) if *n >= 0 => Ok(*n as usize),
            _ => err(
                a.map_or(call.col, |x| x.col),
                format!("{}: the limit must be a non-negative integer", call.name),
            ),
        }
    }

    /// `Time`'s format (a string literal of strptime directives) and optional location.
    fn time_format(
        &self,
        call: &parse::Call,
        format: Option<&parse::Arg>,
        location: Option<&parse::Arg>,
    ) -> Result<TimeFormat, CompileError> {
        let f = self.literal_str(call, format, "the format")?;
        // the Collector's ctime directives that chrono spells differently
        let mut chrono = String::with_capacity(f.len());
        let mut chars = f.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                chrono.push(c);
                continue;
            }
            match chars.next() {
                Some('L') => chrono.push_str("%3f"),
                Some('f') => chrono.push_str("%6f"),
                Some('s') => chrono.push_str("%9f"),
                Some('q') => chrono.push_str("%3f"),
                Some('i') => chrono.push_str("%6f"),
                Some('J') => chrono.push_str("%3f"),
                Some('c') => chrono.push_str("%a %b %e %H:%M:%S %Y"),
                Some(o) => {
                    chrono.push('%');
                    chrono.push(o);
                }
                None => chrono.push('%'),
            }
        }
        let mut out = TimeFormat {
            has_offset: chrono.contains("%z") || chrono.contains("%Z"),
            chrono: chrono.replace("%Z", "%z"),
            offset_secs: 0,
            local: false,
        };
        if let Some(x) = location {
            let loc = self.literal_str(call, Some(x), "the location")?;
            match loc {
                "" | "UTC" | "Etc/UTC" | "GMT" => {}
                "Local" => out.local = true,
                other => match chrono::DateTime::parse_from_str(&format!("2000-01-01T00:00:00{other}"), "%Y-%m-%dT%H:%M:%S%:z") {
                    Ok(d) => out.offset_secs = d.offset().local_minus_utc(),
                    Err(_) => {
                        return err(
                            x.col,
                            format!("Time: location {other:?} is not supported (UTC, Local or an offset like +02:00; otelgw has no time zone database)"),
                        )
                    }
                },
            }
        }
        // check the format once, so a typo is a config error and not a runtime one per item
        if chrono::format::StrftimeItems::new(&out.chrono)
            .any(|i| matches!(i, chrono::format::Item::Error))
        {
            return err(
                format.map_or(call.col, |x| x.col),
                format!("Time: invalid format {f:?}"),
            );
        }
        Ok(out)
    }

    fn converter(&self, call: &parse::Call) -> Result<Conv, CompileError> {
        if !call.name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return err(
                call.col,
                format!("{} is an editor; only converters return values", call.name),
            );
        }
        let a = self.args(call)?;
        let arg = |i: usize| a.get(i).copied().flatten();
        let f = match call.name.as_str() {
            "Concat" => ConvFn::Concat,
            "ConvertCase" => {
                ConvFn::ConvertCase(match self.literal_str(call, arg(1), "toCase")? {
                    "lower" => Case::Lower,
                    "upper" => Case::Upper,
                    "snake" => Case::Snake,
                    "camel" => Case::Camel,
                    _ => {
                        return err(
                            arg(1).map_or(call.col, |x| x.col),
                            "ConvertCase: toCase must be lower, upper, snake or camel",
                        )
                    }
                })
            }
            "Int" => ConvFn::Int,
            "Double" => ConvFn::Double,
            "String" => ConvFn::String,
            "IsMatch" => ConvFn::IsMatch(self.regex(call, arg(1))?),
            "IsString" => ConvFn::IsString,
            "IsInt" => ConvFn::IsInt,
            "IsDouble" => ConvFn::IsDouble,
            "IsBool" => ConvFn::IsBool,
            "IsMap" => ConvFn::IsMap,
            "IsList" => ConvFn::IsList,
            "Len" => ConvFn::Len,
            name @ ("SHA1" | "SHA256" | "SHA512" | "MD5" | "FNV") => {
                ConvFn::Hash(Hash::by_name(name).unwrap_or(Hash::Sha256))
            }
            "Trim" => ConvFn::Trim,
            "Format" => ConvFn::Format,
            "Now" => ConvFn::Now,
            "Time" => ConvFn::Time(self.time_format(call, arg(1), arg(2))?),
            "Unix" => ConvFn::Unix,
            "UnixNano" => ConvFn::UnixPart(1),
            "UnixMicro" => ConvFn::UnixPart(1_000),
            "UnixMilli" => ConvFn::UnixPart(1_000_000),
            "UnixSeconds" => ConvFn::UnixPart(1_000_000_000),
            "Substring" => ConvFn::Substring,
            "Split" => ConvFn::Split,
            "ParseJSON" => ConvFn::ParseJson,
            "ExtractPatterns" => {
                let re = self.regex(call, arg(1))?;
                if re.capture_names().flatten().next().is_none() {
                    return err(
                        arg(1).map_or(call.col, |x| x.col),
                        "ExtractPatterns: the pattern needs at least one named group",
                    );
                }
                ConvFn::ExtractPatterns(re)
            }
            "TraceID" => ConvFn::TraceId,
            "SpanID" => ConvFn::SpanId,
            "Hex" => ConvFn::Hex,
            other => {
                return err(
                    call.col,
                    format!("{other} is an editor; only converters return values"),
                )
            }
        };
        // literal arguments the function consumed at compile time are still evaluated
        // (cheaply) so positions stay aligned
        let args = a
            .iter()
            .map(|x| x.map_or(Ok(Ex::Lit(Val::Nil)), |x| self.expr(&x.value)))
            .collect::<Result<_, _>>()?;
        let key = match call.keys.as_slice() {
            [] => None,
            [Key::Str(k)] => Some(k.clone()),
            _ => {
                return err(
                    call.col,
                    "only one string index on a converter's result is supported",
                )
            }
        };
        Ok(Conv { f, args, key })
    }

    fn expr(&self, e: &Expr) -> Result<Ex, CompileError> {
        Ok(match e {
            Expr::Nil => Ex::Lit(Val::Nil),
            Expr::Bool(b) => Ex::Lit(Val::Bool(*b)),
            Expr::Int(i) => Ex::Lit(Val::Int(*i)),
            Expr::Float(f) => Ex::Lit(Val::Float(*f)),
            Expr::Str(s) => Ex::Lit(Val::Str(s.clone().into())),
            Expr::Bytes(b) => Ex::Lit(Val::Bytes(b.clone().into())),
            Expr::Enum(name, col) => match super::paths::enum_value(name) {
                Some(v) => Ex::Lit(Val::Int(v)),
                None => return err(*col, format!("unknown enum {name}")),
            },
            Expr::Path(p) => Ex::Get(self.path(p)?),
            Expr::Call(c) => Ex::Conv(Box::new(self.converter(c)?)),
            Expr::List(items) => Ex::List(
                items
                    .iter()
                    .map(|x| self.expr(x))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Map(entries) => Ex::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.expr(v)?)))
                    .collect::<Result<_, CompileError>>()?,
            ),
            Expr::Math(a, op, b) => Ex::Math(Box::new(self.expr(a)?), *op, Box::new(self.expr(b)?)),
            Expr::Neg(a) => Ex::Neg(Box::new(self.expr(a)?)),
            Expr::Cond(c) => Ex::Cond(Box::new(self.cond(c)?)),
        })
    }

    fn cond(&self, c: &Cond) -> Result<Co, CompileError> {
        Ok(match c {
            Cond::Or(v) => Co::Or(v.iter().map(|x| self.cond(x)).collect::<Result<_, _>>()?),
            Cond::And(v) => Co::And(v.iter().map(|x| self.cond(x)).collect::<Result<_, _>>()?),
            Cond::Not(x) => Co::Not(Box::new(self.cond(x)?)),
            Cond::Cmp(a, op, b) => Co::Cmp(self.expr(a)?, *op, self.expr(b)?),
            Cond::Value(e) => {
                if let Expr::Str(_)
                | Expr::Int(_)
                | Expr::Float(_)
                | Expr::Nil
                | Expr::List(_)
                | Expr::Map(_) = e
                {
                    return err(1, "a condition must be a boolean expression");
                }
                Co::Value(self.expr(e)?)
            }
        })
    }

    fn path(&self, p: &parse::Path) -> Result<Place, CompileError> {
        super::paths::resolve(self.ctx, p)
    }
}
