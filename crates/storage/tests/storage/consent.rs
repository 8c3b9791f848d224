use tact_domain::{Actor, Channel, ConsentChange, ConsentMark, ConsentSource, Topic};
use tact_storage::Error;

use crate::common::{TestResult, customer, raw, temp_store, utc};

fn mark(actor: Actor, source: ConsentSource, day: u32) -> ConsentMark {
    ConsentMark {
        actor,
        source,
        at: utc(2026, 5, day, 12, 0),
    }
}

#[test]
fn apply_consent_logs_each_change() -> TestResult {
    let (_folder, store) = temp_store()?;
    let id = store.upsert_customer(&customer("c1"))?;
    let opt_out = ConsentChange::Topic {
        topic: Topic::parse("offers")?,
        allowed: false,
    };
    let first = mark(Actor::Customer, ConsentSource::Link, 1);
    let pause = ConsentChange::Pause {
        until: Some(utc(2026, 6, 1, 0, 0)),
    };
    let second = mark(Actor::Staff, ConsentSource::Agent, 2);

    let after_first = store.apply_consent(id, &opt_out, first)?;
    let after_second = store.apply_consent(id, &pause, second)?;

    assert_eq!(
        after_first.topic_opt_outs.get(&Topic::parse("offers")?),
        Some(&first)
    );
    assert_eq!(after_second.paused_until, Some(utc(2026, 6, 1, 0, 0)));
    assert_eq!(store.preferences(id)?, after_second);
    let log = store.consent_log(id)?;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].change, opt_out);
    assert_eq!(log[0].mark, first);
    assert_eq!(log[1].change, pause);
    assert_eq!(log[1].mark, second);
    assert!(log[0].id < log[1].id);
    Ok(())
}

#[test]
fn apply_consents_saves_all_or_none() -> TestResult {
    let (_folder, store) = temp_store()?;
    let id = store.upsert_customer(&customer("c1"))?;
    let opt_out = ConsentChange::Marketing { allowed: false };
    store.apply_consent(id, &opt_out, mark(Actor::Customer, ConsentSource::Link, 1))?;
    let pause = ConsentChange::Pause {
        until: Some(utc(2026, 6, 1, 0, 0)),
    };
    let lift = ConsentChange::Marketing { allowed: true };
    let staff = mark(Actor::Staff, ConsentSource::Api, 2);

    let error = store
        .apply_consents(id, &[pause.clone(), lift], staff)
        .unwrap_err();
    let saved = store.apply_consents(id, std::slice::from_ref(&pause), staff)?;

    assert!(
        matches!(
            error,
            Error::Domain(tact_domain::Error::ConsentLocked { .. })
        ),
        "{error}"
    );
    assert_eq!(saved.paused_until, Some(utc(2026, 6, 1, 0, 0)));
    let log = store.consent_log(id)?;
    let changes: Vec<&ConsentChange> = log.iter().map(|event| &event.change).collect();
    assert_eq!(changes, [&opt_out, &pause]);
    Ok(())
}

#[test]
fn staff_cannot_lift_customer_opt_out() -> TestResult {
    let (_folder, store) = temp_store()?;
    let id = store.upsert_customer(&customer("c1"))?;
    let opt_out = ConsentChange::Channel {
        channel: Channel::EMAIL,
        allowed: false,
    };
    let opt_in = ConsentChange::Channel {
        channel: Channel::EMAIL,
        allowed: true,
    };
    store.apply_consent(id, &opt_out, mark(Actor::Customer, ConsentSource::Link, 1))?;

    let error = store
        .apply_consent(id, &opt_in, mark(Actor::Staff, ConsentSource::Agent, 2))
        .unwrap_err();

    assert!(
        matches!(
            error,
            Error::Domain(tact_domain::Error::ConsentLocked { .. })
        ),
        "{error}"
    );
    assert_eq!(store.consent_log(id)?.len(), 1);
    assert!(
        store
            .preferences(id)?
            .channel_opt_outs
            .contains_key(&Channel::EMAIL)
    );
    Ok(())
}

#[test]
fn consent_log_rejects_raw_update_delete() -> TestResult {
    let (folder, store) = temp_store()?;
    let id = store.upsert_customer(&customer("c1"))?;
    let change = ConsentChange::Marketing { allowed: false };
    store.apply_consent(id, &change, mark(Actor::Customer, ConsentSource::Link, 1))?;
    let connection = raw(&folder);

    let update = connection.execute("UPDATE consent_events SET actor = 'staff'", []);
    let delete = connection.execute("DELETE FROM consent_events", []);

    let update = update.unwrap_err().to_string();
    let delete = delete.unwrap_err().to_string();
    assert!(
        update.contains("append-only: rows cannot be updated"),
        "{update}"
    );
    assert!(
        delete.contains("append-only: rows cannot be deleted"),
        "{delete}"
    );
    assert_eq!(store.consent_log(id)?.len(), 1);
    assert_eq!(store.consent_log(id)?[0].mark.actor, Actor::Customer);
    Ok(())
}
