//! The configuration file, `tact.toml`, and its `TACT_*` environment overrides.
//!
//! Every key can be overridden by an environment variable named `TACT_` followed by the
//! key's dotted path in upper case with dots turned into underscores: `http.listen` is
//! `TACT_HTTP_LISTEN`, `database` is `TACT_DATABASE`, `policy.min_gap` is
//! `TACT_POLICY_MIN_GAP`. The value is read as a TOML value when it parses as one (`8`,
//! `true`, `["a", "b"]`) and as a string otherwise (`127.0.0.1:9000`, `12h`).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tact_domain::{Policy, Span};

/// Environment variables starting with `TACT_` that are not configuration keys.
const NON_KEY_VARIABLES: [&str; 2] = ["TACT_CONFIG", "TACT_LOG"];

/// Errors in the configuration file or its environment overrides.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path} (run `tact init` to write one)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("configuration file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key is unknown or its value is invalid.
    #[error("invalid configuration key `{key}`: {message}")]
    Invalid {
        /// The dotted key, such as `http.listen`.
        key: String,
        /// The reason the value is invalid.
        message: String,
    },
    /// An environment variable starting with `TACT_` names a table instead of a key.
    #[error(
        "environment variable {name} names a table of the configuration, not a value; set one \
         of its keys instead, such as {example}"
    )]
    TableVariable {
        /// The variable.
        name: String,
        /// The variable of one of the table's keys.
        example: String,
    },
    /// An environment variable starting with `TACT_` matches no key.
    #[error("environment variable {name} matches no configuration key; unset it or fix the name")]
    UnknownVariable {
        /// The variable's name.
        name: String,
    },
}

/// The whole configuration. Every key has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// SQLite database file, relative to the configuration file's folder. Default `tact.db`.
    pub database: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The HTTP server.
    pub http: HttpConfig,
    /// Signed links in messages.
    pub links: LinksConfig,
    /// The outbox worker.
    pub delivery: DeliveryConfig,
    /// The SMTP server used when `delivery.channel = "smtp"`.
    pub smtp: SmtpConfig,
    /// Message headers.
    pub message: MessageConfig,
    /// Returned mail: bounces and complaints read by `tact ingest-mail` and
    /// `POST /api/v1/inbound`.
    pub bounces: crate::inbound::BouncesConfig,
    /// Company policy, as the domain's `Policy`; kept as a table here and parsed by
    /// [`Policy::from_toml`] so its errors name the key.
    pub policy: toml::Table,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `tact=debug,info`. Default `info`. The
    /// `TACT_LOG` variable, when set, wins.
    pub level: String,
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on. Default `127.0.0.1:8025`. Port 0 picks a free port;
    /// `tact serve` prints the bound address either way.
    pub listen: SocketAddr,
    /// The URL customers reach the server at, used in unsubscribe and preference links.
    /// Default `http://127.0.0.1:8025`.
    pub public_url: String,
    /// Bearer token for `/api/v1`. No default: `tact init` generates one.
    pub api_token: String,
    /// Largest accepted request body, in bytes. Default 65536.
    pub max_body_bytes: usize,
}

/// Signed link settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinksConfig {
    /// Key (at least 32 characters) that signs unsubscribe and preference links.
    /// No default: `tact init` generates one. Changing it invalidates every link sent.
    pub secret_key: String,
    /// How long a link stays valid. Default `365d`.
    pub max_age: Span,
}

/// The channel that delivers email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryChannel {
    /// Write messages into a Maildir folder; needs no mail server.
    Maildir,
    /// Send through the SMTP server of `[smtp]`.
    Smtp,
}

/// Outbox worker settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// `maildir` or `smtp`. Default `maildir`.
    pub channel: DeliveryChannel,
    /// Maildir folder, relative to the configuration file's folder. Default `outbox`.
    pub maildir: PathBuf,
    /// Messages sent at the same time. Default 4.
    pub concurrency: usize,
    /// Deliveries claimed per round. Default 100.
    pub batch_size: usize,
    /// How long a claimed delivery stays reserved for this worker; after that another
    /// worker may take it over. Default `5m`.
    pub lease: Span,
    /// How often the scheduler looks for work when idle. Default `2s`.
    pub poll_interval: Span,
    /// Delay before the first retry; each further retry doubles it. Default `1m`.
    pub retry_base: Span,
    /// Maximum delay between retries. Default `6h`.
    pub retry_max_delay: Span,
    /// Sending attempts before a delivery fails for good. Default 8.
    pub max_attempts: u32,
    /// On shutdown, how long in-flight sends may take before they are given back. Default
    /// `30s`.
    pub shutdown_grace: Span,
}

/// Transport security towards the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text; only for a server on the same machine.
    None,
    /// Upgrade with STARTTLS, and fail when the server does not offer it.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// SMTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name. Default `localhost`.
    pub host: String,
    /// Port. Default 25.
    pub port: u16,
    /// `none`, `starttls` or `tls`. Default `none`.
    pub tls: SmtpTls,
    /// User name for authentication; empty (the default) sends none.
    pub username: String,
    /// Password for authentication.
    pub password: String,
    /// Timeout of each SMTP command. Default `30s`.
    pub timeout: Span,
    /// Connections kept open. Default 4.
    pub pool_size: u32,
    /// Messages per second to one recipient domain; 0 (the default) means no limit.
    pub rate_per_domain: u32,
}

/// Message header settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessageConfig {
    /// `From` header. Default `tact <tact@localhost>`.
    pub from: String,
    /// `Reply-To` header; empty (the default) sends none.
    pub reply_to: String,
    /// Address for `mailto:` unsubscribe requests in `List-Unsubscribe`. Default
    /// `unsubscribe@localhost`.
    pub unsubscribe_mailto: String,
    /// Domain of `Message-ID` headers. Default `localhost`.
    pub message_id_domain: String,
    /// When set, the envelope sender of each message is the signed VERP address
    /// `bounces+<delivery-id>-<signature>@<bounce_domain>`, so returned mail maps back to its
    /// delivery. Empty (the default) uses the `From` address.
    pub bounce_domain: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: PathBuf::from("tact.db"),
            log: LogConfig::default(),
            http: HttpConfig::default(),
            links: LinksConfig::default(),
            delivery: DeliveryConfig::default(),
            smtp: SmtpConfig::default(),
            message: MessageConfig::default(),
            bounces: crate::inbound::BouncesConfig::default(),
            policy: toml::Table::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8025)),
            public_url: "http://127.0.0.1:8025".to_owned(),
            api_token: String::new(),
            max_body_bytes: 64 * 1024,
        }
    }
}

impl Default for LinksConfig {
    fn default() -> Self {
        LinksConfig {
            secret_key: String::new(),
            max_age: Span::days(365),
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            channel: DeliveryChannel::Maildir,
            maildir: PathBuf::from("outbox"),
            concurrency: 4,
            batch_size: 100,
            lease: Span::seconds(300),
            poll_interval: Span::seconds(2),
            retry_base: Span::seconds(60),
            retry_max_delay: Span::seconds(6 * 3600),
            max_attempts: 8,
            shutdown_grace: Span::seconds(30),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".to_owned(),
            port: 25,
            tls: SmtpTls::None,
            username: String::new(),
            password: String::new(),
            timeout: Span::seconds(30),
            pool_size: 4,
            rate_per_domain: 0,
        }
    }
}

impl Default for MessageConfig {
    fn default() -> Self {
        MessageConfig {
            from: "tact <tact@localhost>".to_owned(),
            reply_to: String::new(),
            unsubscribe_mailto: "unsubscribe@localhost".to_owned(),
            message_id_domain: "localhost".to_owned(),
            bounce_domain: String::new(),
        }
    }
}

/// A validated configuration with its paths resolved and its policy parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration as read, after environment overrides.
    pub config: Config,
    /// The database file, absolute or relative to the working folder.
    pub database: PathBuf,
    /// The Maildir folder, resolved like `database`.
    pub maildir: PathBuf,
    /// The parsed policy.
    pub policy: Policy,
}

impl Settings {
    /// Reads the file at `path`, applies the `TACT_*` variables of `environment` and
    /// validates the result.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file, key or variable that is missing or invalid.
    pub fn load(
        path: &Path,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut table: toml::Table =
            text.parse()
                .map_err(|error: toml::de::Error| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: error.to_string().trim_end().to_owned(),
                })?;
        apply_environment(&mut table, environment)?;
        let config = parse_config(table)?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Settings::from_config(config, folder)
    }

    /// Validates `config` and resolves its relative paths against `folder`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first invalid key.
    pub fn from_config(config: Config, folder: &Path) -> Result<Settings, ConfigError> {
        let policy_text =
            toml::to_string(&config.policy).map_err(|error| invalid("policy", error))?;
        let policy = Policy::from_toml(&policy_text).map_err(|error| match error {
            tact_domain::Error::InvalidPolicy { key, value, reason } => ConfigError::Invalid {
                key: format!("policy.{key}"),
                message: format!("{value}: {reason}"),
            },
            other => invalid("policy", other),
        })?;
        validate(&config)?;
        Ok(Settings {
            database: folder.join(&config.database),
            maildir: folder.join(&config.delivery.maildir),
            policy,
            config,
        })
    }

    /// Returns the API token, or an error that tells how to set one.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when `http.api_token` is empty.
    pub fn api_token(&self) -> Result<&str, ConfigError> {
        let token = self.config.http.api_token.as_str();
        if token.is_empty() {
            return Err(ConfigError::Invalid {
                key: "http.api_token".to_owned(),
                message: "empty; set it (tact init generates one) or TACT_HTTP_API_TOKEN"
                    .to_owned(),
            });
        }
        Ok(token)
    }

    /// Returns the link-signing key: the UTF-8 bytes of `links.secret_key`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when `links.secret_key` is shorter than 32 bytes.
    pub fn secret_key(&self) -> Result<Vec<u8>, ConfigError> {
        let key = self.config.links.secret_key.as_bytes();
        if key.len() < 32 {
            return Err(ConfigError::Invalid {
                key: "links.secret_key".to_owned(),
                message: "needs at least 32 characters; tact init generates 64 hex digits"
                    .to_owned(),
            });
        }
        Ok(key.to_vec())
    }
}

/// Builds the delivery crate's message settings from `[message]`, `[links]` and `[http]`.
///
/// # Errors
///
/// [`ConfigError::Invalid`] when the link key is too short.
pub fn message_config(settings: &Settings) -> Result<tact_delivery::MessageConfig, ConfigError> {
    let config = &settings.config;
    let optional = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    settings.secret_key()?;
    Ok(tact_delivery::MessageConfig {
        from: config.message.from.clone(),
        reply_to: optional(&config.message.reply_to),
        base_url: config.http.public_url.clone(),
        unsubscribe_mailto: config.message.unsubscribe_mailto.clone(),
        secret: config.links.secret_key.clone(),
        message_id_domain: config.message.message_id_domain.clone(),
        bounce_domain: optional(&config.message.bounce_domain),
    })
}

/// Builds the delivery crate's SMTP settings from `[smtp]`.
pub fn smtp_config(settings: &Settings) -> tact_delivery::SmtpConfig {
    let smtp = &settings.config.smtp;
    let tls = match smtp.tls {
        SmtpTls::None => tact_delivery::TlsMode::None,
        SmtpTls::Starttls => tact_delivery::TlsMode::Starttls,
        SmtpTls::Tls => tact_delivery::TlsMode::Tls,
    };
    let mut config = tact_delivery::SmtpConfig::new(smtp.host.clone(), smtp.port, tls);
    config.username = (!smtp.username.is_empty()).then(|| smtp.username.clone());
    config.password = (!smtp.password.is_empty()).then(|| smtp.password.clone());
    config.timeout_seconds = u64::try_from(smtp.timeout.duration().num_seconds()).unwrap_or(30);
    config.pool_size = smtp.pool_size as usize;
    if smtp.rate_per_domain > 0 {
        config.rate_limit = Some(tact_delivery::RateLimit {
            per_second: f64::from(smtp.rate_per_domain),
            burst: 1,
        });
    }
    config
}

fn invalid(key: &str, error: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: error.to_string(),
    }
}

fn parse_config(table: toml::Table) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
        let key = error.path().to_string();
        let message = error.into_inner().to_string();
        // The toml crate appends "in `key`" on a line of its own; the key is named already.
        let message = message
            .split("\nin `")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        ConfigError::Invalid {
            key,
            message: plain_type_names(&message),
        }
    })
}

/// Replaces the Rust type that serde names in "expected u16" with the values it takes.
fn plain_type_names(message: &str) -> String {
    const TYPES: [(&str, &str); 7] = [
        ("usize", "a whole number of 0 or more"),
        ("u64", "a whole number of 0 or more"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u16", "a whole number from 0 to 65535"),
        ("u8", "a whole number from 0 to 255"),
        ("i64", "a whole number"),
        ("f64", "a number"),
    ];
    for (name, plain) in TYPES {
        if let Some(start) = message.strip_suffix(name)
            && start.ends_with("expected ")
        {
            return format!("{start}{plain}");
        }
    }
    message.to_owned()
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    let positive = [
        ("http.max_body_bytes", config.http.max_body_bytes),
        ("delivery.concurrency", config.delivery.concurrency),
        ("delivery.batch_size", config.delivery.batch_size),
        (
            "delivery.max_attempts",
            config.delivery.max_attempts as usize,
        ),
    ];
    for (key, value) in positive {
        if value == 0 {
            return Err(invalid(key, "must be at least 1"));
        }
    }
    let url = &config.http.public_url;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(
            "http.public_url",
            format!("{url:?} must start with http:// or https://"),
        ));
    }
    let spans = [
        ("delivery.lease", config.delivery.lease),
        ("delivery.poll_interval", config.delivery.poll_interval),
        ("delivery.retry_base", config.delivery.retry_base),
    ];
    for (key, span) in spans {
        if span.duration() <= chrono::Duration::zero() {
            return Err(invalid(key, "must be longer than 0s"));
        }
    }
    config
        .bounces
        .validate()
        .map_err(|(key, message)| invalid(key, message))?;
    Ok(())
}

/// Applies every `TACT_*` variable to `table`.
///
/// A variable names a key that is set in the file or has a default. A key without a default,
/// such as a cap under `policy.channel_caps`, can only be overridden once the file sets it.
fn apply_environment(
    table: &mut toml::Table,
    environment: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut known =
        toml::Table::try_from(Config::default()).map_err(|error| invalid("(defaults)", error))?;
    let policy_defaults =
        toml::Table::try_from(Policy::default()).map_err(|error| invalid("policy", error))?;
    known.insert("policy".to_owned(), toml::Value::Table(policy_defaults));
    merge(&mut known, table);

    let mut variables: Vec<(String, String)> = environment
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with("TACT_") && !NON_KEY_VARIABLES.contains(&name.as_str())
        })
        .collect();
    variables.sort();
    for (name, value) in variables {
        let path = match find_key(&known, &name["TACT_".len()..]) {
            Some((_, toml::Value::Table(inner))) => {
                let Some(first) = inner.keys().next() else {
                    return Err(ConfigError::UnknownVariable { name });
                };
                let example = format!("{name}_{}", variable_part(first));
                return Err(ConfigError::TableVariable { name, example });
            }
            Some((path, _)) => path,
            None => return Err(ConfigError::UnknownVariable { name }),
        };
        set_path(table, &known, &path, parse_value(&value));
    }
    Ok(())
}

/// Copies the keys of `from` into `into`, recursing into tables.
fn merge(into: &mut toml::Table, from: &toml::Table) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(other)) => merge(inner, other),
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Finds the key or table whose upper-cased, underscore-joined path is `name`, and returns
/// its path and value.
fn find_key<'a>(known: &'a toml::Table, name: &str) -> Option<(Vec<String>, &'a toml::Value)> {
    for (key, value) in known {
        let upper = variable_part(key);
        if name == upper {
            return Some((vec![key.clone()], value));
        }
        let Some(rest) = name
            .strip_prefix(&upper)
            .and_then(|rest| rest.strip_prefix('_'))
        else {
            continue;
        };
        if let toml::Value::Table(inner) = value
            && let Some((mut path, found)) = find_key(inner, rest)
        {
            path.insert(0, key.clone());
            return Some((path, found));
        }
    }
    None
}

/// Returns a key as it appears in a variable name: upper case, dashes as underscores.
fn variable_part(key: &str) -> String {
    key.to_uppercase().replace('-', "_")
}

/// Sets the key at `path`. A table missing on the way is copied from `known`, so
/// overriding one key of a default table such as `policy.purpose_caps.sales` keeps its
/// other default keys.
fn set_path(table: &mut toml::Table, known: &toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    let mut defaults = Some(known);
    for key in parents {
        let default_table = defaults
            .and_then(|d| d.get(key))
            .and_then(toml::Value::as_table);
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(default_table.cloned().unwrap_or_default()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else {
            return;
        };
        current = inner;
        defaults = default_table;
    }
    current.insert(last.clone(), value);
}

/// Reads `text` as a TOML value, falling back to a plain string.
fn parse_value(text: &str) -> toml::Value {
    let document = format!("value = {text}");
    match document.parse::<toml::Table>() {
        Ok(mut table) => table
            .remove("value")
            .unwrap_or_else(|| toml::Value::String(text.to_owned())),
        Err(_) => toml::Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, environment: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("tact.toml");
        std::fs::write(&path, text).unwrap();
        let environment = environment
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()));
        Settings::load(&path, environment)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let settings = load("", &[]).unwrap();

        assert_eq!(settings.config, Config::default());
        assert!(settings.database.ends_with("tact.db"));
        assert!(settings.maildir.ends_with("outbox"));
    }

    #[test]
    fn environment_overrides_nested_key() {
        let settings = load(
            "[http]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("TACT_HTTP_LISTEN", "127.0.0.1:9000"),
                ("TACT_DELIVERY_MAX_ATTEMPTS", "3"),
            ],
        )
        .unwrap();

        assert_eq!(
            settings.config.http.listen,
            SocketAddr::from(([127, 0, 0, 1], 9000))
        );
        assert_eq!(settings.config.delivery.max_attempts, 3);
    }

    #[test]
    fn environment_overrides_top_level_key() {
        let settings = load("", &[("TACT_DATABASE", "other.db")]).unwrap();

        assert!(settings.database.ends_with("other.db"));
    }

    #[test]
    fn environment_keeps_default_siblings() {
        let settings = load("", &[("TACT_POLICY_PURPOSE_CAPS_SALES_MAX", "0")]).unwrap();

        let cap = settings.policy.purpose_caps[&tact_domain::Purpose::Sales];
        assert_eq!(cap.max, 0);
        assert_eq!(cap.per, tact_domain::Period::Rolling(Span::days(30)));
    }

    #[test]
    fn unknown_variable_is_named() {
        let error = load("", &[("TACT_HTTP_LISTN", "x")]).unwrap_err();

        assert_eq!(
            error.to_string(),
            "environment variable TACT_HTTP_LISTN matches no configuration key; \
             unset it or fix the name"
        );
    }

    #[test]
    fn policy_span_error_shows_format() {
        let error = load("", &[("TACT_POLICY_MIN_GAP", "soon")]).unwrap_err();

        assert_eq!(
            error.to_string(),
            "invalid configuration key `policy.min_gap`: \"soon\": not a span; write a whole \
             number and a unit s, m, h, d or w, as in 30d"
        );
    }

    #[test]
    fn table_variable_suggests_a_key() {
        let error = load("", &[("TACT_POLICY_OVERALL", "3")]).unwrap_err();

        assert_eq!(
            error.to_string(),
            "environment variable TACT_POLICY_OVERALL names a table of the configuration, not a \
             value; set one of its keys instead, such as TACT_POLICY_OVERALL_MAX"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let error = load("[http]\nlisen = \"x\"\n", &[]).unwrap_err();

        let ConfigError::Invalid { key, .. } = error else {
            panic!("expected an invalid key, got {error}");
        };
        assert_eq!(key, "http.lisen");
    }

    #[test]
    fn invalid_value_is_named() {
        let error = load("[delivery]\nlease = \"soon\"\n", &[]).unwrap_err();

        assert_eq!(
            error.to_string(),
            "invalid configuration key `delivery.lease`: invalid span \"soon\": write a whole \
             number and a unit s, m, h, d or w, as in 30d"
        );
    }

    #[test]
    fn out_of_range_numbers_name_range() {
        let cases = [
            (
                "[delivery]\nconcurrency = -1\n",
                "invalid configuration key `delivery.concurrency`: invalid value: integer `-1`, \
                 expected a whole number of 0 or more",
            ),
            (
                "[smtp]\nport = 70000\n",
                "invalid configuration key `smtp.port`: invalid value: integer `70000`, \
                 expected a whole number from 0 to 65535",
            ),
            (
                "[delivery]\nconcurrency = \"abc\"\n",
                "invalid configuration key `delivery.concurrency`: invalid type: string \"abc\", \
                 expected a whole number of 0 or more",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(load(text, &[]).unwrap_err().to_string(), expected, "{text}");
        }
    }

    #[test]
    fn zero_concurrency_is_rejected() {
        let error = load("[delivery]\nconcurrency = 0\n", &[]).unwrap_err();

        assert_eq!(
            error.to_string(),
            "invalid configuration key `delivery.concurrency`: must be at least 1"
        );
    }

    #[test]
    fn secret_key_needs_32_bytes() {
        let settings = load("[links]\nsecret_key = \"abcd\"\n", &[]).unwrap();

        let error = settings.secret_key().unwrap_err();

        assert!(
            error
                .to_string()
                .starts_with("invalid configuration key `links.secret_key`")
        );
    }
}
