//! One SMTP transaction on an open connection, with or without command pipelining.

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::response::Response;

use super::{EmailChannel, SmtpError, TimedError, is_network};
use crate::SendError;

/// An open connection and what the server offered on it.
pub(super) struct Session {
    pub(super) connection: AsyncSmtpConnection,
    /// The server advertised `PIPELINING` (RFC 2920) and the configuration allows it.
    pub(super) pipelining: bool,
}

/// The result of one SMTP transaction.
pub(super) enum Outcome {
    Sent(Response),
    /// The reused connection failed before the message data was sent, so nothing was
    /// delivered and the send can be repeated on a new connection.
    Stale(SmtpError),
    /// The transaction failed. `reusable` is false when the connection's state is unknown,
    /// for example after a network error or replies left unread.
    Failed {
        error: SendError,
        reusable: bool,
    },
}

impl EmailChannel {
    /// Runs `MAIL`, `RCPT`, `DATA` and the message on one connection. `reused` is true when
    /// the connection served an earlier message.
    pub(super) async fn transact(
        &self,
        session: &mut Session,
        envelope: &Envelope,
        bytes: &[u8],
        reused: bool,
    ) -> Outcome {
        let accepted = if session.pipelining {
            self.open_pipelined(&mut session.connection, envelope, reused)
                .await
        } else {
            self.open_stepwise(&mut session.connection, envelope, reused)
                .await
        };
        if let Err(outcome) = accepted {
            return outcome;
        }
        let connection = &mut session.connection;
        let sent = match data_block(bytes) {
            Some(block) => self.timed(connection.command(block.as_str())).await,
            None => self.timed(connection.message(bytes)).await,
        };
        match sent {
            Ok(response) => Outcome::Sent(response),
            Err(error) => self.failed("message", error),
        }
    }

    /// Sends `MAIL`, each `RCPT` and `DATA`, waiting for each reply.
    async fn open_stepwise(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        reused: bool,
    ) -> Result<(), Outcome> {
        let mail = connection.command(Mail::new(envelope.from().cloned(), vec![]));
        match self.timed(mail).await {
            Ok(_) => {}
            Err(TimedError::Smtp(error)) if reused && is_network(&error) => {
                return Err(Outcome::Stale(error));
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

    /// Sends `MAIL`, every `RCPT` and `DATA` in one write, then reads their replies in
    /// order. The message data follows only when all of them succeeded.
    async fn open_pipelined(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        reused: bool,
    ) -> Result<(), Outcome> {
        let mut batch = Mail::new(envelope.from().cloned(), vec![]).to_string();
        for recipient in envelope.to() {
            batch.push_str(&Rcpt::new(recipient.clone(), vec![]).to_string());
        }
        batch.push_str(&Data.to_string());

        let mut first_rejection = None;
        match self.timed(connection.command(batch.as_str())).await {
            Ok(_) => {}
            Err(TimedError::Smtp(error)) if is_reply(&error) => {
                first_rejection = Some(("MAIL", TimedError::Smtp(error)));
            }
            Err(TimedError::Smtp(error)) if reused && is_network(&error) => {
                return Err(Outcome::Stale(error));
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

    fn failed(&self, stage: &'static str, error: TimedError) -> Outcome {
        let reusable = matches!(&error, TimedError::Smtp(error) if is_reply(error));
        Outcome::Failed {
            error: self.stage_error(stage, error),
            reusable,
        }
    }

    fn broken(&self, stage: &'static str, error: TimedError) -> Outcome {
        Outcome::Failed {
            error: self.stage_error(stage, error),
            reusable: false,
        }
    }
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
