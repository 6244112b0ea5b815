//! Environment expansion in config values, as the Collector does it: `${env:VAR}`,
//! `${env:VAR:-default}`, `${VAR}`, and `$$` for a literal `$`. Expansion runs on parsed YAML
//! string values (never on raw text, so a value cannot inject YAML structure). A value that is
//! exactly one reference takes the type of what it expands to (`limit_mib: ${env:LIMIT}` with
//! `LIMIT=400` is the integer 400), as in the Collector.

use serde_norway::Value;

/// Expands every string in `value`. Unset variables without a default expand to the empty
/// string and are reported in `unset` (the Collector does the same, silently).
pub fn expand_value(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) {
    match value {
        Value::String(s) => {
            if !s.contains('$') {
                return;
            }
            let whole_ref = is_single_reference(s);
            let expanded = expand_str(s, lookup, unset);
            if whole_ref {
                if let Ok(typed @ (Value::Number(_) | Value::Bool(_))) =
                    serde_norway::from_str::<Value>(&expanded)
                {
                    *value = typed;
                    return;
                }
            }
            *s = expanded;
        }
        Value::Sequence(seq) => seq.iter_mut().for_each(|v| expand_value(v, lookup, unset)),
        Value::Mapping(map) => map
            .iter_mut()
            .for_each(|(_, v)| expand_value(v, lookup, unset)),
        Value::Tagged(t) => expand_value(&mut t.value, lookup, unset),
        _ => {}
    }
}

fn is_single_reference(s: &str) -> bool {
    s.starts_with("${") && s.ends_with('}') && s[2..].find('}') == Some(s.len() - 3)
}

/// Expands references in one string.
pub fn expand_str(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body_start) = after.strip_prefix('{') {
            match body_start.find('}') {
                Some(end) => {
                    let body = &body_start[..end];
                    let body = body.strip_prefix("env:").unwrap_or(body);
                    let (name, default) = match body.find(":-") {
                        Some(i) => (&body[..i], Some(&body[i + 2..])),
                        None => (body, None),
                    };
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => match default {
                            Some(d) => out.push_str(d),
                            None => unset.push(name.to_string()),
                        },
                    }
                    rest = &body_start[end + 1..];
                }
                None => {
                    out.push_str(&rest[pos..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("tempo".into()),
            "LIMIT" => Some("400".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_all_forms() {
        let mut unset = vec![];
        assert_eq!(
            expand_str("http://${env:HOST}:4317", &env, &mut unset),
            "http://tempo:4317"
        );
        assert_eq!(expand_str("${HOST}", &env, &mut unset), "tempo");
        assert_eq!(expand_str("${env:NOPE:-dflt}", &env, &mut unset), "dflt");
        assert_eq!(expand_str("cost $$5 $x", &env, &mut unset), "cost $5 $x");
        assert!(unset.is_empty());
        assert_eq!(expand_str("a${env:MISSING}b", &env, &mut unset), "ab");
        assert_eq!(unset, vec!["MISSING".to_string()]);
    }

    #[test]
    fn single_reference_takes_the_type_of_its_value() {
        let mut v: Value =
            serde_norway::from_str("{limit: '${env:LIMIT}', host: '${HOST}', s: 'x${LIMIT}'}")
                .unwrap();
        let mut unset = vec![];
        expand_value(&mut v, &env, &mut unset);
        assert_eq!(v["limit"], Value::Number(400.into()));
        assert_eq!(v["host"], Value::String("tempo".into()));
        assert_eq!(v["s"], Value::String("x400".into()));
    }
}
