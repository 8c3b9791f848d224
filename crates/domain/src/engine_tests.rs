//! Whole-decision tests: rule interplay, exact deferrals, stale proposals, transactional
//! messages and daylight-saving changes.

use super::*;
use crate::testing::{contact, proposal, utc, view, view_in};
use crate::{
    Actor, CareCase, Channel, ConsentMark, ConsentSource, Content, LocalWindow, Signal, SignalKind,
    Suppression, SuppressionReason,
};
use chrono::{Duration, NaiveTime};

fn mark() -> ConsentMark {
    ConsentMark {
        actor: Actor::Customer,
        source: ConsentSource::Link,
        at: utc(2026, 1, 5, 9, 0),
    }
}

fn rules_of(decision: &Decision) -> Vec<RuleId> {
    decision
        .reasons()
        .iter()
        .map(|reason| reason.rule)
        .collect()
}

fn hours(start: (u32, u32), end: (u32, u32)) -> LocalWindow {
    LocalWindow {
        start: NaiveTime::from_hms_opt(start.0, start.1, 0).unwrap(),
        end: NaiveTime::from_hms_opt(end.0, end.1, 0).unwrap(),
        days: vec![],
    }
}

#[test]
fn empty_history_approves() {
    let now = utc(2026, 6, 10, 10, 0);
    let sales = proposal(Channel::EMAIL, Purpose::Sales);

    let decision = decide(&sales, &view(), &Policy::default(), now);

    let Decision::Approve(approval) = decision else {
        panic!("expected an approval, got {decision:?}");
    };
    assert_eq!(approval.proposal(), &sales);
    assert_eq!(approval.decided_at(), now);
    assert_eq!(approval.expires_at(), utc(2026, 6, 10, 10, 15));
}

#[test]
fn marketing_opt_out_denies_sales() {
    let mut customer = view();
    customer.preferences.marketing_opt_out = Some(mark());
    let sales = proposal(Channel::EMAIL, Purpose::Sales);

    let decision = decide(
        &sales,
        &customer,
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    assert_eq!(decision.kind(), "deny");
    assert_eq!(rules_of(&decision), [RuleId::MarketingOptOut]);
}

#[test]
fn suppression_denies_transactional() {
    let mut customer = view();
    customer.suppressions.push(Suppression {
        channel: Channel::EMAIL,
        reason: SuppressionReason::HardBounce,
        at: utc(2026, 2, 1, 0, 0),
    });
    let receipt = proposal(Channel::EMAIL, Purpose::Transactional);

    let decision = decide(
        &receipt,
        &customer,
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    assert_eq!(decision.kind(), "deny");
    assert_eq!(rules_of(&decision), [RuleId::Suppressed]);
}

#[test]
fn complaint_suppression_spares_transactional() {
    let mut customer = view();
    customer.suppressions.push(Suppression {
        channel: Channel::EMAIL,
        reason: SuppressionReason::Complaint,
        at: utc(2026, 2, 1, 0, 0),
    });
    let now = utc(2026, 6, 10, 10, 0);
    let receipt = proposal(Channel::EMAIL, Purpose::Transactional);
    let value = proposal(Channel::EMAIL, Purpose::Value);

    let receipt_decision = decide(&receipt, &customer, &Policy::default(), now);
    let value_decision = decide(&value, &customer, &Policy::default(), now);

    assert_eq!(receipt_decision.kind(), "approve");
    assert_eq!(rules_of(&value_decision), [RuleId::Suppressed]);
}

#[test]
fn transactional_skips_everything_else() {
    // Do-not-contact, a pause, a full budget and quiet hours: a receipt still goes now.
    let mut customer = view();
    customer.preferences.do_not_contact = Some(mark());
    customer.preferences.paused_until = Some(utc(2026, 12, 1, 0, 0));
    for day in 1..=9 {
        customer.contacts.push(contact(
            Channel::PHONE,
            Purpose::Care,
            utc(2026, 6, day, 9, 0),
        ));
    }
    let receipt = proposal(Channel::EMAIL, Purpose::Transactional);
    let night = utc(2026, 6, 10, 1, 0);

    let decision = decide(&receipt, &customer, &Policy::default(), night);

    assert_eq!(decision.kind(), "approve");
}

#[test]
fn no_email_address_denies() {
    let mut customer = view();
    customer.customer.email = None;
    let receipt = proposal(Channel::EMAIL, Purpose::Transactional);

    let decision = decide(
        &receipt,
        &customer,
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    let expected = "the customer has no email address for email contact";
    assert_eq!(rules_of(&decision), [RuleId::NoAddress]);
    assert_eq!(decision.reasons()[0].message, expected);
}

#[test]
fn denial_wins_over_deferral() {
    let mut customer = view();
    customer.preferences.paused_until = Some(utc(2026, 7, 1, 0, 0));
    customer
        .preferences
        .topic_opt_outs
        .insert(crate::Topic::parse("solar").unwrap(), mark());
    let mut sales = proposal(Channel::EMAIL, Purpose::Sales);
    sales.topic = Some(crate::Topic::parse("solar").unwrap());

    let decision = decide(
        &sales,
        &customer,
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    assert_eq!(decision.kind(), "deny");
    assert_eq!(rules_of(&decision), [RuleId::TopicOptOut]);
}

#[test]
fn pause_end_at_night_waits_for_morning() {
    // The pause ends at 23:00 Berlin time; quiet hours then push to 08:00 the next day.
    let mut customer = view();
    customer.preferences.paused_until = Some(utc(2026, 6, 12, 21, 0));
    let value = proposal(Channel::EMAIL, Purpose::Value);

    let decision = decide(
        &value,
        &customer,
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    assert_eq!(decision.until(), Some(utc(2026, 6, 13, 6, 0)));
    assert_eq!(rules_of(&decision), [RuleId::Paused, RuleId::QuietHours]);
}

#[test]
fn deferral_across_spring_forward() {
    // Berlin, Saturday 2026-03-28 at 21:00 local (20:00 UTC): quiet hours defer to Sunday
    // 08:00, which is already summer time (UTC+2): 06:00 UTC, not 07:00.
    let value = proposal(Channel::EMAIL, Purpose::Value);

    let decision = decide(&value, &view(), &Policy::default(), utc(2026, 3, 28, 20, 0));

    assert_eq!(decision.until(), Some(utc(2026, 3, 29, 6, 0)));
    assert_eq!(rules_of(&decision), [RuleId::QuietHours]);
}

#[test]
fn deferral_across_fall_back() {
    // New York, Saturday 2026-10-31 at 21:00 local (01:00 UTC on Nov 1, UTC-4): quiet hours
    // defer to Sunday 08:00 in standard time (UTC-5): 13:00 UTC.
    let customer = view_in(chrono_tz::America::New_York);
    let value = proposal(Channel::EMAIL, Purpose::Value);

    let decision = decide(
        &value,
        &customer,
        &Policy::default(),
        utc(2026, 11, 1, 1, 0),
    );

    assert_eq!(decision.until(), Some(utc(2026, 11, 1, 13, 0)));
}

#[test]
fn window_and_budget_combine() {
    // The bucket allows the next contact at 2026-07-10 03:00 UTC (05:00 Berlin), but the
    // customer only takes contact from 17:30 local: 15:30 UTC.
    let mut customer = view();
    customer.contacts.push(contact(
        Channel::EMAIL,
        Purpose::Value,
        utc(2026, 6, 10, 3, 0),
    ));
    customer.preferences.window = Some(hours((17, 30), (19, 0)));
    let value = proposal(Channel::EMAIL, Purpose::Value);

    let decision = decide(
        &value,
        &customer,
        &Policy::default(),
        utc(2026, 6, 20, 10, 0),
    );

    assert_eq!(decision.until(), Some(utc(2026, 7, 10, 15, 30)));
    assert_eq!(
        rules_of(&decision),
        [RuleId::BucketCadence, RuleId::ContactWindow]
    );
}

#[test]
fn disjoint_windows_deny() {
    // The customer's window (21:00 to 22:00) never meets the company's 08:00 to 20:00.
    let mut customer = view();
    customer.preferences.window = Some(hours((21, 0), (22, 0)));
    let value = proposal(Channel::EMAIL, Purpose::Value);

    let decision = decide(
        &value,
        &customer,
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    assert_eq!(decision.kind(), "deny");
    assert_eq!(
        rules_of(&decision),
        [RuleId::ContactWindow, RuleId::QuietHours]
    );
}

#[test]
fn stale_deferral_becomes_denial() {
    let mut customer = view();
    customer
        .signals
        .push(Signal::new(SignalKind::Declined, utc(2026, 6, 1, 9, 0)));
    let mut offer = proposal(Channel::PHONE, Purpose::Sales);
    offer.relevant_until = Some(utc(2026, 6, 30, 0, 0));

    let decision = decide(
        &offer,
        &customer,
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    let expected = "the earliest allowed time 2026-08-30T09:00:00Z is after the proposal's \
                    deadline 2026-06-30T00:00:00Z";
    assert_eq!(decision.kind(), "deny");
    assert_eq!(rules_of(&decision), [RuleId::DeclinedTopic, RuleId::Stale]);
    assert_eq!(decision.reasons()[1].message, expected);
}

#[test]
fn past_deadline_is_stale() {
    let mut offer = proposal(Channel::EMAIL, Purpose::Sales);
    offer.relevant_until = Some(utc(2026, 6, 1, 0, 0));

    let decision = decide(&offer, &view(), &Policy::default(), utc(2026, 6, 10, 10, 0));

    assert_eq!(rules_of(&decision), [RuleId::Stale]);
}

#[test]
fn open_case_denies_only_sales() {
    let mut customer = view();
    customer.cases.push(CareCase {
        opened_at: utc(2026, 6, 1, 9, 0),
        closed_at: None,
    });
    let now = utc(2026, 6, 10, 10, 0);

    let sales = decide(
        &proposal(Channel::EMAIL, Purpose::Sales),
        &customer,
        &Policy::default(),
        now,
    );
    let care = decide(
        &proposal(Channel::EMAIL, Purpose::Care),
        &customer,
        &Policy::default(),
        now,
    );

    assert_eq!(rules_of(&sales), [RuleId::OpenCareCase]);
    assert_eq!(care.kind(), "approve");
}

#[test]
fn generic_greeting_denies_campaign() {
    let mut letter = proposal(Channel::EMAIL, Purpose::Value);
    letter.content = Some(Content {
        greeting: Some("Dear Sir or Madam,".to_owned()),
        personalised: false,
    });

    let decision = decide(
        &letter,
        &view(),
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    assert_eq!(
        rules_of(&decision),
        [RuleId::GenericGreeting, RuleId::Unpersonalised]
    );
}

#[test]
fn decision_json_shape() {
    let mut customer = view();
    customer.preferences.paused_until = Some(utc(2026, 6, 12, 8, 0));
    let value = proposal(Channel::EMAIL, Purpose::Value);

    let decision = decide(
        &value,
        &customer,
        &Policy::default(),
        utc(2026, 6, 10, 10, 0),
    );

    let json = serde_json::to_string(&decision).unwrap();
    let expected = r#"{"decision":"defer","until":"2026-06-12T08:00:00Z","reasons":[{"rule":"paused","message":"contact is paused until 2026-06-12T08:00:00Z"}]}"#;
    assert_eq!(json, expected);
}

#[test]
fn rolling_cadence_edges() {
    // 1 per 30 days: a contact exactly 30 days ago is out of the window, one sent a second
    // later is in, and the deferral ends exactly 30 days after it.
    let now = utc(2026, 6, 30, 10, 0);
    let value = proposal(Channel::EMAIL, Purpose::Value);
    let mut out = view();
    out.contacts.push(contact(
        Channel::EMAIL,
        Purpose::Value,
        now - Duration::days(30),
    ));
    let mut inside = view();
    let sent = now - Duration::days(30) + Duration::seconds(1);
    inside
        .contacts
        .push(contact(Channel::EMAIL, Purpose::Value, sent));

    let out_decision = decide(&value, &out, &Policy::default(), now);
    let inside_decision = decide(&value, &inside, &Policy::default(), now);

    assert_eq!(out_decision.kind(), "approve");
    assert_eq!(inside_decision.until(), Some(now + Duration::seconds(1)));
    assert_eq!(rules_of(&inside_decision), [RuleId::BucketCadence]);
}

#[test]
fn calendar_month_across_fall_back() {
    // New York: November 2026 starts at midnight daylight time (UTC-4), 04:00 UTC, on the
    // day clocks fall back. An October SMS blocks another until then, and quiet hours
    // move it on to 08:00 standard time (UTC-5), 13:00 UTC.
    let mut customer = view_in(chrono_tz::America::New_York);
    let monthly = crate::Limit {
        max: 1,
        per: crate::Period::Calendar(crate::CalendarUnit::Month),
    };
    customer
        .preferences
        .channel_cadence
        .insert(Channel::SMS, monthly);
    customer.preferences.cadence = Some(crate::Limit {
        max: 10,
        per: crate::Period::Rolling(crate::Span::days(1)),
    });
    customer.contacts.push(contact(
        Channel::SMS,
        Purpose::Value,
        utc(2026, 10, 31, 14, 0),
    ));
    let text = proposal(Channel::SMS, Purpose::Value);
    let mut policy = Policy {
        quiet_hours: None,
        min_gap: None,
        ..Policy::default()
    };

    let decision = decide(&text, &customer, &policy, utc(2026, 10, 31, 16, 0));
    policy.quiet_hours = Some(hours((8, 0), (20, 0)));
    let with_hours = decide(&text, &customer, &policy, utc(2026, 10, 31, 16, 0));

    let expected = "1 contact this calendar month; the customer's limit on sms is 1 per \
                    calendar month";
    assert_eq!(decision.until(), Some(utc(2026, 11, 1, 4, 0)));
    assert_eq!(decision.reasons()[0].message, expected);
    assert_eq!(with_hours.until(), Some(utc(2026, 11, 1, 13, 0)));
    assert_eq!(
        rules_of(&with_hours),
        [RuleId::ChannelCadence, RuleId::QuietHours]
    );
}

#[test]
fn zero_cap_denies_with_never() {
    let mut policy = Policy::default();
    let never = crate::Limit {
        max: 0,
        per: crate::Period::Rolling(crate::Span::days(30)),
    };
    policy.channel_caps.insert(Channel::PHONE, never);
    let call = proposal(Channel::PHONE, Purpose::Care);

    let decision = decide(&call, &view(), &policy, utc(2026, 6, 10, 10, 0));

    assert_eq!(rules_of(&decision), [RuleId::ChannelCap]);
    assert_eq!(
        decision.reasons()[0].message,
        "the company limit on phone is 0 (never)"
    );
}

#[test]
fn unsorted_history_still_exact() {
    let now = utc(2026, 6, 30, 10, 0);
    let mut customer = view();
    customer.contacts.push(contact(
        Channel::EMAIL,
        Purpose::Value,
        utc(2026, 6, 20, 9, 0),
    ));
    customer.contacts.push(contact(
        Channel::EMAIL,
        Purpose::Value,
        utc(2026, 5, 1, 9, 0),
    ));
    let value = proposal(Channel::EMAIL, Purpose::Value);

    let decision = decide(&value, &customer, &Policy::default(), now);

    assert_eq!(decision.until(), Some(utc(2026, 7, 20, 9, 0)));
}
