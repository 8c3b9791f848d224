//! The Maildir channel: each message becomes one file, so tact runs with no mail server.

use async_trait::async_trait;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tact_domain::Channel as DomainChannel;

use crate::message::{Composer, trim_message_end};
use crate::{Channel, Error, MessageConfig, Ready, Receipt, SendError};

/// Writes each email into a Maildir: first into `tmp/`, synced, then renamed into `new/`
/// and the directory synced, so a reader never sees a half-written message and a receipt
/// means the file survives a crash.
///
/// File names are `<unix seconds>.M<microseconds>P<process id>Q<counter>.tact-<delivery>`,
/// unique within the process and across processes on one host. Resending the same delivery
/// writes a second file. It delivers approvals for the `email` channel.
#[derive(Debug)]
pub struct MaildirChannel {
    root: PathBuf,
    composer: Composer,
    counter: AtomicU64,
    kind: DomainChannel,
}

impl MaildirChannel {
    /// Opens the Maildir at `root`, creating `tmp/`, `new/` and `cur/` when missing.
    ///
    /// Messages contain customers' names and addresses, so on Unix the folders it creates
    /// are readable by their owner only (mode 0700), and so is every message (0600).
    ///
    /// # Errors
    ///
    /// [`Error::Directory`] when a directory cannot be created, and the errors of
    /// [`Composer::new`] for an invalid `config`.
    pub fn open(root: impl Into<PathBuf>, config: &MessageConfig) -> Result<Self, Error> {
        let root = root.into();
        for sub in ["tmp", "new", "cur"] {
            let path = root.join(sub);
            private_folders()
                .create(&path)
                .map_err(|source| Error::Directory { path, source })?;
        }
        Ok(MaildirChannel {
            root,
            composer: Composer::new(config)?,
            counter: AtomicU64::new(0),
            kind: DomainChannel::EMAIL,
        })
    }

    /// The Maildir's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn unique_name(&self, ready: &Ready<'_>) -> String {
        let now = ready.now();
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.M{}P{}Q{counter}.tact-{}",
            now.timestamp(),
            now.timestamp_subsec_micros(),
            std::process::id(),
            ready.message().delivery().0
        )
    }
}

#[async_trait]
impl Channel for MaildirChannel {
    fn kind(&self) -> &DomainChannel {
        &self.kind
    }

    async fn deliver(&self, ready: Ready<'_>) -> Result<Receipt, SendError> {
        let email = self
            .composer
            .compose(ready)
            .map_err(SendError::InvalidMessage)?;
        let name = self.unique_name(&ready);
        let tmp = self.root.join("tmp").join(&name);
        let new = self.root.join("new").join(&name);
        let mut bytes = trim_message_end(&email.formatted()).to_vec();
        bytes.extend_from_slice(b"\r\n");
        let (tmp_path, new_path) = (tmp.clone(), new.clone());
        tokio::task::spawn_blocking(move || write_then_rename(&tmp_path, &new_path, &bytes))
            .await
            .map_err(|error| SendError::Io {
                path: tmp.clone(),
                source: std::io::Error::other(error),
            })??;
        Ok(Receipt {
            message_id: self.composer.message_id(ready.message()),
            reply: format!("stored as {}", new.display()),
        })
    }
}

/// Creates missing folders, on Unix with mode 0700; existing folders keep their mode.
fn private_folders() -> fs::DirBuilder {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

fn write_then_rename(tmp: &Path, new: &Path, bytes: &[u8]) -> Result<(), SendError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| SendError::Io { path, source }
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(tmp).map_err(io_error(tmp))?;
    file.write_all(bytes).map_err(io_error(tmp))?;
    file.sync_all().map_err(io_error(tmp))?;
    drop(file);
    fs::rename(tmp, new).map_err(io_error(new))?;

    // Syncing the directory makes the rename itself survive a crash.
    let directory = new.parent().unwrap_or(new);
    fs::File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(directory))
}
