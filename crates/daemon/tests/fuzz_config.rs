//! Property tests of the configuration loader: any file text and any `TACT_*` variables
//! load or fail with an error that names the file, key or variable, and never panic.

use proptest::prelude::*;
use tact::config::{ConfigError, Settings};

/// Lines that are valid, mistyped or hostile configuration.
fn line() -> impl Strategy<Value = String> {
    let keys = prop_oneof![
        Just("database"),
        Just("http.listen"),
        Just("delivery.concurrency"),
        Just("delivery.lease"),
        Just("min_gap"),
        Just("overall"),
        Just("quiet_hours"),
        Just("purpose_caps.sales"),
        Just("timezone"),
        Just("unknown_key"),
    ];
    let values = prop_oneof![
        Just("\"24h\"".to_owned()),
        Just("\"-1d\"".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("{ max = 3, per = \"30d\" }".to_owned()),
        Just("{ max = \"\", per = \"30d\" }".to_owned()),
        Just("{ start = \"25:00\", end = \"08:00\" }".to_owned()),
        Just("\"Mars/Base\"".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        "\"[a-z0-9 .:]{0,12}\"",
    ];
    prop_oneof![
        (keys, values).prop_map(|(key, value)| format!("{key} = {value}")),
        Just("[delivery]".to_owned()),
        Just("[policy]".to_owned()),
        Just("[http]".to_owned()),
        "\\PC{0,20}",
    ]
}

fn variable() -> impl Strategy<Value = (String, String)> {
    let names = prop_oneof![
        Just("TACT_DELIVERY_CONCURRENCY"),
        Just("TACT_HTTP_LISTEN"),
        Just("TACT_POLICY_MIN_GAP"),
        Just("TACT_NO_SUCH_KEY"),
        Just("TACT_"),
    ];
    (names, "\\PC{0,12}").prop_map(|(name, value)| (name.to_owned(), value))
}

/// The parts of a message that must name what failed.
fn names_its_subject(error: &ConfigError) -> bool {
    let message = error.to_string();
    match error {
        ConfigError::Syntax { .. } | ConfigError::Read { .. } => message.contains("tact.toml"),
        _ => message.contains('`') || message.contains("TACT_") || message.contains("tact.toml"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn config_load_never_panics(
        lines in prop::collection::vec(line(), 0..12),
        variables in prop::collection::vec(variable(), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tact.toml");
        let text = format!(
            "[http]\napi_token = \"{}\"\n[links]\nsecret_key = \"{}\"\n{}\n",
            "t".repeat(32),
            "k".repeat(32),
            lines.join("\n")
        );
        std::fs::write(&path, text).unwrap();
        if let Err(error) = Settings::load(&path, variables) {
            prop_assert!(names_its_subject(&error), "{error}");
        }
    }
}
