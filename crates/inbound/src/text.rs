//! Small text helpers shared by the classifiers: address and status code scanning, and
//! shortening of diagnostic text into a one-line reason.

/// Maximum length of [`crate::Report::reason`], in characters.
pub(crate) const REASON_MAX_CHARS: usize = 200;

/// Collapses all runs of whitespace (including line breaks) into one space and cuts the
/// result to [`REASON_MAX_CHARS`] characters, ending with "…" when cut.
pub(crate) fn one_line(text: &str) -> String {
    let mut line = String::new();
    let mut count = 0;
    let words = text
        .split_whitespace()
        .map(|word| word.chars().filter(|c| !c.is_control()));
    for word in words {
        let separator = (!line.is_empty()).then_some(' ');
        for character in separator.into_iter().chain(word) {
            if count == REASON_MAX_CHARS {
                line.pop();
                line.push('…');
                return line;
            }
            line.push(character);
            count += 1;
        }
    }
    line
}

/// Returns true when `haystack` (already lowercase) contains any of `needles`.
pub(crate) fn contains_any(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|needle| haystack.contains(needle))
}

/// Removes angle brackets, an `rfc822;` address type prefix and surrounding whitespace, and
/// returns the address in lowercase when it looks like `local@domain`.
pub(crate) fn clean_address(value: &str) -> Option<String> {
    let mut value = value.trim();
    if let Some((kind, rest)) = value.split_once(';') {
        if kind.trim().eq_ignore_ascii_case("rfc822") || !kind.contains('@') {
            value = rest.trim();
        }
    }
    let value = match (value.find('<'), value.rfind('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value,
    };
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    is_address(value).then(|| value.to_ascii_lowercase())
}

/// Returns true for a plausible `local@domain` address with no spaces.
pub(crate) fn is_address(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.len() > 1
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && local.chars().all(is_address_char)
        && domain.chars().all(is_domain_char)
}

/// Characters of an address as found in text. RFC 5322 also allows `/`, `|`, `{` and `}`
/// in the local part, but in bounce texts they almost always belong to a path or a pipe
/// command next to the address, so they end it.
fn is_address_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || "@.!#$%&'*+-=?^_`~".contains(character)
}

fn is_domain_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '-' || character == '.'
}

/// An address found in free text, with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundAddress {
    pub(crate) offset: usize,
    pub(crate) address: String,
}

/// Finds every `local@domain` address in `text`, in order of appearance, lowercased.
pub(crate) fn find_addresses(text: &str) -> Vec<FoundAddress> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices('@') {
        let start = text[..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_address_char(c) && c != '@')
            .last()
            .map_or(at, |(index, _)| index);
        let end = text[at + 1..]
            .char_indices()
            .take_while(|&(_, c)| is_domain_char(c))
            .last()
            .map_or(at + 1, |(index, c)| at + 1 + index + c.len_utf8());
        let candidate = text[start..end].trim_matches(|c| c == '.' || c == '\'' || c == '-');
        let after_at = bytes.get(end).copied();
        // "user@host:" in Received-like text or "@example" without a dot are not addresses.
        let domain_has_dot = candidate
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.contains('.'));
        if is_address(candidate) && domain_has_dot && after_at != Some(b'@') {
            let offset = start + text[start..].find(candidate).unwrap_or(0);
            found.push(FoundAddress {
                offset,
                address: candidate.to_ascii_lowercase(),
            });
        }
    }
    found
}

/// Finds the first failure status code (RFC 3463, `class.subject.detail` with class 4 or 5)
/// in `text`. Success codes (class 2) are skipped, because transcripts quote them for the
/// commands that worked.
pub(crate) fn find_status_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        if !matches!(byte, b'4' | b'5') || bytes.get(index + 1) != Some(&b'.') {
            continue;
        }
        if index > 0 && (bytes[index - 1].is_ascii_digit() || bytes[index - 1] == b'.') {
            continue;
        }
        if let Some(code) = parse_status_at(&text[index..]) {
            return Some(code);
        }
    }
    None
}

/// Parses `text` from its start as an enhanced status code, requiring that it is not
/// followed by another digit or dot and digit (which would make it an IP address or
/// version number).
pub(crate) fn parse_status_at(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let class = bytes.first()?;
    if !matches!(class, b'2' | b'4' | b'5') || bytes.get(1) != Some(&b'.') {
        return None;
    }
    let subject_len = digits_len(&bytes[2..], 3)?;
    let detail_start = 2 + subject_len;
    if bytes.get(detail_start) != Some(&b'.') {
        return None;
    }
    let detail_len = digits_len(&bytes[detail_start + 1..], 3)?;
    let end = detail_start + 1 + detail_len;
    let next_is_number = bytes.get(end) == Some(&b'.')
        && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
        || bytes.get(end).is_some_and(u8::is_ascii_digit);
    (!next_is_number).then(|| text[..end].to_string())
}

fn digits_len(bytes: &[u8], max: usize) -> Option<usize> {
    let count = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    (1..=max).contains(&count).then_some(count)
}

/// Finds the first basic SMTP reply code (`4xx` or `5xx` followed by a space or hyphen at a
/// word start) and returns the matching generic enhanced code, such as "5.0.0" for 550.
pub(crate) fn find_basic_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for index in 0..bytes.len().saturating_sub(3) {
        let window = &bytes[index..index + 4];
        let at_word_start = index == 0 || !bytes[index - 1].is_ascii_alphanumeric();
        if at_word_start
            && matches!(window[0], b'4' | b'5')
            && window[1].is_ascii_digit()
            && window[2].is_ascii_digit()
            && matches!(window[3], b' ' | b'-')
        {
            return Some(format!("{}.0.0", window[0] as char));
        }
    }
    None
}

/// Returns the text from the first line that carries an SMTP reply or enhanced status code,
/// which is where servers put their diagnostic.
pub(crate) fn diagnostic_lines(segment: &str) -> Option<&str> {
    let mut line_start = 0;
    for line in segment.split_inclusive('\n') {
        if find_status_code(line).is_some() || find_basic_code(line).is_some() {
            return Some(&segment[line_start..]);
        }
        line_start += line.len();
    }
    None
}

/// Returns the text after the first mention of `address` in `segment`, or all of it.
pub(crate) fn after_address<'a>(segment: &'a str, address: &str) -> &'a str {
    let lower = segment.to_ascii_lowercase();
    match lower.find(address) {
        Some(position) if segment.is_char_boundary(position + address.len()) => {
            &segment[position + address.len()..]
        }
        _ => segment,
    }
}

/// Finds an address whose local part starts with `bounces+`, the VERP envelope sender that
/// tact's delivery crate writes, and returns it lowercased.
pub(crate) fn find_verp(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut search_from = 0;
    while let Some(position) = lower[search_from..].find("bounces+") {
        let start = search_from + position;
        let at_word_start = start == 0
            || !lower[..start]
                .chars()
                .next_back()
                .is_some_and(is_address_char);
        // An address has at most 254 characters, so a longer run is no address and scanning
        // it again for every "bounces+" inside would take quadratic time.
        let window = prefix(&lower[start..], 320);
        let end = window
            .find(|c: char| !is_address_char(c))
            .map_or(start + window.len(), |offset| start + offset);
        let candidate = lower[start..end].trim_end_matches('.');
        if at_word_start && is_address(candidate) {
            return Some(candidate.to_string());
        }
        search_from = start + "bounces+".len();
    }
    None
}

/// Decodes bytes as UTF-8, replacing invalid sequences.
pub(crate) fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Cuts `text` to at most `max` bytes at a character boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_whitespace() {
        assert_eq!(
            one_line("  550 5.1.1\r\n   user  unknown \t"),
            "550 5.1.1 user unknown"
        );
    }

    #[test]
    fn one_line_cuts_long_text() {
        let reason = one_line(&"x".repeat(500));
        assert_eq!(reason.chars().count(), REASON_MAX_CHARS);
        assert!(reason.ends_with('…'));
    }

    #[test]
    fn clean_address_strips_type_and_brackets() {
        assert_eq!(
            clean_address("rfc822; <Kijitora@Example.JP>"),
            Some("kijitora@example.jp".into())
        );
        assert_eq!(
            clean_address("rfc822;user@example.org"),
            Some("user@example.org".into())
        );
        assert_eq!(clean_address("not an address"), None);
    }

    #[test]
    fn find_addresses_skips_bare_hosts() {
        let found = find_addresses("<user@example.jp>: host mx.example.jp said @foo and x@y");
        let addresses: Vec<_> = found.iter().map(|f| f.address.as_str()).collect();
        assert_eq!(addresses, ["user@example.jp"]);
        assert_eq!(found[0].offset, 1);
    }

    #[test]
    fn find_addresses_stops_at_non_ascii() {
        let found = find_addresses("kijitora@example.jp您好 and neko@example.org!");
        let addresses: Vec<_> = found.iter().map(|f| f.address.as_str()).collect();
        assert_eq!(addresses, ["kijitora@example.jp", "neko@example.org"]);
    }

    #[test]
    fn status_code_ignores_ip_addresses() {
        assert_eq!(
            find_status_code("from 192.0.2.1 said 550 5.1.1 unknown"),
            Some("5.1.1".into())
        );
        assert_eq!(
            find_status_code("version 2.0.1.4 and 5.7.1"),
            Some("5.7.1".into())
        );
        assert_eq!(find_status_code("5.1.10 null MX"), Some("5.1.10".into()));
        assert_eq!(
            find_status_code("250 2.1.5 Ok then 550 5.1.1"),
            Some("5.1.1".into())
        );
        assert_eq!(find_status_code("nothing here"), None);
    }

    #[test]
    fn basic_code_maps_to_generic() {
        assert_eq!(
            find_basic_code("said: 550 Mailbox unavailable"),
            Some("5.0.0".into())
        );
        assert_eq!(
            find_basic_code("port 25 and 421-busy"),
            Some("4.0.0".into())
        );
        assert_eq!(find_basic_code("no code"), None);
    }

    #[test]
    fn verp_found_in_header_text() {
        let text = "To: <Bounces+42-abc123@mail.example.com>\r\n";
        assert_eq!(
            find_verp(text),
            Some("bounces+42-abc123@mail.example.com".into())
        );
        assert_eq!(find_verp("xbounces+1-a@example.com"), None);
        assert_eq!(find_verp(&"bounces+".repeat(100_000)), None);
    }
}
