//! Message templates: a subject, a plain-text part and an optional HTML part, rendered per
//! customer with minijinja.

use minijinja::value::{Enumerator, Object};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::Error;

/// Variables every template may use without importing them: the customer's `name`, `email`
/// and `account`, and the signed `unsubscribe_url` and `preferences_url`.
pub const BUILT_IN_VARIABLES: [&str; 5] = [
    "name",
    "email",
    "account",
    "unsubscribe_url",
    "preferences_url",
];

const PARTS: [(&str, &str); 3] = [
    ("subject", "subject.txt"),
    ("text", "text.txt"),
    ("html", "html.html"),
];

/// The source of a campaign's message, in minijinja syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSource {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part, if any. Values are HTML-escaped in it.
    pub html: Option<String>,
}

/// A compiled template whose variables are all known.
#[derive(Debug)]
pub struct Template {
    env: Environment<'static>,
    fields: BTreeSet<String>,
    has_html: bool,
}

/// The values one customer's message is rendered from.
///
/// A missing `name`, `email` or `account` renders as an empty string, so `{{ name or
/// "there" }}` works. Imported `fields` are top-level variables; a field with the name of a
/// built-in variable is ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateData {
    /// The customer's full name.
    pub name: Option<String>,
    /// The customer's email address.
    pub email: Option<String>,
    /// The account (company) name or id.
    pub account: Option<String>,
    /// Imported fields, such as `plan` or `renewal_date`.
    pub fields: Map<String, Value>,
    /// The customer's signed unsubscribe link.
    pub unsubscribe_url: String,
    /// The customer's signed preference-centre link.
    pub preferences_url: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// The subject, trimmed of surrounding white space.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part, if the template has one.
    pub html: Option<String>,
}

impl Template {
    /// Parses the template and checks that it uses only built-in variables and
    /// `known_fields` (the imported field names, the same for every customer).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTemplate`] for a syntax error and [`Error::UnknownField`] naming the
    /// first variable that is neither built in nor known.
    pub fn compile<I, S>(source: &TemplateSource, known_fields: I) -> Result<Template, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let known: BTreeSet<String> = known_fields
            .into_iter()
            .map(|field| field.as_ref().to_owned())
            .collect();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });

        let sources = [
            Some(&source.subject),
            Some(&source.text),
            source.html.as_ref(),
        ];
        let mut fields = BTreeSet::new();
        for ((part, name), text) in PARTS.into_iter().zip(sources) {
            let Some(text) = text else { continue };
            env.add_template_owned(name, text.clone())
                .map_err(|error| invalid_template(part, &error))?;
            fields.extend(check_variables(&env, part, name, &known)?);
        }
        Ok(Template {
            env,
            fields,
            has_html: source.html.is_some(),
        })
    }

    /// The imported fields the template uses, in name order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(String::as_str)
    }

    /// Renders the message for one customer.
    ///
    /// # Errors
    ///
    /// [`Error::MissingField`] naming a used field that `data.fields` lacks, and
    /// [`Error::Render`] when a filter or expression fails.
    pub fn render(&self, data: &TemplateData) -> Result<Rendered, Error> {
        if let Some(missing) = self.fields.iter().find(|f| !data.fields.contains_key(*f)) {
            return Err(Error::MissingField {
                field: missing.clone(),
            });
        }
        let context = context_value(data);
        let subject = self.render_part(0, &context)?.unwrap_or_default();
        let text = self.render_part(1, &context)?.unwrap_or_default();
        let html = self.render_part(2, &context)?;
        Ok(Rendered {
            subject: subject.trim().to_owned(),
            text,
            html,
        })
    }

    /// Renders only the plain-text part, after the same check for missing fields as
    /// [`Template::render`]. Callers that need only the text, such as the content rules,
    /// save rendering the subject and the HTML part.
    ///
    /// # Errors
    ///
    /// As [`Template::render`], for the text part.
    pub fn render_text(&self, data: &TemplateData) -> Result<String, Error> {
        if let Some(missing) = self.fields.iter().find(|f| !data.fields.contains_key(*f)) {
            return Err(Error::MissingField {
                field: missing.clone(),
            });
        }
        let context = context_value(data);
        Ok(self.render_part(1, &context)?.unwrap_or_default())
    }

    fn render_part(
        &self,
        index: usize,
        context: &minijinja::Value,
    ) -> Result<Option<String>, Error> {
        let (part, name) = PARTS[index];
        if part == "html" && !self.has_html {
            return Ok(None);
        }
        let template = self
            .env
            .get_template(name)
            .map_err(|error| render_error(part, &error))?;
        template
            .render(context)
            .map(Some)
            .map_err(|error| render_error(part, &error))
    }
}

/// Returns the imported fields a part uses, or the first unknown one as an error.
fn check_variables(
    env: &Environment<'static>,
    part: &'static str,
    name: &str,
    known: &BTreeSet<String>,
) -> Result<BTreeSet<String>, Error> {
    let template = env
        .get_template(name)
        .map_err(|error| invalid_template(part, &error))?;
    let globals: BTreeSet<&str> = env.globals().map(|(global, _)| global).collect();
    let mut used = BTreeSet::new();
    let mut undeclared: Vec<String> = template.undeclared_variables(false).into_iter().collect();
    undeclared.sort();
    for variable in undeclared {
        if BUILT_IN_VARIABLES.contains(&variable.as_str()) || globals.contains(variable.as_str()) {
            continue;
        }
        if !known.contains(&variable) {
            return Err(Error::UnknownField {
                part,
                field: variable,
            });
        }
        used.insert(variable);
    }
    Ok(used)
}

/// The variables of one message, handed to minijinja as an object so that a field is
/// converted only when the template reads it, instead of converting every field up front.
/// Each value is converted once and then shared, so reading an array field by index in a
/// loop does not convert the array again for each element.
#[derive(Debug)]
struct Context {
    /// The values of [`BUILT_IN_VARIABLES`], in that order.
    built_ins: [minijinja::Value; 5],
    fields: Map<String, Value>,
    converted: Mutex<HashMap<String, minijinja::Value>>,
}

impl Context {
    fn new(data: &TemplateData) -> Context {
        let text = |value: &Option<String>| value.as_deref().unwrap_or_default().into();
        Context {
            built_ins: [
                text(&data.name),
                text(&data.email),
                text(&data.account),
                data.unsubscribe_url.as_str().into(),
                data.preferences_url.as_str().into(),
            ],
            fields: data.fields.clone(),
            converted: Mutex::new(HashMap::new()),
        }
    }
}

impl Object for Context {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let key = key.as_str()?;
        if let Some(index) = BUILT_IN_VARIABLES.iter().position(|name| *name == key) {
            return Some(self.built_ins[index].clone());
        }
        let field = self.fields.get(key)?;
        let mut converted = self
            .converted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(value) = converted.get(key) {
            return Some(value.clone());
        }
        let value = minijinja::Value::from_serialize(field);
        converted.insert(key.to_owned(), value.clone());
        Some(value)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let fields = self.fields.keys();
        let names: Vec<minijinja::Value> = BUILT_IN_VARIABLES
            .into_iter()
            .map(minijinja::Value::from)
            .chain(
                fields
                    .filter(|field| !BUILT_IN_VARIABLES.contains(&field.as_str()))
                    .map(|field| field.as_str().into()),
            )
            .collect();
        Enumerator::Iter(Box::new(names.into_iter()))
    }
}

fn context_value(data: &TemplateData) -> minijinja::Value {
    minijinja::Value::from_object(Context::new(data))
}

fn invalid_template(part: &'static str, error: &minijinja::Error) -> Error {
    Error::InvalidTemplate {
        part,
        detail: describe(error),
    }
}

fn render_error(part: &'static str, error: &minijinja::Error) -> Error {
    Error::Render {
        part,
        detail: describe(error),
    }
}

fn describe(error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!("{} (line {line})", error.kind()),
        None => error.kind().to_string(),
    }
    .replace('\n', " ")
        + &error
            .detail()
            .map(|detail| format!(": {detail}"))
            .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(subject: &str, text: &str, html: Option<&str>) -> TemplateSource {
        TemplateSource {
            subject: subject.into(),
            text: text.into(),
            html: html.map(Into::into),
        }
    }

    fn data(name: &str, fields: Value) -> TemplateData {
        TemplateData {
            name: Some(name.into()),
            email: Some("ann@example.com".into()),
            account: Some("Acme".into()),
            fields: fields.as_object().cloned().unwrap_or_default(),
            unsubscribe_url: "https://t.example/unsubscribe/abc".into(),
            preferences_url: "https://t.example/preferences/def".into(),
        }
    }

    #[test]
    fn render_fills_builtins_and_fields() {
        let template = Template::compile(
            &source(
                "Your {{ plan }} plan, {{ name }}\n",
                "Hello {{ name }} at {{ account }}: {{ plan }}. {{ unsubscribe_url }}",
                Some("<p>{{ name }}</p>"),
            ),
            ["plan"],
        )
        .unwrap();
        let rendered = template
            .render(&data("Ann", json!({"plan": "Pro"})))
            .unwrap();
        assert_eq!(rendered.subject, "Your Pro plan, Ann");
        assert_eq!(
            rendered.text,
            "Hello Ann at Acme: Pro. https://t.example/unsubscribe/abc"
        );
        assert_eq!(rendered.html.as_deref(), Some("<p>Ann</p>"));
        assert_eq!(template.fields().collect::<Vec<_>>(), ["plan"]);
    }

    #[test]
    fn context_builtins_and_nested_fields() {
        let template = Template::compile(
            &source(
                "Hi",
                "{{ name }} {{ plan.tier }} {{ items | join(',') }}",
                None,
            ),
            ["plan", "items", "name"],
        )
        .unwrap();
        let fields = json!({"name": "Imported", "plan": {"tier": "Pro"}, "items": [1, 2]});
        let text = template.render_text(&data("Ann", fields)).unwrap();
        assert_eq!(text, "Ann Pro 1,2");
    }

    #[test]
    fn compile_names_unknown_field() {
        let error = Template::compile(&source("Hi", "{{ plan }} {{ renewal }}", None), ["plan"])
            .unwrap_err();
        match error {
            Error::UnknownField { part, field } => {
                assert_eq!(part, "text");
                assert_eq!(field, "renewal");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn compile_rejects_syntax_error() {
        let error = Template::compile(&source("Hi {{ name", "x", None), [""; 0]).unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidTemplate {
                    part: "subject",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn render_names_missing_field() {
        let template = Template::compile(&source("Hi", "{{ plan }}", None), ["plan"]).unwrap();
        let error = template.render(&data("Ann", json!({}))).unwrap_err();
        assert!(matches!(&error, Error::MissingField { field } if field == "plan"));
    }

    #[test]
    fn html_part_escapes_text_part_not() {
        let template = Template::compile(
            &source("{{ name }}", "{{ name }}", Some("<b>{{ name }}</b>")),
            [""; 0],
        )
        .unwrap();
        let rendered = template.render(&data("<script>&", json!({}))).unwrap();
        assert_eq!(rendered.subject, "<script>&");
        assert_eq!(rendered.text, "<script>&");
        assert_eq!(rendered.html.as_deref(), Some("<b>&lt;script&gt;&amp;</b>"));
    }

    #[test]
    fn missing_name_renders_empty() {
        let template =
            Template::compile(&source("Hi {{ name or \"there\" }}", "", None), [""; 0]).unwrap();
        let mut data = data("x", json!({}));
        data.name = None;
        assert_eq!(template.render(&data).unwrap().subject, "Hi there");
    }

    /// Builds the context as one converted map, as rendering did before [`Context`].
    fn converted_map(data: &TemplateData) -> minijinja::Value {
        let mut context = data.fields.clone();
        let text = |value: &Option<String>| Value::String(value.clone().unwrap_or_default());
        context.insert("name".into(), text(&data.name));
        context.insert("email".into(), text(&data.email));
        context.insert("account".into(), text(&data.account));
        context.insert(
            "unsubscribe_url".into(),
            data.unsubscribe_url.clone().into(),
        );
        context.insert(
            "preferences_url".into(),
            data.preferences_url.clone().into(),
        );
        minijinja::Value::from_serialize(Value::Object(context))
    }

    #[test]
    fn context_renders_as_converted_map() {
        let fields = json!({
            "name": "Imported",
            "plan": {"tier": "Pro", "seats": [1, 2.5, null], "note": "<b>&"},
            "items": [{"x": 1}, {"x": "two"}],
            "empty": "",
            "nothing": null,
            "big": 18446744073709551615u64,
            "loop": "field called loop",
        });
        let known = ["plan", "items", "empty", "nothing", "big", "name", "loop"];
        let cases = [
            "{% for k, v in plan | items %}{{ k }}={{ v }};{% endfor %}",
            "{{ plan | tojson }} {{ items | tojson }}",
            "{{ items | length }} {{ plan | length }} {{ plan.seats[1] }}",
            "{{ empty | default('d') }} {{ empty | default('d', true) }} {{ nothing }}",
            "{{ plan is defined }} {{ nothing is none }} {{ plan.other is defined }}",
            "{{ name }} {{ big }} {{ loop }}",
            "{% for item in items %}{{ loop.index }}:{{ item.x }} {% endfor %}",
            "{{ plan.note }} {{ plan | dictsort }}",
            "{{ items is sameas items }} {{ plan is mapping }} {{ items is iterable }}",
            "{% set copy = plan %}{{ copy is sameas plan }}",
            "{{ debug() | length > 0 }}",
            "{{ plan.other }}",
            "{{ items[5] }}",
            "{{ nothing.x }}",
            "{{ plan | items | list | length }} {{ plan.tier | upper }}",
            "{% macro m() %}{{ plan.tier }}{% endmacro %}{{ m() }}",
        ];
        let data = data("Ann", fields);
        let mut differences = Vec::new();
        for case in cases {
            for html in [false, true] {
                let source = if html {
                    source("Hi", "x", Some(case))
                } else {
                    source("Hi", case, None)
                };
                let template = Template::compile(&source, known).unwrap();
                let name = if html { "html.html" } else { "text.txt" };
                let part = template.env.get_template(name).unwrap();
                let before = part.render(converted_map(&data));
                let now = part.render(context_value(&data));
                if format!("{now:?}") != format!("{before:?}") {
                    differences.push(format!("{case} (html: {html}): {now:?} != {before:?}"));
                }
            }
        }
        assert!(differences.is_empty(), "{differences:#?}");
    }

    #[test]
    fn loop_variables_are_not_fields() {
        let template = Template::compile(
            &source("Hi", "{% for item in items %}{{ item }},{% endfor %}", None),
            ["items"],
        )
        .unwrap();
        let rendered = template
            .render(&data("Ann", json!({"items": [1, 2]})))
            .unwrap();
        assert_eq!(rendered.text, "1,2,");
    }
}
