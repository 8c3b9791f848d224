//! `tact init`: writes a commented starter configuration with fresh secrets.

use anyhow::{Context, bail};
use rand::RngCore;
use std::io::Write;
use std::path::Path;

/// Writes the starter configuration to `path` with a new API token and link key.
///
/// # Errors
///
/// Fails when `path` already exists (it is never overwritten) or cannot be written.
pub fn write_starter_config(path: &Path) -> anyhow::Result<()> {
    let text = starter_config(&random_hex(32), &random_hex(32));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    let mut file = match file {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists; tact init never overwrites a configuration",
                path.display()
            )
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot create {}", path.display()));
        }
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    restrict_permissions(path)?;
    Ok(())
}

/// Makes the file readable by its owner only, because it contains the API token.
fn restrict_permissions(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
    }
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    hex::encode(buffer)
}

fn starter_config(api_token: &str, secret_key: &str) -> String {
    format!(
        r#"# tact configuration. Every key can also be set by an environment variable:
# TACT_ plus the key's path in upper case, dots as underscores (TACT_HTTP_LISTEN).
# docs/configuration.md lists every key with its default.

# SQLite database, relative to this file.
database = "tact.db"

[http]
# Address to listen on; port 0 picks a free port.
listen = "127.0.0.1:8025"
# Where customers reach this server; used in unsubscribe and preference links.
public_url = "http://127.0.0.1:8025"
# Bearer token for /api/v1. Keep it secret.
api_token = "{api_token}"
# Largest request body, in bytes.
max_body_bytes = 65536

[links]
# Key that signs unsubscribe and preference links (hex). Changing it breaks sent links.
secret_key = "{secret_key}"
# How long a link stays valid.
max_age = "365d"

[delivery]
# "maildir" writes messages to the folder below; "smtp" sends through [smtp].
channel = "maildir"
maildir = "outbox"
# Messages sent at the same time; with smtp, 32 to 64 times smtp.pool_size.
concurrency = 4
# Deliveries claimed at a time; a few hundred to 1,000 for large campaigns.
batch_size = 100
# Retries: first after retry_base, doubling up to retry_max_delay, max_attempts in all.
retry_base = "1m"
retry_max_delay = "6h"
max_attempts = 8

[smtp]
host = "localhost"
port = 25
# "none", "starttls" or "tls".
tls = "none"
username = ""
password = ""

[message]
from = "tact <tact@localhost>"
reply_to = ""
unsubscribe_mailto = "unsubscribe@localhost"
message_id_domain = "localhost"

[policy]
# Company defaults and ceilings; docs/rules.md describes every key.
# Topics customers can choose in the preference centre.
topics = ["newsletter", "offers", "tips"]
# min_gap = "24h"
# overall = {{ max = 8, per = "30d" }}
# purpose_caps.sales = {{ max = 4, per = "30d" }}
# quiet_hours = {{ start = "08:00:00", end = "20:00:00" }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_refuses_existing_file() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("tact.toml");
        std::fs::write(&path, "database = \"mine.db\"\n").unwrap();

        let error = write_starter_config(&path).unwrap_err();

        assert!(
            error
                .to_string()
                .ends_with("already exists; tact init never overwrites a configuration")
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "database = \"mine.db\"\n"
        );
    }

    #[test]
    fn starter_config_loads_with_secrets() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("tact.toml");

        write_starter_config(&path).unwrap();
        let settings = crate::config::Settings::load(&path, []).unwrap();

        assert_eq!(settings.api_token().unwrap().len(), 64);
        assert_eq!(settings.secret_key().unwrap().len(), 64);
    }
}
