//! Campaigns: one template sent to an audience.

use chrono::{DateTime, Utc};
use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};
use std::fmt;
use tact_domain::{CampaignId, Channel, Purpose, Topic};

use crate::codec::{enum_text, to_json, to_ms};
use crate::codec::{from_json, from_ms, parse_channel, parse_enum, parse_purpose, parse_topic};
use crate::customers::check_text;
use crate::{Audience, Error, Result, Store};

/// The stage of a campaign's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Created without a send time; nothing happens until it is scheduled.
    Draft,
    /// Waiting for its send time.
    Scheduled,
    /// Being planned and sent.
    Running,
    /// Every delivery is decided and planned.
    Done,
    /// Stopped by staff; no further deliveries are planned.
    Cancelled,
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&enum_text(self))
    }
}

/// A campaign to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    /// A name for people, such as `spring newsletter`.
    pub name: String,
    /// The channel it is sent on.
    pub channel: Channel,
    /// The purpose of its messages.
    pub purpose: Purpose,
    /// The topic of its messages.
    pub topic: Option<Topic>,
    /// The customers it addresses.
    pub audience: Audience,
    /// Higher goes first when campaigns compete for the same customers.
    pub priority: i32,
    /// Whether the message carries an offer.
    pub offer: bool,
    /// The template source, stored as given; the delivery layer parses it.
    pub template: String,
    /// When to start sending; `None` creates a draft.
    pub send_at: Option<DateTime<Utc>>,
    /// After this instant sending is pointless.
    pub relevant_until: Option<DateTime<Utc>>,
    /// When the campaign was created.
    pub created_at: DateTime<Utc>,
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Its id.
    pub id: CampaignId,
    /// A name for people.
    pub name: String,
    /// The channel it is sent on.
    pub channel: Channel,
    /// The purpose of its messages.
    pub purpose: Purpose,
    /// The topic of its messages.
    pub topic: Option<Topic>,
    /// The customers it addresses.
    pub audience: Audience,
    /// Higher goes first when campaigns compete for the same customers.
    pub priority: i32,
    /// Whether the message carries an offer.
    pub offer: bool,
    /// The template source.
    pub template: String,
    /// When sending starts; `None` for a draft.
    pub send_at: Option<DateTime<Utc>>,
    /// After this instant sending is pointless.
    pub relevant_until: Option<DateTime<Utc>>,
    /// When the campaign was created.
    pub created_at: DateTime<Utc>,
    /// The stage of its life.
    pub status: CampaignStatus,
}

const CAMPAIGN_COLUMNS: &str = "id, name, channel, purpose, topic, audience, priority, offer, \
     template, send_at_ms, relevant_until_ms, created_at_ms, status";

fn campaign_from_row(row: &Row<'_>) -> Result<Campaign> {
    let id: i64 = row.get(0)?;
    let optional_instant = |index: usize| -> Result<Option<DateTime<Utc>>> {
        let ms: Option<i64> = row.get(index)?;
        ms.map(|ms| from_ms("campaign", id, ms)).transpose()
    };
    let channel: String = row.get(2)?;
    let purpose: String = row.get(3)?;
    let audience: String = row.get(5)?;
    let status: String = row.get(12)?;
    Ok(Campaign {
        id: CampaignId(id),
        name: row.get(1)?,
        channel: parse_channel("campaign", id, channel.as_bytes())?,
        purpose: parse_purpose("campaign", id, purpose.as_bytes())?,
        topic: parse_topic("campaign", id, row.get::<_, Option<String>>(4)?.as_deref())?,
        audience: from_json("campaign", id, &audience)?,
        priority: row.get(6)?,
        offer: row.get(7)?,
        template: row.get(8)?,
        send_at: optional_instant(9)?,
        relevant_until: optional_instant(10)?,
        created_at: from_ms("campaign", id, row.get(11)?)?,
        status: parse_enum("campaign", id, &status)?,
    })
}

impl Store {
    /// Creates a campaign: `Scheduled` when it has a send time, else `Draft`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] when the name is empty or has control characters.
    pub fn create_campaign(&self, campaign: &NewCampaign) -> Result<CampaignId> {
        if campaign.name.trim().is_empty() {
            return Err(Error::invalid_field(
                "campaign name",
                &campaign.name,
                "it is required",
            ));
        }
        check_text("campaign name", &campaign.name)?;
        let status = match campaign.send_at {
            Some(_) => CampaignStatus::Scheduled,
            None => CampaignStatus::Draft,
        };
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO campaigns (name, channel, purpose, topic, audience, priority, \
                     offer, template, send_at_ms, relevant_until_ms, created_at_ms, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                campaign.name,
                campaign.channel.as_str(),
                campaign.purpose.as_str(),
                campaign.topic.as_ref().map(|topic| topic.as_str()),
                to_json(&campaign.audience),
                campaign.priority,
                campaign.offer,
                campaign.template,
                campaign.send_at.map(to_ms),
                campaign.relevant_until.map(to_ms),
                to_ms(campaign.created_at),
                enum_text(&status),
            ])?;
            Ok(CampaignId(tx.last_insert_rowid()))
        })
    }

    /// Returns the campaign with `id`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when there is none.
    pub fn campaign(&self, id: CampaignId) -> Result<Campaign> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1");
        let mut statement = self.connection.prepare_cached(&sql)?;
        let mut rows = statement.query([id.0])?;
        match rows.next()? {
            Some(row) => campaign_from_row(row),
            None => Err(Error::not_found("campaign", id)),
        }
    }

    /// Returns the scheduled campaigns whose send time is not after `now`, earliest first
    /// and, at the same time, highest priority first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRow`] when a stored row cannot be read back.
    pub fn campaigns_due(&self, now: DateTime<Utc>) -> Result<Vec<Campaign>> {
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns \
             WHERE status = 'scheduled' AND send_at_ms <= ?1 \
             ORDER BY send_at_ms, priority DESC, id"
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        let mut rows = statement.query([to_ms(now)])?;
        let mut campaigns = Vec::new();
        while let Some(row) = rows.next()? {
            campaigns.push(campaign_from_row(row)?);
        }
        Ok(campaigns)
    }

    /// Sets a campaign's status. Scheduling a draft with no send time makes it due at once.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign does not exist.
    pub fn set_campaign_status(
        &self,
        id: CampaignId,
        status: CampaignStatus,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let changed = self.write(|tx| {
            let sql = "UPDATE campaigns SET status = ?2, \
                       send_at_ms = CASE WHEN ?2 = 'scheduled' THEN coalesce(send_at_ms, ?3) \
                                    ELSE send_at_ms END \
                       WHERE id = ?1";
            Ok(tx.execute(sql, params![id.0, enum_text(&status), to_ms(now)])?)
        })?;
        if changed == 0 {
            return Err(Error::not_found("campaign", id));
        }
        Ok(())
    }

    /// Records how many customers a planning of the campaign left out because the template
    /// needs a field they lack. Each planning decides every such customer again, so the
    /// count of the last one replaces the count before.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the campaign does not exist.
    pub fn set_campaign_skipped(&self, id: CampaignId, skipped: u64) -> Result<()> {
        let changed = self.write(|tx| {
            let sql = "UPDATE campaigns SET skipped = ?2 WHERE id = ?1";
            Ok(tx.execute(sql, params![id.0, skipped as i64])?)
        })?;
        if changed == 0 {
            return Err(Error::not_found("campaign", id));
        }
        Ok(())
    }

    /// Sets every campaign that is `running` back to `scheduled`, due at once if it has no
    /// send time, and returns their ids. A campaign stays `running` when the process that
    /// planned it stopped half-way. Once scheduled again, it is planned again, and the
    /// customers decided before keep their deliveries.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the store fails.
    pub fn reschedule_running(&self, now: DateTime<Utc>) -> Result<Vec<CampaignId>> {
        self.write(|tx| {
            let sql = "UPDATE campaigns SET status = 'scheduled', \
                       send_at_ms = coalesce(send_at_ms, ?1) WHERE status = 'running' \
                       RETURNING id";
            let mut statement = tx.prepare(sql)?;
            let ids = statement.query_map([to_ms(now)], |row| Ok(CampaignId(row.get(0)?)))?;
            Ok(ids.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
