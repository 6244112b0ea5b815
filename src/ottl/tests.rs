//! Evaluation semantics as the OTTL documentation states them, on a decoded log record.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use proptest::prelude::*;

use super::targets::{LogTarget, Outer};
use super::*;
use crate::testdata;

fn with_log<R>(f: impl FnOnce(&mut LogTarget) -> R) -> R {
    let mut log = LogRecord {
        severity_number: 13,
        body: Some(testdata::kv("", testdata::s("hello world")).value.unwrap()),
        attributes: vec![
            testdata::kv("n", any::Value::IntValue(3)),
            testdata::kv("f", any::Value::DoubleValue(3.0)),
            testdata::kv("s", testdata::s("abc")),
            testdata::kv("b", any::Value::BoolValue(true)),
        ],
        ..Default::default()
    };
    let (mut resource, mut scope, mut cache) = (None, None, Vec::<KeyValue>::new());
    let mut t = LogTarget {
        log: &mut log,
        outer: Outer {
            resource: &mut resource,
            scope: Some(&mut scope),
            cache: &mut cache,
        },
    };
    f(&mut t)
}

use opentelemetry_proto::tonic::common::v1::any_value as any;

fn holds(cond: &str) -> bool {
    let c = compile_condition(Context::Log, cond).unwrap_or_else(|e| panic!("{cond}: {e}"));
    with_log(|t| c.matches(t).unwrap_or_else(|e| panic!("{cond}: {e}")))
}

#[test]
fn comparisons_follow_the_documented_rules() {
    for (cond, want) in [
        ("attributes[\"n\"] == 3", true),
        ("attributes[\"n\"] == attributes[\"f\"]", true),
        ("attributes[\"n\"] < 3.5", true),
        ("attributes[\"s\"] == \"abc\"", true),
        ("attributes[\"s\"] < \"abd\"", true),
        ("attributes[\"s\"] == 3", false),
        ("attributes[\"s\"] != 3", true),
        ("attributes[\"missing\"] == nil", true),
        ("attributes[\"n\"] != nil", true),
        ("attributes[\"b\"] == true", true),
        ("attributes[\"b\"] > false", false),
        ("attributes[\"b\"]", true),
        (
            "not attributes[\"b\"] or severity_number == SEVERITY_NUMBER_WARN",
            true,
        ),
        ("(attributes[\"n\"] + 1) * 2 == 8", true),
        ("attributes[\"n\"] / 2 == 1", true),
        ("attributes[\"f\"] / 2 == 1.5", true),
        ("-attributes[\"n\"] == -3", true),
        ("IsMatch(body, \"^hello\") and Len(body) == 11", true),
        ("severity_number >= SEVERITY_NUMBER_WARN2", false),
        ("SEVERITY_NUMBER_FATAL4 == 24", true),
    ] {
        assert_eq!(holds(cond), want, "{cond}");
    }
}

#[test]
fn evaluation_errors_are_errors_not_panics() {
    for cond in [
        "attributes[\"s\"] * 2 == 1",
        "attributes[\"n\"] / 0 == 1",
        "attributes[\"s\"]",
        "Substring(body, 5, 100) == \"x\"",
    ] {
        let c = compile_condition(Context::Log, cond).unwrap();
        assert!(with_log(|t| c.matches(t)).is_err(), "{cond}");
    }
}

proptest! {
    /// `set` then a read of the same path gives the value back, for every value type.
    #[test]
    fn set_then_read_returns_the_value(key in "[a-z.]{1,12}", kind in 0u8..5, n in any::<i64>(), text in "\\PC{0,20}") {
        let literal = match kind {
            0 => n.to_string(),
            1 => format!("{:?}", text),
            2 => "true".to_string(),
            3 => format!("{}.5", n / 4),
            _ => format!("[{n}, {:?}]", text),
        };
        let stmt = compile_statement(Context::Log, &format!("set(attributes[{key:?}], {literal})")).unwrap();
        let read = compile_condition(Context::Log, &format!("attributes[{key:?}] == {literal}")).unwrap();
        with_log(|t| {
            stmt.execute(t).unwrap();
            prop_assert!(read.matches(t).unwrap());
            let place = Place { field: Field::Attributes(Owner::Item), key: Some(key.clone()) };
            prop_assert_ne!(t.get(&place).unwrap(), Val::Nil);
            Ok(())
        })?;
    }
}

#[test]
fn converters_return_what_the_reference_says() {
    let set = |stmt: &str| {
        let s = compile_statement(Context::Log, stmt).unwrap_or_else(|e| panic!("{stmt}: {e}"));
        with_log(|t| {
            s.execute(t).unwrap_or_else(|e| panic!("{stmt}: {e}"));
            t.get(&Place {
                field: Field::Attributes(Owner::Item),
                key: Some("out".into()),
            })
            .map(Val::into_owned)
            .unwrap()
        })
    };
    let str_ = |v: &str| Val::Str(Cow::Owned(v.to_string()));
    assert_eq!(
        set("set(attributes[\"out\"], Concat([\"a\", 1, true, nil], \"-\"))"),
        str_("a-1-true-")
    );
    assert_eq!(
        set("set(attributes[\"out\"], ConvertCase(\"HelloWorld\", \"snake\"))"),
        str_("hello_world")
    );
    assert_eq!(
        set("set(attributes[\"out\"], ConvertCase(\"hello_world\", \"camel\"))"),
        str_("HelloWorld")
    );
    assert_eq!(
        set("set(attributes[\"out\"], Double(\"2.5\"))"),
        Val::Float(2.5)
    );
    assert_eq!(set("set(attributes[\"out\"], Int(2.9))"), Val::Int(2));
    assert_eq!(set("set(attributes[\"out\"], String(12))"), str_("12"));
    assert_eq!(
        set("set(attributes[\"out\"], SHA256(\"abc\"))"),
        str_("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        set("set(attributes[\"out\"], ExtractPatterns(\"id=42\", \"id=(?P<id>\\\\d+)\")[\"id\"])"),
        str_("42")
    );
    assert_eq!(
        set("set(attributes[\"out\"], ParseJSON(\"{\\\"a\\\": {\\\"b\\\": 2}}\")[\"a\"])")
            .type_name(),
        "map"
    );
    assert_eq!(set("set(attributes[\"out\"], Hex(0x0aff))"), str_("0aff"));
    assert_eq!(
        set("set(attributes[\"out\"], IsMap(ParseJSON(\"{}\")))"),
        Val::Bool(true)
    );
    assert_eq!(
        set("set(attributes[\"out\"], Len(Split(\"a,b,c\", \",\")))"),
        Val::Int(3)
    );
}
