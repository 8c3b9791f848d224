//! Property tests of the template renderer: any template text compiles or fails naming its
//! part, any customer data renders or fails naming the part or field, and never a panic.

use proptest::prelude::*;
use serde_json::{Map, Value};
use tact_delivery::{Error, Template, TemplateData, TemplateSource};

/// Template fragments: text, variables, filters, blocks and broken syntax.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ,.!]{0,10}",
        Just("{{ name }}".to_owned()),
        Just("{{ name or \"there\" }}".to_owned()),
        Just("{{ plan | upper }}".to_owned()),
        Just("{{ unknown_variable }}".to_owned()),
        Just("{% if plan %}gold{% endif %}".to_owned()),
        Just("{% for x in [1, 2] %}{{ x }}{% endfor %}".to_owned()),
        Just("{{".to_owned()),
        Just("{% if %}".to_owned()),
        Just("{{ 1 / 0 }}".to_owned()),
        Just("{{ name[0] }}".to_owned()),
        Just("\r\nBcc: x@example.com\r\n".to_owned()),
        "\\PC{0,8}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..6).prop_map(|parts| parts.concat())
}

fn data() -> impl Strategy<Value = TemplateData> {
    let value = prop_oneof![
        "\\PC{0,16}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        Just(Value::from("line\r\nBcc: x@example.com")),
    ];
    (prop::option::of("\\PC{0,16}"), prop::option::of(value)).prop_map(|(name, plan)| {
        let mut fields = Map::new();
        if let Some(plan) = plan {
            fields.insert("plan".to_owned(), plan);
        }
        TemplateData {
            name,
            email: Some("ann@example.com".to_owned()),
            fields,
            ..TemplateData::default()
        }
    })
}

fn part_named(message: &str) -> bool {
    ["subject", "text", "html", "field"]
        .iter()
        .any(|part| message.contains(part))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn template_render_never_panics(
        subject in text(),
        body in text(),
        html in prop::option::of(text()),
        data in data(),
    ) {
        let source = TemplateSource { subject, text: body, html };
        let template = match Template::compile(&source, ["plan"]) {
            Ok(template) => template,
            Err(error) => {
                prop_assert!(
                    matches!(error, Error::InvalidTemplate { .. } | Error::UnknownField { .. }),
                    "{error:?}"
                );
                prop_assert!(part_named(&error.to_string()), "{error}");
                return Ok(());
            }
        };
        match template.render(&data) {
            Ok(rendered) => prop_assert_eq!(rendered.subject.trim(), rendered.subject.as_str()),
            Err(error) => prop_assert!(part_named(&error.to_string()), "{error}"),
        }
    }
}
