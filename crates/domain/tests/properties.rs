//! Properties of `decide` over generated histories, policies and time zones.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tact_domain::{
    Actor, Bucket, CalendarUnit, CareCase, Channel, ConsentMark, ConsentSource, Contact, Customer,
    CustomerId, CustomerView, Decision, Limit, LocalWindow, Outcome, Period, Policy, Preferences,
    Proposal, Purpose, Signal, SignalKind, Span, decide,
};

const ZONES: [Tz; 4] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Asia::Kolkata,
    chrono_tz::UTC,
];
const CHANNELS: [Channel; 3] = [Channel::EMAIL, Channel::SMS, Channel::PHONE];
const PURPOSES: [Purpose; 5] = [
    Purpose::Care,
    Purpose::Sales,
    Purpose::Value,
    Purpose::Survey,
    Purpose::Transactional,
];

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 20, 0, 0, 0).unwrap()
}

fn rolling(max: u32, days: i64) -> Limit {
    Limit {
        max,
        per: Period::Rolling(Span::days(days)),
    }
}

/// Builds a policy with several small caps, so generated sequences hit them often.
fn tight_policy() -> Policy {
    let mut policy = Policy {
        overall: Some(rolling(6, 10)),
        min_gap: Some(Span::seconds(6 * 3_600)),
        default_bucket: Bucket::Weekly,
        ..Policy::default()
    };
    policy.buckets.weekly = rolling(4, 7);
    policy.channel_caps.insert(Channel::SMS, rolling(2, 7));
    policy.purpose_caps.insert(Purpose::Sales, rolling(2, 14));
    policy
}

fn view(zone: Tz) -> CustomerView {
    let mut preferences = Preferences::default();
    let weekly_email = Limit {
        max: 2,
        per: Period::Calendar(CalendarUnit::Week),
    };
    preferences
        .channel_cadence
        .insert(Channel::EMAIL, weekly_email);
    CustomerView {
        customer: Customer {
            id: CustomerId(1),
            external_id: "c-1".into(),
            name: Some("Ann Example".into()),
            email: Some("ann@example.com".into()),
            phone: Some("+1 555 0100".into()),
            time_zone: zone,
            locale: "en-US".into(),
            account: None,
            bucket: None,
        },
        preferences,
        contacts: vec![],
        account_contacts: vec![],
        signals: vec![],
        cases: vec![],
        suppressions: vec![],
    }
}

fn local_window(start: (u32, u32), end: (u32, u32), days: Vec<Weekday>) -> LocalWindow {
    LocalWindow {
        start: NaiveTime::from_hms_opt(start.0, start.1, 0).unwrap(),
        end: NaiveTime::from_hms_opt(end.0, end.1, 0).unwrap(),
        days,
    }
}

fn contact(channel: Channel, purpose: Purpose, at: DateTime<Utc>) -> Contact {
    Contact {
        customer: CustomerId(1),
        channel,
        purpose,
        topic: None,
        campaign: None,
        at,
        duration_s: 0,
        outcome: Outcome::Sent,
    }
}

fn counted(contact: &Contact) -> bool {
    contact.purpose != Purpose::Transactional
}

/// Finds the largest sum of `weight` over contacts in any rolling window `(t - span, t]`.
fn max_in_window(contacts: &[&Contact], span: Duration, weight: impl Fn(&Contact) -> u64) -> u64 {
    contacts
        .iter()
        .map(|end| {
            contacts
                .iter()
                .filter(|c| c.at > end.at - span && c.at <= end.at)
                .map(|c| weight(c))
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// Finds the largest number of email contacts in one calendar week, Monday to Monday, local time.
fn max_emails_per_week(contacts: &[&Contact], zone: Tz) -> usize {
    use chrono::Datelike;
    let mut weeks = std::collections::BTreeMap::new();
    for contact in contacts.iter().filter(|c| c.channel == Channel::EMAIL) {
        let local = contact.at.with_timezone(&zone).date_naive();
        *weeks.entry(local.iso_week()).or_insert(0) += 1;
    }
    weeks.into_values().max().unwrap_or(0)
}

fn step() -> impl Strategy<Value = (usize, usize, i64)> {
    (0..CHANNELS.len(), 0..PURPOSES.len(), 60i64..3 * 86_400)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 150,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replayed_approvals_respect_caps(
        zone in 0..ZONES.len(),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let zone = ZONES[zone];
        let policy = tight_policy();
        let mut customer = view(zone);
        let mut now = start();
        for (channel, purpose, gap) in steps {
            now += Duration::seconds(gap);
            let proposal = Proposal::new(CustomerId(1), CHANNELS[channel].clone(), PURPOSES[purpose]);
            if let Decision::Approve(_) = decide(&proposal, &customer, &policy, now) {
                customer.contacts.push(contact(CHANNELS[channel].clone(), PURPOSES[purpose], now));
            }
        }

        let sent: Vec<&Contact> = customer.contacts.iter().filter(|c| counted(c)).collect();
        let sms: Vec<&Contact> = sent.iter().copied().filter(|c| c.channel == Channel::SMS).collect();
        let marketing: Vec<&Contact> = sent.iter().copied().filter(|c| c.purpose.is_marketing()).collect();
        let sales: Vec<&Contact> = sent.iter().copied().filter(|c| c.purpose == Purpose::Sales).collect();
        let weight = |c: &Contact| u64::from(policy.channel_weight(&c.channel));
        prop_assert!(max_in_window(&sent, Duration::days(10), weight) <= 6);
        prop_assert!(max_in_window(&marketing, Duration::days(7), |_| 1) <= 4);
        prop_assert!(max_in_window(&sms, Duration::days(7), |_| 1) <= 2);
        prop_assert!(max_in_window(&sales, Duration::days(14), |_| 1) <= 2);
        prop_assert!(max_emails_per_week(&sent, zone) <= 2);
        for pair in sent.windows(2) {
            prop_assert!(pair[1].at - pair[0].at >= Duration::hours(6));
        }
    }

    #[test]
    fn deferral_until_is_exact(
        zone in 0..ZONES.len(),
        history in prop::collection::vec(
            (0..CHANNELS.len(), 0..PURPOSES.len(), 0i64..40 * 86_400),
            0..25,
        ),
        negatives in prop::collection::vec(0i64..200 * 86_400, 0..4),
        extras in (0..3usize, proptest::option::of(0i64..120 * 86_400), proptest::option::of(0i64..20 * 86_400)),
        proposed in (0..CHANNELS.len(), 0..4usize, any::<bool>()),
        offset in 0i64..300 * 86_400,
    ) {
        let zone = ZONES[zone];
        let policy = tight_policy();
        let now = start() + Duration::seconds(offset);
        let mut customer = view(zone);
        let mut past: Vec<Contact> = history
            .into_iter()
            .map(|(channel, purpose, ago)| {
                contact(CHANNELS[channel].clone(), PURPOSES[purpose], now - Duration::seconds(ago))
            })
            .collect();
        past.sort_by_key(|c| c.at);
        customer.contacts = past;
        let mut signals: Vec<Signal> = negatives
            .into_iter()
            .map(|ago| Signal::new(SignalKind::NegativeTone, now - Duration::seconds(ago)))
            .collect();
        let (window, declined, closed) = extras;
        if let Some(ago) = declined {
            signals.push(Signal::new(SignalKind::Declined, now - Duration::seconds(ago)));
        }
        signals.sort_by_key(|s| s.at);
        customer.signals = signals;
        if let Some(ago) = closed {
            let closed_at = now - Duration::seconds(ago);
            customer.cases.push(CareCase { opened_at: closed_at - Duration::days(3), closed_at: Some(closed_at) });
        }
        customer.preferences.window = match window {
            0 => None,
            1 => Some(local_window((9, 0), (17, 30), vec![Weekday::Mon, Weekday::Wed, Weekday::Fri])),
            _ => Some(local_window((19, 0), (9, 0), vec![])),
        };
        let mut proposal = Proposal::new(CustomerId(1), CHANNELS[proposed.0].clone(), PURPOSES[proposed.1]);
        proposal.offer = proposed.2 && PURPOSES[proposed.1] != Purpose::Care;

        if let Decision::Defer { until, .. } = decide(&proposal, &customer, &policy, now) {
            let at_until = decide(&proposal, &customer, &policy, until);
            let just_before = decide(&proposal, &customer, &policy, until - Duration::seconds(1));

            prop_assert!(matches!(at_until, Decision::Approve(_)), "at {until}: {at_until:?}");
            prop_assert!(!matches!(just_before, Decision::Approve(_)), "before {until}");
        }
    }

    #[test]
    fn opt_outs_deny_non_transactional(
        zone in 0..ZONES.len(),
        channel in 0..CHANNELS.len(),
        purpose in 0..4usize,
        kind in 0..3usize,
        offset in 0i64..300 * 86_400,
    ) {
        let mut customer = view(ZONES[zone]);
        let mark = ConsentMark { actor: Actor::Customer, source: ConsentSource::Link, at: start() };
        let purpose = PURPOSES[purpose];
        match kind {
            0 => customer.preferences.do_not_contact = Some(mark),
            1 => {
                customer.preferences.channel_opt_outs.insert(CHANNELS[channel].clone(), mark);
            }
            _ => customer.preferences.marketing_opt_out = Some(mark),
        }
        let proposal = Proposal::new(CustomerId(1), CHANNELS[channel].clone(), purpose);
        let now = start() + Duration::seconds(offset);

        let decision = decide(&proposal, &customer, &Policy::default(), now);

        let covered = kind != 2 || purpose.is_marketing();
        prop_assert_eq!(decision.kind() == "deny", covered);
    }
}
