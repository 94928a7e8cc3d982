//! The JSON report is a contract: its JSON Schema is generated from the Rust types (schemars)
//! and shipped as schema/report.schema.json; every report the tests parse is validated against
//! the shipped file (tests/common/mod.rs, `Output::json`).

use atlas_iam::report::{Report, SCHEMA_VERSION};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json");

/// The schema of what atlas-iam writes (serialize mode: a field skipped when empty is optional),
/// with `schema_version` pinned to this version.
fn generated() -> String {
    let root = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<Report>();
    let mut schema = serde_json::to_value(root).expect("schema");
    schema["properties"]["schema_version"]["const"] = serde_json::json!(SCHEMA_VERSION);
    format!("{}\n", serde_json::to_string_pretty(&schema).expect("json"))
}

#[test]
fn the_shipped_schema_is_the_one_the_types_generate() {
    let now = generated();
    if std::env::var_os("ATLAS_IAM_WRITE_SCHEMA").is_some() {
        std::fs::write(SHIPPED, &now).expect("write the schema");
    }
    let shipped = std::fs::read_to_string(SHIPPED).unwrap_or_default();
    assert!(
        shipped == now,
        "schema/report.schema.json is out of date with the report types: regenerate it with \
         `ATLAS_IAM_WRITE_SCHEMA=1 cargo test --test integration schema::` (and raise SCHEMA_VERSION if a field \
         changed meaning or went away)"
    );
    let schema: serde_json::Value = serde_json::from_str(&shipped).expect("json");
    let required = schema["required"].as_array().expect("required");
    for field in ["schema_version", "command", "ok", "exit_code", "stages"] {
        assert!(required.iter().any(|r| r == field), "{field} is required");
    }
}

#[test]
fn the_schema_refuses_what_a_report_never_is() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SHIPPED).expect("schema")).expect("json");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let good = serde_json::json!({
        "schema_version": SCHEMA_VERSION, "command": "ping", "ok": false, "exit_code": 5,
        "target": null, "credentials": null, "identity": null,
        "stages": [{"stage": "tcp", "status": "failed", "elapsed_ms": 3, "detail": "",
                    "diagnosis": {"kind": "tcp_refused", "cause": "refused", "hint": "check"}}]
    });
    assert!(
        validator.is_valid(&good),
        "{:?}",
        validator.validate(&good).err()
    );
    for bad in [
        serde_json::json!({"command": "ping"}),
        {
            let mut b = good.clone();
            b["stages"][0]["stage"] = "network".into();
            b
        },
        {
            let mut b = good.clone();
            b["stages"][0]["diagnosis"]["kind"] = "no_such_kind".into();
            b
        },
        {
            let mut b = good.clone();
            b["exit_code"] = "5".into();
            b
        },
        {
            let mut b = good.clone();
            b["schema_version"] = 2.into();
            b
        },
    ] {
        assert!(!validator.is_valid(&bad), "accepted: {bad}");
    }
}
