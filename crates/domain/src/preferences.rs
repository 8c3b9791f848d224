//! What the customer asked for, and who asked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::{Bucket, Channel, Error, Limit, LocalWindow, Topic};

/// Who made a consent or preference change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The customer, for example through an unsubscribe link or the preference centre.
    Customer,
    /// A member of staff, for example an agent on the phone.
    Staff,
    /// A bulk import.
    Import,
    /// tact itself, for example a suppression after a hard bounce.
    System,
}

/// Where a consent or preference change came from, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// An unsubscribe link in a message: one-click unsubscribe, its page, or the `mailto:`
    /// of `List-Unsubscribe`.
    Link,
    /// The preference centre page.
    PreferenceCentre,
    /// The HTTP API.
    Api,
    /// The command line.
    Cli,
    /// A CSV import.
    Import,
    /// A call-centre or care agent.
    Agent,
    /// Returned mail: a bounce or a complaint report.
    Mail,
}

/// Who set an opt-out, from where and when. An opt-out set by the customer can only be lifted
/// by the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentMark {
    /// Who made the change.
    pub actor: Actor,
    /// Where it came from.
    pub source: ConsentSource,
    /// When.
    pub at: DateTime<Utc>,
}

/// A customer's stated wishes. The default is "no wishes stated": the company policy applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// No contact at all except transactional messages.
    pub do_not_contact: Option<ConsentMark>,
    /// No marketing (sales, value and survey contacts); care and transactional still allowed.
    pub marketing_opt_out: Option<ConsentMark>,
    /// Channels the customer opted out of.
    pub channel_opt_outs: BTreeMap<Channel, ConsentMark>,
    /// Topics the customer opted out of.
    pub topic_opt_outs: BTreeMap<Topic, ConsentMark>,
    /// The customer's own overall cadence, counted in contacts across all channels.
    pub cadence: Option<Limit>,
    /// The customer's own cadence per channel.
    pub channel_cadence: BTreeMap<Channel, Limit>,
    /// The bucket the customer chose, which wins over the one assigned from behaviour.
    pub bucket: Option<Bucket>,
    /// Hours in the customer's time zone when contact is welcome.
    pub window: Option<LocalWindow>,
    /// No non-transactional contact before this instant.
    pub paused_until: Option<DateTime<Utc>>,
    /// The mark of whoever set the pause. While a pause set by the customer lasts, only the customer can
    /// shorten or lift it.
    pub pause_mark: Option<ConsentMark>,
}

/// One change to a customer's preferences, as recorded in the consent log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ConsentChange {
    /// Set (`true`) or lift (`false`) do-not-contact.
    DoNotContact {
        /// Whether contact is forbidden.
        value: bool,
    },
    /// Opt out of (`false`) or back into (`true`) all marketing.
    Marketing {
        /// Whether marketing is allowed.
        allowed: bool,
    },
    /// Opt out of or back into one channel.
    Channel {
        /// The channel.
        channel: Channel,
        /// Whether it is allowed.
        allowed: bool,
    },
    /// Opt out of or back into one topic.
    Topic {
        /// The topic.
        topic: Topic,
        /// Whether it is allowed.
        allowed: bool,
    },
    /// Set or clear the overall cadence.
    Cadence {
        /// The new cadence; `None` clears it.
        limit: Option<Limit>,
    },
    /// Set or clear the cadence of one channel.
    ChannelCadence {
        /// The channel.
        channel: Channel,
        /// The new cadence; `None` clears it.
        limit: Option<Limit>,
    },
    /// Choose a bucket, or clear the choice.
    Bucket {
        /// The chosen bucket; `None` clears it.
        bucket: Option<Bucket>,
    },
    /// Set or clear the local contact window.
    Window {
        /// The new window; `None` clears it.
        window: Option<LocalWindow>,
    },
    /// Pause until an instant, or lift the pause with `None`.
    Pause {
        /// End of the pause.
        until: Option<DateTime<Utc>>,
    },
}

impl Preferences {
    /// Applies one change made by `mark.actor` at `mark.at`.
    ///
    /// Anyone may add an opt-out or lengthen a pause. When staff, an import or the system
    /// repeats an opt-out the customer already made, the customer's mark is kept, so the
    /// opt-out stays locked. Cadence, bucket and window changes are open to every actor.
    ///
    /// # Errors
    ///
    /// [`Error::ConsentLocked`] when the change would lift an opt-out (do-not-contact,
    /// marketing, channel or topic) or shorten a pause that the customer set themselves,
    /// and `mark.actor` is not the customer. The preferences are left unchanged.
    pub fn apply(&mut self, change: &ConsentChange, mark: ConsentMark) -> Result<(), Error> {
        match change {
            ConsentChange::DoNotContact { value } => {
                set_opt_out(&mut self.do_not_contact, *value, mark, "do-not-contact")
            }
            ConsentChange::Marketing { allowed } => set_opt_out(
                &mut self.marketing_opt_out,
                !allowed,
                mark,
                "marketing opt-out",
            ),
            ConsentChange::Channel { channel, allowed } => {
                let setting = format!("opt-out of channel {channel}");
                let mut slot = self.channel_opt_outs.get(channel).copied();
                set_opt_out(&mut slot, !allowed, mark, &setting)?;
                store_mark(&mut self.channel_opt_outs, channel, slot);
                Ok(())
            }
            ConsentChange::Topic { topic, allowed } => {
                let setting = format!("opt-out of topic {topic}");
                let mut slot = self.topic_opt_outs.get(topic).copied();
                set_opt_out(&mut slot, !allowed, mark, &setting)?;
                store_mark(&mut self.topic_opt_outs, topic, slot);
                Ok(())
            }
            ConsentChange::Cadence { limit } => {
                self.cadence = *limit;
                Ok(())
            }
            ConsentChange::ChannelCadence { channel, limit } => {
                match limit {
                    Some(limit) => self.channel_cadence.insert(channel.clone(), *limit),
                    None => self.channel_cadence.remove(channel),
                };
                Ok(())
            }
            ConsentChange::Bucket { bucket } => {
                self.bucket = *bucket;
                Ok(())
            }
            ConsentChange::Window { window } => {
                self.window = window.clone();
                Ok(())
            }
            ConsentChange::Pause { until } => self.set_pause(*until, mark),
        }
    }

    /// Sets or lifts the pause, keeping a customer's pause from being shortened by others.
    fn set_pause(&mut self, until: Option<DateTime<Utc>>, mark: ConsentMark) -> Result<(), Error> {
        let customer_pause = match (self.paused_until, self.pause_mark) {
            (Some(end), Some(set)) if set.actor == Actor::Customer && end > mark.at => {
                Some((end, set))
            }
            _ => None,
        };
        let Some((end, set)) = customer_pause else {
            self.paused_until = until;
            self.pause_mark = until.map(|_| mark);
            return Ok(());
        };
        if mark.actor == Actor::Customer {
            self.paused_until = until;
            self.pause_mark = until.map(|_| mark);
            return Ok(());
        }
        match until {
            Some(new_end) if new_end >= end => {
                self.paused_until = Some(new_end);
                Ok(())
            }
            _ => Err(Error::ConsentLocked {
                setting: "pause".to_owned(),
                at: set.at,
            }),
        }
    }
}

/// Sets (`opted_out`) or lifts one opt-out slot.
fn set_opt_out(
    slot: &mut Option<ConsentMark>,
    opted_out: bool,
    mark: ConsentMark,
    setting: &str,
) -> Result<(), Error> {
    let locked = slot.filter(|existing| existing.actor == Actor::Customer);
    match (opted_out, locked) {
        (true, Some(_)) if mark.actor != Actor::Customer => Ok(()),
        (true, _) => {
            *slot = Some(mark);
            Ok(())
        }
        (false, Some(existing)) if mark.actor != Actor::Customer => Err(Error::ConsentLocked {
            setting: setting.to_owned(),
            at: existing.at,
        }),
        (false, _) => {
            *slot = None;
            Ok(())
        }
    }
}

fn store_mark<K: Ord + Clone>(
    map: &mut BTreeMap<K, ConsentMark>,
    key: &K,
    mark: Option<ConsentMark>,
) {
    match mark {
        Some(mark) => map.insert(key.clone(), mark),
        None => map.remove(key),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, day, 9, 0, 0).unwrap()
    }

    fn by(actor: Actor, day: u32) -> ConsentMark {
        let source = match actor {
            Actor::Customer => ConsentSource::PreferenceCentre,
            Actor::Staff => ConsentSource::Agent,
            Actor::Import => ConsentSource::Import,
            Actor::System => ConsentSource::Mail,
        };
        ConsentMark {
            actor,
            source,
            at: at(day),
        }
    }

    #[test]
    fn staff_cannot_lift_customer_opt_out() {
        let mut preferences = Preferences::default();
        let opt_out = ConsentChange::Marketing { allowed: false };
        let opt_in = ConsentChange::Marketing { allowed: true };
        preferences.apply(&opt_out, by(Actor::Customer, 1)).unwrap();

        let error = preferences.apply(&opt_in, by(Actor::Staff, 2)).unwrap_err();

        assert_eq!(
            error,
            Error::ConsentLocked {
                setting: "marketing opt-out".to_owned(),
                at: at(1)
            }
        );
        assert_eq!(preferences.marketing_opt_out, Some(by(Actor::Customer, 1)));
        assert_eq!(
            error.to_string(),
            "marketing opt-out was set by the customer at 2026-06-01T09:00:00Z; only the \
             customer can change it"
        );
    }

    #[test]
    fn customer_can_lift_own_opt_out() {
        let mut preferences = Preferences::default();
        let channel = ConsentChange::Channel {
            channel: Channel::SMS,
            allowed: false,
        };
        preferences.apply(&channel, by(Actor::Customer, 1)).unwrap();

        let back_in = ConsentChange::Channel {
            channel: Channel::SMS,
            allowed: true,
        };
        preferences.apply(&back_in, by(Actor::Customer, 3)).unwrap();

        assert!(preferences.channel_opt_outs.is_empty());
    }

    #[test]
    fn import_opt_out_keeps_customer_lock() {
        let mut preferences = Preferences::default();
        let stop = ConsentChange::DoNotContact { value: true };
        preferences.apply(&stop, by(Actor::Customer, 1)).unwrap();

        preferences.apply(&stop, by(Actor::Import, 2)).unwrap();
        let lifted = preferences.apply(
            &ConsentChange::DoNotContact { value: false },
            by(Actor::Staff, 3),
        );

        assert_eq!(preferences.do_not_contact, Some(by(Actor::Customer, 1)));
        assert!(matches!(lifted, Err(Error::ConsentLocked { .. })));
    }

    #[test]
    fn staff_opt_out_liftable_by_staff() {
        let mut preferences = Preferences::default();
        let topic = Topic::parse("offers").unwrap();
        let out = ConsentChange::Topic {
            topic: topic.clone(),
            allowed: false,
        };
        preferences.apply(&out, by(Actor::Staff, 1)).unwrap();

        preferences
            .apply(
                &ConsentChange::Topic {
                    topic,
                    allowed: true,
                },
                by(Actor::Staff, 2),
            )
            .unwrap();

        assert!(preferences.topic_opt_outs.is_empty());
    }

    #[test]
    fn customer_pause_not_shortened_by_staff() {
        let mut preferences = Preferences::default();
        let pause = ConsentChange::Pause {
            until: Some(at(20)),
        };
        preferences.apply(&pause, by(Actor::Customer, 1)).unwrap();

        let shorter = ConsentChange::Pause {
            until: Some(at(10)),
        };
        let shortened = preferences.apply(&shorter, by(Actor::Staff, 2));
        let lifted = preferences.apply(&ConsentChange::Pause { until: None }, by(Actor::Staff, 2));
        let longer = ConsentChange::Pause {
            until: Some(at(25)),
        };
        preferences.apply(&longer, by(Actor::Staff, 3)).unwrap();

        let locked = Error::ConsentLocked {
            setting: "pause".to_owned(),
            at: at(1),
        };
        assert_eq!(shortened, Err(locked.clone()));
        assert_eq!(lifted, Err(locked));
        assert_eq!(preferences.paused_until, Some(at(25)));
        assert_eq!(preferences.pause_mark, Some(by(Actor::Customer, 1)));
    }

    #[test]
    fn ended_customer_pause_replaceable() {
        let mut preferences = Preferences::default();
        preferences
            .apply(
                &ConsentChange::Pause { until: Some(at(5)) },
                by(Actor::Customer, 1),
            )
            .unwrap();

        preferences
            .apply(
                &ConsentChange::Pause { until: Some(at(8)) },
                by(Actor::Staff, 6),
            )
            .unwrap();

        assert_eq!(preferences.paused_until, Some(at(8)));
        assert_eq!(preferences.pause_mark, Some(by(Actor::Staff, 6)));
    }
}
