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
            let place = Place::at(Field::Attributes(Owner::Item), Some(key.clone()));
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
            t.get(&Place::at(
                Field::Attributes(Owner::Item),
                Some("out".into()),
            ))
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

/// Runs `stmt` on the test log and reads `attributes[key]` afterwards.
fn after(stmt: &str, key: &str) -> Val<'static> {
    let s = compile_statement(Context::Log, stmt).unwrap_or_else(|e| panic!("{stmt}: {e}"));
    with_log(|t| {
        s.execute(t).unwrap_or_else(|e| panic!("{stmt}: {e}"));
        t.get(&Place::at(Field::Attributes(Owner::Item), Some(key.into())))
            .map(Val::into_owned)
            .unwrap()
    })
}

/// The reference's examples for the converters added with the time, hash and format families.
#[test]
fn time_hash_trim_and_format_converters() {
    let str_ = |v: &str| Val::Str(Cow::Owned(v.to_string()));
    let out = |stmt: &str| after(&format!("set(attributes[\"out\"], {stmt})"), "out");
    assert_eq!(
        out("Trim(\" this is a test \", \" \")"),
        str_("this is a test")
    );
    assert_eq!(
        out("Trim(\"!!this is a test!!\", \"!!\")"),
        str_("this is a test")
    );
    assert_eq!(out("Trim(\"  x  \")"), str_("x"));
    assert_eq!(
        out("Format(\"%s-%d-%.2f-%t-%%\", [\"a\", 7, 1.5, true])"),
        str_("a-7-1.50-true-%")
    );
    assert_eq!(out("Format(\"%d\", [\"x\"])"), str_("%!d(string=x)"));
    assert_eq!(
        out("Format(\"%s %s\", [\"one\"])"),
        str_("one %!s(MISSING)")
    );
    assert_eq!(
        out("Time(\"2023-05-26 12:34:56\", \"%Y-%m-%d %H:%M:%S\")"),
        Val::Int(1_685_104_496_000_000_000)
    );
    assert_eq!(
        out("Time(\"2023-05-26 12:34:56.789\", \"%Y-%m-%d %H:%M:%S.%L\", \"+02:00\")"),
        Val::Int(1_685_104_496_789_000_000 - 7_200_000_000_000)
    );
    assert_eq!(
        out("Time(\"2023-05-26T12:34:56+0100\", \"%Y-%m-%dT%H:%M:%S%z\")"),
        Val::Int(1_685_100_896_000_000_000)
    );
    assert_eq!(
        out("UnixMilli(Time(\"2023-05-26\", \"%Y-%m-%d\"))"),
        Val::Int(1_685_059_200_000)
    );
    assert_eq!(out("UnixNano(Unix(2, 5))"), Val::Int(2_000_000_005));
    assert_eq!(
        out("UnixSeconds(Unix(1700000000))"),
        Val::Int(1_700_000_000)
    );
    let Val::Int(now) = out("UnixSeconds(Now())") else {
        panic!("Now is a time")
    };
    assert!(now > 1_700_000_000, "{now}");
    assert_eq!(
        out("MD5(\"abc\")"),
        str_("900150983cd24fb0d6963f7d28e17f72")
    );
    assert_eq!(
        out("SHA1(\"abc\")"),
        str_("a9993e364706816aba3e25717850c26c9cd0d89d")
    );
    assert_eq!(out("FNV(\"hello world\")"), Val::Int(0x779a65e7023cd2e7));
    assert!(
        matches!(out("SHA512(\"abc\")"), Val::Str(s) if s.len() == 128 && s.starts_with("ddaf35a1"))
    );
    // a time that does not match is an evaluation error, a bad location a config error
    let s = compile_statement(
        Context::Log,
        "set(attributes[\"out\"], Time(\"yesterday\", \"%Y-%m-%d\"))",
    )
    .unwrap();
    assert!(with_log(|t| s.execute(t)).is_err());
    let e = compile_statement(
        Context::Log,
        "set(attributes[\"out\"], Time(\"2023-01-01\", \"%Y-%m-%d\", \"America/New_York\"))",
    )
    .unwrap_err();
    assert!(e.message.contains("not supported"), "{e}");
}

#[test]
fn append_and_flatten_edit_lists_and_maps() {
    let list = |v: Val<'_>| -> Vec<String> {
        let Val::Any(a) = v else {
            panic!("not a list: {v:?}")
        };
        let Some(any::Value::ArrayValue(arr)) = &a.value else {
            panic!("not a list")
        };
        arr.values
            .iter()
            .map(|x| match &x.value {
                Some(any::Value::StringValue(s)) => s.clone(),
                Some(any::Value::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    // a scalar becomes a list; a missing key a new list
    assert_eq!(
        list(after("append(attributes[\"s\"], \"prod\")", "s")),
        ["abc", "prod"]
    );
    assert_eq!(
        list(after(
            "append(attributes[\"tags\"], values = [\"staging\", \"staging:east\"])",
            "tags"
        )),
        ["staging", "staging:east"]
    );
    assert_eq!(list(after("append(attributes[\"n\"], 4)", "n")), ["3", "4"]);

    let s = compile_statement(
        Context::Log,
        "set(cache[\"m\"], ParseJSON(\"{\\\"name\\\": \\\"t\\\", \\\"address\\\": {\\\"street\\\": \\\"first\\\", \\\"geo\\\": {\\\"lat\\\": 1}}, \\\"occupants\\\": [\\\"u1\\\", \\\"u2\\\"]}\"))",
    )
    .unwrap();
    // flatten works on a map place: the cache itself
    let f = compile_statement(Context::Log, "flatten(attributes, \"app\")").unwrap();
    let keys = with_log(|t| {
        s.execute(t).unwrap();
        compile_statement(Context::Log, "set(attributes[\"m\"], cache[\"m\"])")
            .unwrap()
            .execute(t)
            .unwrap();
        f.execute(t).unwrap();
        let m = t
            .map(&Place::at(Field::Attributes(Owner::Item), None))
            .unwrap();
        let mut keys: Vec<String> = (0..m.slots())
            .filter_map(|i| m.key_at(i).map(str::to_string))
            .collect();
        keys.sort();
        keys
    });
    assert_eq!(
        keys,
        [
            "app.b",
            "app.f",
            "app.m.address.geo.lat",
            "app.m.address.street",
            "app.m.name",
            "app.m.occupants.0",
            "app.m.occupants.1",
            "app.n",
            "app.s"
        ]
    );
    let f = compile_statement(Context::Log, "flatten(attributes, depth=1)").unwrap();
    let keys = with_log(|t| {
        s.execute(t).unwrap();
        compile_statement(Context::Log, "set(attributes[\"m\"], cache[\"m\"])")
            .unwrap()
            .execute(t)
            .unwrap();
        f.execute(t).unwrap();
        let m = t
            .map(&Place::at(Field::Attributes(Owner::Item), None))
            .unwrap();
        (0..m.slots())
            .filter_map(|i| m.key_at(i).map(str::to_string))
            .filter(|k| k.starts_with("m."))
            .collect::<Vec<_>>()
    });
    assert_eq!(
        keys,
        ["m.address", "m.name", "m.occupants"],
        "one level only"
    );
    assert!(
        compile_statement(Context::Log, "flatten(attributes, resolveConflicts=true)")
            .unwrap_err()
            .message
            .contains("resolveConflicts")
    );
}

#[test]
fn replace_editors_hash_and_format_the_replacement() {
    let str_ = |v: &str| Val::Str(Cow::Owned(v.to_string()));
    let sha = |s: &str| {
        use sha2::Digest;
        sha2::Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        after(
            "replace_pattern(attributes[\"s\"], \"^a(b)c$\", \"$1\", SHA256, \"h=%s\")",
            "s"
        ),
        str_(&format!("h={}", sha("b")))
    );
    assert_eq!(
        after("replace_pattern(attributes[\"s\"], \"b\", \"X\", MD5)", "s"),
        str_(&format!("a{}c", {
            use md5::Digest;
            md5::Md5::digest(b"X")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        }))
    );
    assert_eq!(
        after(
            "replace_match(attributes[\"s\"], \"a*\", \"user\", SHA256, \"/user/%s\")",
            "s"
        ),
        str_(&format!("/user/{}", sha("user")))
    );
    assert_eq!(
        after("replace_all_matches(attributes, \"ab?\", \"v\", SHA1)", "s"),
        str_("7a38d8cbd20d9932ba948efaa364bb62651d5ad4")
    );
    assert_eq!(
        after(
            "replace_all_patterns(attributes, \"value\", \"bc\", \"Z\", FNV, \"#%s\")",
            "s"
        ),
        str_(&format!("a#{}", {
            let mut x: u64 = 0xcbf2_9ce4_8422_2325;
            x ^= u64::from(b'Z');
            x = x.wrapping_mul(0x0100_0000_01b3);
            x as i64
        }))
    );
    for bad in [
        "replace_pattern(attributes[\"s\"], \"b\", \"X\", Concat)",
        "replace_pattern(attributes[\"s\"], \"b\", \"X\", SHA256, \"%s and %s\")",
        "replace_pattern(attributes[\"s\"], \"b\", \"X\", SHA256, \"%d\")",
    ] {
        assert!(compile_statement(Context::Log, bad).is_err(), "{bad}");
    }
}

#[test]
fn nested_indexes_read_and_write_into_maps_and_lists() {
    let run = |stmts: &[&str], cond: &str| -> bool {
        let stmts: Vec<_> = stmts
            .iter()
            .map(|s| compile_statement(Context::Log, s).unwrap_or_else(|e| panic!("{s}: {e}")))
            .collect();
        let c = compile_condition(Context::Log, cond).unwrap_or_else(|e| panic!("{cond}: {e}"));
        with_log(|t| {
            for s in &stmts {
                s.execute(t).unwrap();
            }
            c.matches(t).unwrap()
        })
    };
    let parse = "set(attributes[\"j\"], ParseJSON(\"{\\\"http\\\": {\\\"status\\\": 503, \\\"hosts\\\": [\\\"a\\\", \\\"b\\\"]}}\"))";
    assert!(run(
        &[parse],
        "attributes[\"j\"][\"http\"][\"status\"] == 503"
    ));
    assert!(run(
        &[parse],
        "attributes[\"j\"][\"http\"][\"hosts\"][1] == \"b\""
    ));
    assert!(run(
        &[parse],
        "attributes[\"j\"][\"http\"][\"missing\"][\"x\"] == nil"
    ));
    assert!(run(
        &[parse],
        "attributes[\"j\"][\"http\"][\"hosts\"][7] == nil"
    ));
    // writing below a key rebuilds the enclosing value; missing maps are created
    assert!(run(
        &[parse, "set(attributes[\"j\"][\"http\"][\"status\"], 200)"],
        "attributes[\"j\"][\"http\"][\"status\"] == 200 and attributes[\"j\"][\"http\"][\"hosts\"][0] == \"a\""
    ));
    assert!(run(
        &["set(attributes[\"new\"][\"a\"][\"b\"], \"deep\")"],
        "attributes[\"new\"][\"a\"][\"b\"] == \"deep\""
    ));
    assert!(run(
        &[
            parse,
            "set(attributes[\"j\"][\"http\"][\"hosts\"][0], \"z\")"
        ],
        "attributes[\"j\"][\"http\"][\"hosts\"][0] == \"z\""
    ));
    // a list index past the end is an evaluation error, not a panic; an int key on a map a
    // config error
    let s = compile_statement(
        Context::Log,
        "set(attributes[\"j\"][\"http\"][\"hosts\"][9], \"z\")",
    )
    .unwrap();
    let p = compile_statement(Context::Log, parse).unwrap();
    assert!(with_log(|t| {
        p.execute(t).unwrap();
        s.execute(t)
    })
    .is_err());
    assert!(compile_statement(Context::Log, "set(attributes[0], 1)").is_err());
}
