//! Parsing of the `Name: value` field groups inside `message/delivery-status` (RFC 3464)
//! and `message/feedback-report` (RFC 5965) parts.

/// One group of fields: the per-message group, or one per-recipient group.
pub(crate) type FieldGroup = Vec<(String, String)>;

/// Splits `text` into groups separated by blank lines and each group into fields, with
/// lowercase names, unfolded values and leading/trailing whitespace removed. Lines without
/// a colon are ignored.
pub(crate) fn parse_groups(text: &str) -> Vec<FieldGroup> {
    let mut groups = Vec::new();
    let mut group: FieldGroup = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(' ') {
                group.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// Returns the value of the first field called `name` (lowercase) in `group`.
pub(crate) fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(field_name, _)| field_name == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_and_unfold() {
        let text = "Reporting-MTA: dns; mx.example.jp\r\n\r\n\
                    Final-Recipient: rfc822; a@example.jp\r\n\
                    Diagnostic-Code: smtp; 550 5.1.1\r\n\x20   user unknown\r\n\r\n";
        let groups = parse_groups(text);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            field(&groups[0], "reporting-mta"),
            Some("dns; mx.example.jp")
        );
        assert_eq!(
            field(&groups[1], "diagnostic-code"),
            Some("smtp; 550 5.1.1 user unknown")
        );
        assert_eq!(field(&groups[1], "status"), None);
    }
}
