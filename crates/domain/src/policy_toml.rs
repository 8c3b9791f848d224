//! Loading a policy from TOML, with errors that name the offending key.

use crate::{Error, Policy};

pub(crate) fn parse(text: &str) -> Result<Policy, Error> {
    toml::from_str(text).map_err(|error| Error::InvalidPolicy {
        key: "policy".to_owned(),
        value: String::new(),
        reason: error.message().to_owned(),
    })
}
