//! The SMTP transactions of one open connection, with or without command pipelining.
//!
//! With `PIPELINING` (RFC 2920) a transaction takes two round trips: `MAIL`, every `RCPT`
//! and `DATA` in one write, then the content. When another message waits, its `MAIL`,
//! `RCPT` and `DATA` follow the content in the same write, which RFC 2920 allows (message
//! content may start a group of commands), so a busy connection needs one round trip per
//! message.

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::response::Response;

use super::{Server, SmtpError, TimedError, closed_by_server};
use crate::SendError;

/// An open connection and what the server offered on it.
pub(super) struct Session {
    pub(super) connection: AsyncSmtpConnection,
    /// The server advertised `PIPELINING` (RFC 2920) and the configuration allows it.
    pub(super) pipelining: bool,
}

/// A message's content as it goes over the connection.
pub(super) enum Content {
    /// Dot-stuffed and ended with `CRLF . CRLF`, ready for one write.
    Block(String),
    /// Content that is not UTF-8, which lettre's `message` stuffs and sends.
    Raw(Vec<u8>),
}

impl Content {
    pub(super) fn new(bytes: &[u8]) -> Content {
        data_block(bytes).map_or_else(|| Content::Raw(bytes.to_vec()), Content::Block)
    }
}

/// The reason a transaction did not reach its content.
pub(super) enum NotOpened {
    /// The reused connection failed before any message data was sent, so nothing was
    /// delivered and the message can go on a new connection.
    Stale(String),
    /// The transaction failed. `reusable` is false when the connection's state is unknown,
    /// for example after a network error or replies left unread.
    Failed { error: SendError, reusable: bool },
}

/// The end of a transaction: the reply to its content and, when another message's
/// commands followed the content, how that message's transaction opened.
pub(super) struct Finished {
    pub(super) result: Result<Response, SendError>,
    /// True when the connection survived the content, false after a network error or a
    /// timeout. `next` may still have left it unusable.
    pub(super) reusable: bool,
    /// `Some` when the next message's commands were sent behind the content.
    pub(super) next: Option<Result<(), NotOpened>>,
}

impl Server {
    /// Opens a transaction: `MAIL`, each `RCPT` and `DATA`, until the server waits for the
    /// content. `reused` is true when the connection served an earlier message.
    pub(super) async fn open(
        &self,
        session: &mut Session,
        envelope: &Envelope,
        reused: bool,
    ) -> Result<(), NotOpened> {
        let connection = &mut session.connection;
        if session.pipelining {
            let batch = opening(envelope);
            let mail = self.timed(connection.command(batch.as_str())).await;
            self.read_opening(connection, envelope, mail, reused).await
        } else {
            self.open_stepwise(connection, envelope, reused).await
        }
    }

    /// Sends the content of the open transaction and reads its reply. With `next`, that
    /// message's `MAIL`, `RCPT` and `DATA` go out in the same write and their replies are
    /// read too. Only `Content::Block` can carry them.
    pub(super) async fn finish(
        &self,
        session: &mut Session,
        content: &Content,
        next: Option<&Envelope>,
    ) -> Finished {
        let connection = &mut session.connection;
        let sent = match (content, next) {
            (Content::Block(block), Some(envelope)) => {
                let mut text = String::with_capacity(block.len() + 200);
                text.push_str(block);
                text.push_str(&opening(envelope));
                self.timed(connection.command(text.as_str())).await
            }
            (Content::Block(block), None) => self.timed(connection.command(block.as_str())).await,
            (Content::Raw(bytes), _) => self.timed(connection.message(bytes)).await,
        };
        let (result, reusable) = match sent {
            Ok(response) => (Ok(response), true),
            Err(error) => {
                let reusable = matches!(&error, TimedError::Smtp(error) if is_reply(error));
                (Err(self.stage_error("message", error)), reusable)
            }
        };
        let next = match (content, next) {
            (Content::Block(_), Some(envelope)) if reusable => {
                let mail = self.timed(connection.read_response()).await;
                Some(self.read_opening(connection, envelope, mail, true).await)
            }
            // Nothing of the next message went out beyond its commands, which the server
            // discards with the connection.
            (Content::Block(_), Some(_)) => Some(Err(NotOpened::Stale(
                "the connection failed during the previous message".to_owned(),
            ))),
            _ => None,
        };
        Finished {
            result,
            reusable,
            next,
        }
    }

    /// Keeps a connection after a negative reply before the content if `RSET` succeeds.
    pub(super) async fn recover(&self, mut session: Session) -> Option<Session> {
        let reset = self.timed(session.connection.command(Rset)).await;
        reset.is_ok().then_some(session)
    }

    /// Sends `MAIL`, each `RCPT` and `DATA`, waiting for each reply.
    async fn open_stepwise(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        reused: bool,
    ) -> Result<(), NotOpened> {
        let mail = connection.command(Mail::new(envelope.from().cloned(), vec![]));
        match self.timed(mail).await {
            Ok(_) => {}
            Err(TimedError::Smtp(error)) if reused && closed_by_server(&error) => {
                return Err(NotOpened::Stale(error.to_string()));
            }
            Err(error) => return Err(self.failed("MAIL", error)),
        }
        for recipient in envelope.to() {
            let rcpt = connection.command(Rcpt::new(recipient.clone(), vec![]));
            if let Err(error) = self.timed(rcpt).await {
                return Err(self.failed("RCPT", error));
            }
        }
        if let Err(error) = self.timed(connection.command(Data)).await {
            return Err(self.failed("DATA", error));
        }
        Ok(())
    }

    /// Reads the replies to a pipelined `MAIL`, every `RCPT` and `DATA`, given the reply
    /// to `MAIL`. The transaction is open only when all of them succeeded.
    async fn read_opening(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        mail: Result<Response, TimedError>,
        reused: bool,
    ) -> Result<(), NotOpened> {
        let mut first_rejection = None;
        match mail {
            Ok(_) => {}
            // The server may have closed the connection before it read these commands.
            Err(TimedError::Smtp(error)) if reused && closed_by_server(&error) => {
                return Err(NotOpened::Stale(error.to_string()));
            }
            Err(TimedError::Smtp(error)) if is_reply(&error) => {
                first_rejection = Some(("MAIL", TimedError::Smtp(error)));
            }
            Err(error) => return Err(self.broken("MAIL", error)),
        }
        for _ in envelope.to() {
            match self.timed(connection.read_response()).await {
                Ok(_) => {}
                Err(TimedError::Smtp(error)) if is_reply(&error) => {
                    first_rejection.get_or_insert(("RCPT", TimedError::Smtp(error)));
                }
                Err(error) => return Err(self.broken("RCPT", error)),
            }
        }
        let data = self.timed(connection.read_response()).await;
        match (first_rejection, data) {
            (None, Ok(_)) => Ok(()),
            (None, Err(error)) => Err(self.failed("DATA", error)),
            (Some((stage, error)), Err(TimedError::Smtp(data))) if is_reply(&data) => {
                Err(self.failed(stage, error))
            }
            // DATA was accepted although a command before it failed, or its reply was lost:
            // the connection is dropped without sending data, which aborts the transaction.
            (Some((stage, error)), _) => Err(self.broken(stage, error)),
        }
    }

    fn failed(&self, stage: &'static str, error: TimedError) -> NotOpened {
        let reusable = matches!(&error, TimedError::Smtp(error) if is_reply(error));
        NotOpened::Failed {
            error: self.stage_error(stage, error),
            reusable,
        }
    }

    fn broken(&self, stage: &'static str, error: TimedError) -> NotOpened {
        NotOpened::Failed {
            error: self.stage_error(stage, error),
            reusable: false,
        }
    }
}

/// `MAIL`, every `RCPT` and `DATA` of an envelope as one pipelined group.
fn opening(envelope: &Envelope) -> String {
    let mut batch = Mail::new(envelope.from().cloned(), vec![]).to_string();
    for recipient in envelope.to() {
        batch.push_str(&Rcpt::new(recipient.clone(), vec![]).to_string());
    }
    batch.push_str(&Data.to_string());
    batch
}

/// Whether the server sent a negative reply, rather than the network failing.
fn is_reply(error: &SmtpError) -> bool {
    error.is_transient() || error.is_permanent()
}

/// The message as SMTP `DATA` content: dot-stuffed (RFC 5321, section 4.5.2) and ended with
/// `CRLF . CRLF`, ready for one write. Returns `None` for content that is not UTF-8, which
/// lettre's own `message` then sends.
///
/// lettre's `message` stuffs byte by byte into a second buffer and writes the terminator
/// with a second system call. This block is built with whole-slice copies and goes out in
/// one write.
fn data_block(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut block = String::with_capacity(text.len() + 8);
    if text.starts_with('.') {
        block.push('.');
    }
    // Searching for the single byte '.' uses memchr, which is faster than a substring search.
    let mut copied = 0;
    for (index, _) in text.match_indices('.') {
        if text[..index].ends_with("\r\n") {
            block.push_str(&text[copied..=index]);
            block.push('.');
            copied = index + 1;
        }
    }
    block.push_str(&text[copied..]);
    block.push_str("\r\n.\r\n");
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_block_stuffs_leading_dots() {
        let block = data_block(b".a\r\n.b\r\nc.d\r\n..e").unwrap();
        assert_eq!(block, "..a\r\n..b\r\nc.d\r\n...e\r\n.\r\n");
    }

    #[test]
    fn data_block_plain_text_unchanged() {
        let block = data_block(b"Subject: x\r\n\r\nhi").unwrap();
        assert_eq!(block, "Subject: x\r\n\r\nhi\r\n.\r\n");
        assert_eq!(data_block(b"\xff"), None);
    }
}
