//! `tact ingest-mail --maildir DIR`: every message in `DIR/new` and `DIR/cur`, each moved
//! to the processed folder only after its effects are stored.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::io::Read;
use std::path::{Path, PathBuf};
use tact_storage::Store;

use super::{Ingestor, Mode, Outcome};

/// The counts of one Maildir run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaildirSummary {
    /// Messages ingested (and, unless in a dry run, moved to the processed folder).
    pub processed: usize,
    /// Messages left in place because reading, storing or moving failed; each error is
    /// logged, and the next run tries them again.
    pub failed: usize,
}

/// Reads at most `limit` bytes from `reader`. Returns the bytes and whether more followed;
/// nothing after the first byte past the limit is read.
///
/// # Errors
///
/// The reader's I/O error.
pub fn read_limited(reader: impl Read, limit: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut bytes)?;
    let truncated = bytes.len() > limit;
    bytes.truncate(limit);
    Ok((bytes, truncated))
}

/// Ingests every message file in `maildir/new` and `maildir/cur` (names starting with a dot
/// are skipped), oldest name first, and calls `report` with each message's outcomes.
///
/// With [`Mode::Apply`], a message moves into the `cur` folder of the processed Maildir
/// (`bounces.processed_folder`) only after its effects are committed, so a crash leaves it
/// in place to be read again. A message larger than `bounces.max_message_bytes` is read up
/// to that size and then processed like any other. A message that cannot be read or
/// stored stays in place. A dry run moves nothing.
///
/// # Errors
///
/// Fails when `maildir` has neither `new` nor `cur`, or the processed folder cannot be
/// created. Failures of single messages are counted in [`MaildirSummary::failed`].
pub fn ingest_maildir(
    ingestor: &Ingestor,
    store: &Store,
    maildir: &Path,
    now: impl Fn() -> DateTime<Utc>,
    mode: Mode,
    mut report: impl FnMut(&Path, &[Outcome]),
) -> anyhow::Result<MaildirSummary> {
    let messages = list_messages(maildir)?;
    let processed_folder = maildir.join(&ingestor.bounces().processed_folder);
    if mode == Mode::Apply {
        for sub in ["cur", "new", "tmp"] {
            let folder = processed_folder.join(sub);
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
    }

    let mut summary = MaildirSummary::default();
    for path in messages {
        match ingest_file(ingestor, store, &path, now(), mode) {
            Ok(outcomes) => {
                report(&path, &outcomes);
                if mode == Mode::Apply {
                    if let Err(error) = move_processed(&path, &processed_folder) {
                        tracing::error!(
                            file = %path.display(),
                            error = format!("{error:#}"),
                            "moving an ingested message failed; it stays and is read again"
                        );
                        summary.failed += 1;
                        continue;
                    }
                }
                summary.processed += 1;
            }
            Err(error) => {
                tracing::error!(
                    file = %path.display(),
                    error = format!("{error:#}"),
                    "ingesting a message failed; it stays in place for the next run"
                );
                summary.failed += 1;
            }
        }
    }
    Ok(summary)
}

fn ingest_file(
    ingestor: &Ingestor,
    store: &Store,
    path: &Path,
    now: DateTime<Utc>,
    mode: Mode,
) -> anyhow::Result<Vec<Outcome>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let limit = ingestor.bounces().max_message_bytes;
    let (raw, truncated) =
        read_limited(file, limit).with_context(|| format!("cannot read {}", path.display()))?;
    if truncated {
        tracing::warn!(
            file = %path.display(),
            limit,
            "message larger than bounces.max_message_bytes; reading only its start"
        );
    }
    Ok(ingestor.ingest(store, &raw, now, mode)?)
}

/// Lists the message files of `new` and `cur`, sorted by name.
fn list_messages(maildir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let folders = [maildir.join("new"), maildir.join("cur")];
    if !folders.iter().any(|folder| folder.is_dir()) {
        anyhow::bail!(
            "{} is not a Maildir: it has no new or cur folder",
            maildir.display()
        );
    }
    let mut messages = Vec::new();
    for folder in folders.iter().filter(|folder| folder.is_dir()) {
        let entries = std::fs::read_dir(folder)
            .with_context(|| format!("cannot list {}", folder.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", folder.display()))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && entry.file_type().is_ok_and(|kind| kind.is_file()) {
                messages.push(entry.path());
            }
        }
    }
    messages.sort_by(|left, right| left.file_name().cmp(&right.file_name()));
    Ok(messages)
}

/// Moves a message into `processed/cur`, adding the Maildir "seen" flag (`:2,S`) to a name
/// that has no flags yet.
fn move_processed(path: &Path, processed_folder: &Path) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?
        .to_string_lossy();
    let name = if name.contains(":2,") {
        name.into_owned()
    } else {
        format!("{name}:2,S")
    };
    let target = processed_folder.join("cur").join(name);
    std::fs::rename(path, &target)
        .with_context(|| format!("cannot move {} to {}", path.display(), target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_limited_marks_truncation() {
        let (bytes, truncated) = read_limited(&b"abcdef"[..], 4).unwrap();

        assert_eq!(bytes, b"abcd");
        assert!(truncated);
    }

    #[test]
    fn read_limited_keeps_exact_size() {
        let (bytes, truncated) = read_limited(&b"abcd"[..], 4).unwrap();

        assert_eq!(bytes, b"abcd");
        assert!(!truncated);
    }
}
