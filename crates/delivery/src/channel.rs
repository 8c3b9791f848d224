//! The channel trait and the approved message every channel sends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;
use tact_domain::{Approval, Customer, CustomerId, DeliveryId};

use crate::{Error, Rendered, SendError};

/// The receiver of a message: the customer and their address on the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The customer.
    pub customer: CustomerId,
    /// The display name, if any.
    pub name: Option<String>,
    /// The address on the channel: an email address, a phone number, a URL.
    pub address: String,
}

impl Recipient {
    /// The customer's email recipient.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAddress`] when the customer has no email address.
    pub fn email(customer: &Customer) -> Result<Recipient, Error> {
        let address = customer
            .email
            .clone()
            .ok_or_else(|| Error::InvalidAddress {
                address: String::new(),
                reason: format!("customer {} has no email address", customer.id),
            })?;
        Ok(Recipient {
            customer: customer.id,
            name: customer.name.clone(),
            address,
        })
    }
}

/// An approved message for one delivery: the domain's approval, the outbox row it belongs
/// to, the recipient and the rendered content.
///
/// It can only be built around an [`Approval`], which only the domain crate can create, so
/// a channel can only send what the rules approved.
#[derive(Debug, Clone)]
pub struct Outgoing {
    approval: Approval,
    delivery: DeliveryId,
    recipient: Recipient,
    content: Rendered,
}

impl Outgoing {
    /// Wraps an approved contact.
    ///
    /// # Errors
    ///
    /// [`Error::WrongCustomer`] when the recipient is not the approved customer.
    pub fn new(
        approval: Approval,
        delivery: DeliveryId,
        recipient: Recipient,
        content: Rendered,
    ) -> Result<Outgoing, Error> {
        let approved = approval.proposal().customer;
        if recipient.customer != approved {
            return Err(Error::WrongCustomer {
                recipient: recipient.customer,
                approved,
            });
        }
        Ok(Outgoing {
            approval,
            delivery,
            recipient,
            content,
        })
    }

    /// The domain's approval.
    pub fn approval(&self) -> &Approval {
        &self.approval
    }

    /// The delivery (outbox row), stable across retries.
    pub fn delivery(&self) -> DeliveryId {
        self.delivery
    }

    /// The recipient.
    pub fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    /// The rendered content.
    pub fn content(&self) -> &Rendered {
        &self.content
    }

    /// Checks that the approval is for `channel` and has not expired at `now`.
    ///
    /// # Errors
    ///
    /// [`SendError::WrongChannel`] and [`SendError::Expired`].
    pub fn ready(
        &self,
        channel: &tact_domain::Channel,
        now: DateTime<Utc>,
    ) -> Result<Ready<'_>, SendError> {
        let approved = &self.approval.proposal().channel;
        if approved != channel {
            return Err(SendError::WrongChannel {
                approved: approved.to_string(),
                channel: channel.to_string(),
            });
        }
        if self.approval.is_expired(now) {
            return Err(SendError::Expired {
                expires_at: self.approval.expires_at(),
            });
        }
        Ok(Ready { message: self, now })
    }
}

/// A message whose approval was checked at `now`. Only [`Outgoing::ready`] creates one.
#[derive(Debug, Clone, Copy)]
pub struct Ready<'a> {
    message: &'a Outgoing,
    now: DateTime<Utc>,
}

impl<'a> Ready<'a> {
    /// The message.
    pub fn message(&self) -> &'a Outgoing {
        self.message
    }

    /// The instant the approval was checked at; email uses it for the `Date` header.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

/// Proof that a channel accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message id, such as `<delivery-42@mail.example.com>` for email.
    pub message_id: String,
    /// The accepting server's reply, such as `250 2.0.0 Ok: queued as 4F2A`, or a
    /// description of where the message was stored.
    pub reply: String,
}

/// A way to deliver approved messages: email, Maildir, or a new one such as SMS.
///
/// Implement [`Channel::kind`] and [`Channel::deliver`]; callers use [`Channel::send`], which
/// checks the approval first. The trait is object safe, so the daemon can hold the channel
/// chosen by configuration as `Arc<dyn Channel>`.
#[async_trait]
pub trait Channel: Send + Sync + fmt::Debug {
    /// The domain channel this delivers, such as `email`. Approvals for other channels are
    /// rejected.
    fn kind(&self) -> &tact_domain::Channel;

    /// Delivers one checked message. Returns a receipt only when the destination accepted
    /// the message.
    ///
    /// # Errors
    ///
    /// A [`SendError`] whose [`SendError::is_transient`] says whether a retry can help.
    async fn deliver(&self, message: Ready<'_>) -> Result<Receipt, SendError>;

    /// Finishes the messages already handed over and releases what the channel holds open,
    /// such as connections. Called once when the daemon stops; sends after it fail. The
    /// default does nothing.
    async fn close(&self) {}

    /// Checks the approval at `now` and delivers the message.
    ///
    /// # Errors
    ///
    /// [`SendError::Expired`] or [`SendError::WrongChannel`] without sending anything, and
    /// the errors of [`Channel::deliver`].
    async fn send(&self, message: &Outgoing, now: DateTime<Utc>) -> Result<Receipt, SendError> {
        let ready = message.ready(self.kind(), now)?;
        self.deliver(ready).await
    }
}
