//! Table-driven tests: one row per action and case; invalid actions name their path.

use super::*;
use crate::testdata::{kv, s};

fn actions(yaml: &str) -> Vec<Action> {
    let cfgs: Vec<ActionConfig> = serde_norway::from_str(yaml).unwrap();
    let mut d = Diagnostics::default();
    let a = compile_all(&cfgs, "actions", &mut d);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    a
}

fn attrs() -> Vec<KeyValue> {
    vec![
        kv("http.url", s("https://shop.example.com:8443/cart?id=7")),
        kv("user.email", s("ann@example.com")),
        kv("status", s("404")),
        kv("ratio", Value::DoubleValue(0.75)),
        kv("secret.token", s("t0k")),
        kv("secret.key", s("k3y")),
    ]
}

pub(crate) fn get(a: &[KeyValue], k: &str) -> Option<Value> {
    a.iter()
        .find(|kv| kv.key == k)
        .and_then(|kv| kv.value.clone()?.value)
}

pub(crate) fn meta() -> RequestMeta {
    RequestMeta {
        client_address: Some("10.1.2.3:5555".parse().unwrap()),
        headers: vec![("x-tenant".into(), "acme".into())],
        wire_size: 0,
        auth: None,
    }
}

#[test]
fn each_action_does_what_the_collector_does() {
    type Check = fn(&[KeyValue]) -> bool;
    let table: Vec<(&str, &str, Check)> = vec![
        ("insert adds a missing key", "[{key: env, value: prod, action: insert}]", |a| get(a, "env") == Some(s("prod"))),
        ("insert keeps an existing key", "[{key: status, value: '200', action: insert}]", |a| get(a, "status") == Some(s("404"))),
        ("update changes an existing key", "[{key: status, value: 500, action: update}]", |a| get(a, "status") == Some(Value::IntValue(500))),
        ("update ignores a missing key", "[{key: env, value: prod, action: update}]", |a| get(a, "env").is_none()),
        ("upsert adds", "[{key: env, value: true, action: upsert}]", |a| get(a, "env") == Some(Value::BoolValue(true))),
        ("upsert replaces", "[{key: ratio, value: 1.5, action: upsert}]", |a| get(a, "ratio") == Some(Value::DoubleValue(1.5))),
        ("from_attribute copies", "[{key: copy, from_attribute: status, action: insert}]", |a| get(a, "copy") == Some(s("404"))),
        ("from_attribute missing leaves all", "[{key: copy, from_attribute: nope, action: insert}]", |a| get(a, "copy").is_none() && a.len() == 6),
        ("from_context metadata", "[{key: tenant, from_context: metadata.X-Tenant, action: upsert}]", |a| get(a, "tenant") == Some(s("acme"))),
        ("from_context client.address", "[{key: client, from_context: client.address, action: upsert}]", |a| get(a, "client") == Some(s("10.1.2.3"))),
        ("delete by key", "[{key: user.email, action: delete}]", |a| get(a, "user.email").is_none() && a.len() == 5),
        ("delete by pattern", "[{pattern: '^secret\\.', action: delete}]", |a| a.len() == 4 && get(a, "secret.key").is_none()),
        (
            "hash is sha-256 hex",
            "[{key: user.email, action: hash}]",
            |a| matches!(get(a, "user.email"), Some(Value::StringValue(h)) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())),
        ),
        ("hash by pattern", "[{pattern: '^secret', action: hash}]", |a| matches!(get(a, "secret.key"), Some(Value::StringValue(h)) if h.len() == 64)),
        (
            "extract named groups",
            "[{key: http.url, pattern: '^(?P<scheme>[a-z]+)://(?P<host>[^:/]+)', action: extract}]",
            |a| get(a, "scheme") == Some(s("https")) && get(a, "host") == Some(s("shop.example.com")) && get(a, "http.url").is_some(),
        ),
        ("extract without match changes nothing", "[{key: status, pattern: '^(?P<x>[a-z]+)$', action: extract}]", |a| a.len() == 6),
        ("convert string to int", "[{key: status, action: convert, converted_type: int}]", |a| get(a, "status") == Some(Value::IntValue(404))),
        ("convert double to string", "[{key: ratio, action: convert, converted_type: string}]", |a| get(a, "ratio") == Some(s("0.75"))),
        ("convert failure leaves the value", "[{key: user.email, action: convert, converted_type: double}]", |a| get(a, "user.email") == Some(s("ann@example.com"))),
        (
            "actions run in order",
            "[{key: a, value: x, action: insert}, {key: b, from_attribute: a, action: insert}, {key: a, action: delete}]",
            |a| get(a, "a").is_none() && get(a, "b") == Some(s("x")),
        ),
    ];
    for (name, yaml, check) in table {
        let mut a = attrs();
        apply(&actions(yaml), &mut a, &meta());
        assert!(check(&a), "{name}: {a:?}");
    }
    // the exact digest, computed independently: sha256("ann@example.com")
    let mut a = attrs();
    apply(
        &actions("[{key: user.email, action: hash}]"),
        &mut a,
        &meta(),
    );
    let expected = {
        let d = Sha256::digest(b"ann@example.com");
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(get(&a, "user.email"), Some(s(&expected)));
}

#[test]
fn invalid_actions_name_their_path() {
    let cfgs: Vec<ActionConfig> = serde_norway::from_str(
        "[{action: insert, value: x}, {key: a, action: upsert}, {action: delete}, {key: u, pattern: '(', action: extract}, {key: u, pattern: '[a-z]+', action: extract}, {key: c, action: convert, converted_type: bool}, {key: c, from_context: auth.user, action: insert}]",
    )
    .unwrap();
    let mut d = Diagnostics::default();
    compile_all(&cfgs, "processors.attributes.actions", &mut d);
    let paths: Vec<&str> = d.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "processors.attributes.actions[0].key",
            "processors.attributes.actions[1]",
            "processors.attributes.actions[2]",
            "processors.attributes.actions[3].pattern",
            "processors.attributes.actions[4].pattern",
            "processors.attributes.actions[5].converted_type",
            "processors.attributes.actions[6].from_context",
        ],
        "{:?}",
        d.errors
    );
}
