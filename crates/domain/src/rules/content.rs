//! Rejecting content that is not written for the customer.

use chrono::{DateTime, Utc};

use super::{Context, Verdict};

/// Greetings that address nobody in particular, normalised by [`normalise`].
const GENERIC_GREETINGS: &[&str] = &[
    "dear valued customer",
    "dear valued customers",
    "dear customer",
    "dear customers",
    "dear valued client",
    "dear client",
    "dear sir or madam",
    "dear sir/madam",
    "dear sir",
    "dear madam",
    "to whom it may concern",
    "hello customer",
    "hi customer",
    "dear user",
    "dear member",
    "dear friend",
    "dear subscriber",
    "hello valued customer",
];

/// Denies content whose greeting is generic: one of the built-in greetings or of
/// `policy.generic_greetings`, ignoring case, spacing and trailing punctuation.
pub(crate) fn generic_greeting(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    let greeting = context
        .proposal
        .content
        .as_ref()
        .and_then(|content| content.greeting.as_deref());
    let Some(greeting) = greeting else {
        return Verdict::Allow;
    };
    let normalised = normalise(greeting);
    let configured = context.policy.generic_greetings.iter();
    let generic = GENERIC_GREETINGS.contains(&normalised.as_str())
        || configured
            .map(|text| normalise(text))
            .any(|text| text == normalised);
    if generic {
        return context.deny(|| {
            format!(
                "the greeting {:?} addresses no one in particular; greet the customer by name",
                greeting.trim()
            )
        });
    }
    Verdict::Allow
}

/// Denies content that is not personalised beyond its greeting.
pub(crate) fn unpersonalised(context: &Context<'_>, _at: DateTime<Utc>) -> Verdict {
    match &context.proposal.content {
        Some(content) if !content.personalised => context.deny(|| {
            "the message is the same for every customer; personalise its content".to_owned()
        }),
        _ => Verdict::Allow,
    }
}

/// Lower-cases, collapses runs of white space to one space and drops trailing punctuation.
fn normalise(text: &str) -> String {
    let mut normalised = String::with_capacity(text.len());
    if text.is_ascii() {
        // The same steps byte by byte: the ASCII white space of `char::is_whitespace` is tab,
        // line feed, vertical tab, form feed, carriage return and space.
        let mut gap = false;
        for byte in text.bytes() {
            if matches!(byte, b'\t'..=b'\r' | b' ') {
                gap = true;
                continue;
            }
            if gap && !normalised.is_empty() {
                normalised.push(' ');
            }
            gap = false;
            normalised.push(char::from(byte.to_ascii_lowercase()));
        }
    } else {
        for word in text.split_whitespace() {
            if !normalised.is_empty() {
                normalised.push(' ');
            }
            // Lower-casing word by word gives the same text as lower-casing the joined
            // words, because a space is no cased letter for the final-sigma rule either.
            normalised.push_str(&word.to_lowercase());
        }
    }
    let trimmed_len = normalised
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .len();
    normalised.truncate(trimmed_len);
    normalised
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{proposal, utc, view};
    use crate::{Channel, Content, Policy, Purpose};

    fn check(greeting: &str, policy: &Policy) -> Verdict {
        let customer = view();
        let mut letter = proposal(Channel::EMAIL, Purpose::Value);
        letter.content = Some(Content {
            greeting: Some(greeting.to_owned()),
            personalised: true,
        });
        let now = utc(2026, 6, 10, 9, 0);
        generic_greeting(&Context::new(&letter, &customer, policy), now)
    }

    /// Normalises by splitting, joining and lower-casing whole strings, the plain way.
    fn normalise_plainly(text: &str) -> String {
        let words: Vec<&str> = text.split_whitespace().collect();
        let joined = words.join(" ").to_lowercase();
        let trimmed =
            joined.trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace());
        trimmed.to_owned()
    }

    #[test]
    fn normalise_matches_plain_steps() {
        let greetings = [
            "Dear Valued Customer,",
            "  DEAR\tcustomer!\r\n",
            "dear\x0b\x0cfriend ...",
            "To Whom It May Concern:",
            "Liebe Kundin, ΟΔΟΣ ΣΑΣ!",
            "Hallo\u{a0}Kunde\u{3000}!",
            "",
            " ,,, ",
        ];
        for greeting in greetings {
            assert_eq!(
                normalise(greeting),
                normalise_plainly(greeting),
                "{greeting:?}"
            );
        }
    }

    #[test]
    fn generic_greetings_in_any_form() {
        let policy = Policy::default();
        for greeting in [
            "Dear Valued Customer,",
            "DEAR   customer!",
            "  to whom it may concern:",
        ] {
            let result = check(greeting, &policy);
            assert!(
                matches!(result, Verdict::Deny(_)),
                "{greeting:?}: {result:?}"
            );
        }
    }

    #[test]
    fn personal_greeting_passes() {
        assert_eq!(check("Dear Ann,", &Policy::default()), Verdict::Allow);
    }

    #[test]
    fn configured_greeting_denied() {
        let mut policy = Policy::default();
        policy.generic_greetings.push("Hallo  Kunde".to_owned());

        let result = check("hallo kunde!", &policy);

        let message = "the greeting \"hallo kunde!\" addresses no one in particular; greet \
                       the customer by name";
        assert_eq!(result, Verdict::Deny(message.to_owned()));
    }

    #[test]
    fn unpersonalised_content_denied() {
        let customer = view();
        let mut letter = proposal(Channel::EMAIL, Purpose::Value);
        letter.content = Some(Content {
            greeting: None,
            personalised: false,
        });
        let now = utc(2026, 6, 10, 9, 0);

        let result = unpersonalised(&Context::new(&letter, &customer, &Policy::default()), now);

        let message = "the message is the same for every customer; personalise its content";
        assert_eq!(result, Verdict::Deny(message.to_owned()));
    }
}
