//! The command line, run as a real process on a temporary database.

use crate::harness::{Workspace, wall_clock};

fn check_json(
    workspace: &Workspace,
    customer: &str,
    purpose: &str,
    at: &str,
    extra: &[&str],
) -> String {
    let mut args = vec![
        "check",
        "--customer",
        customer,
        "--channel",
        "email",
        "--purpose",
        purpose,
        "--at",
        at,
        "--json",
    ];
    args.extend_from_slice(extra);
    workspace.run_ok(&args)
}

#[test]
fn check_json_approves_fresh_customer() {
    let workspace = Workspace::new();
    workspace.import_customers();

    let output = check_json(&workspace, "c2", "value", "2026-03-02T10:00:00Z", &[]);

    assert_eq!(
        output,
        "{\"decision\":\"approve\",\"until\":null,\"reasons\":[]}\n"
    );
}

#[test]
fn check_json_defers_to_quiet_hours_end() {
    let workspace = Workspace::new();
    workspace.import_customers();

    let output = check_json(&workspace, "c2", "value", "2026-03-02T21:30:00Z", &[]);

    assert_eq!(
        output,
        "{\"decision\":\"defer\",\"until\":\"2026-03-03T08:00:00Z\",\"reasons\":[{\"rule\":\
         \"quiet_hours\",\"message\":\"it is Mon 21:30 in UTC, outside the company's contact \
         hours of 08:00 to 20:00\"}]}\n"
    );
}

#[test]
fn check_json_defers_across_dst_change() {
    // 2026-03-29 is the spring-forward day in Berlin: 08:00 local is 06:00 UTC.
    let workspace = Workspace::new();
    workspace.import_customers();

    let output = check_json(&workspace, "c1", "value", "2026-03-29T05:30:00Z", &[]);

    let value: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(value["decision"], "defer");
    assert_eq!(value["until"], "2026-03-29T06:00:00Z");
    assert_eq!(value["reasons"][0]["rule"], "quiet_hours");
}

#[test]
fn check_json_denies_care_offer() {
    let workspace = Workspace::new();
    workspace.import_customers();

    let output = check_json(
        &workspace,
        "c2",
        "care",
        "2026-03-02T10:00:00Z",
        &["--offer"],
    );

    assert_eq!(
        output,
        "{\"decision\":\"deny\",\"until\":null,\"reasons\":[{\"rule\":\"care_offer\",\
         \"message\":\"a care message must not carry an offer\"}]}\n"
    );
}

#[test]
fn check_json_denies_after_opt_out() {
    let workspace = Workspace::new();
    workspace.import_customers();
    workspace.run_ok(&[
        "prefs",
        "set",
        "c2",
        "--marketing",
        "off",
        "--actor",
        "customer",
    ]);
    let today = wall_clock().format("%Y-%m-%d");

    let output = check_json(&workspace, "c2", "sales", "2026-03-02T10:00:00Z", &[]);

    assert_eq!(
        output,
        format!(
            "{{\"decision\":\"deny\",\"until\":null,\"reasons\":[{{\"rule\":\"marketing_opt_out\",\
             \"message\":\"the customer opted out of marketing on {today}, which covers sales \
             contacts\"}}]}}\n"
        )
    );
}

#[test]
fn check_text_explains_denial() {
    let workspace = Workspace::new();
    workspace.import_customers();

    let output = workspace.run_ok(&[
        "check",
        "--customer",
        "c2",
        "--channel",
        "email",
        "--purpose",
        "care",
        "--offer",
        "--at",
        "2026-03-02T10:00:00Z",
    ]);

    assert_eq!(
        output,
        "deny: the care email contact with c2 must not happen\n  \
         care_offer: a care message must not carry an offer\n"
    );
}

#[test]
fn check_unknown_customer_fails() {
    let workspace = Workspace::new();

    let output = workspace.run(&[
        "check",
        "--customer",
        "nobody",
        "--channel",
        "email",
        "--purpose",
        "sales",
    ]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: customer with external id nobody not found\n"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn care_case_defers_sales_after_close() {
    let workspace = Workspace::new();
    workspace.import_customers();
    workspace.run_ok(&["case", "open", "c1", "--at", "2026-03-01T10:00:00Z"]);
    workspace.run_ok(&["case", "close", "c1", "--at", "2026-03-02T10:00:00Z"]);

    let output = check_json(&workspace, "c1", "sales", "2026-03-02T11:00:00Z", &[]);

    let value: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(value["decision"], "defer");
    assert_eq!(value["until"], "2026-03-09T10:00:00Z");
    assert_eq!(value["reasons"][0]["rule"], "open_care_case");
}

#[test]
fn import_reports_rejected_rows() {
    let workspace = Workspace::new();
    let file = workspace.write(
        "customers.csv",
        "external_id,name,email,timezone\nc1,Ann,ann@example.com,UTC\nc2,Bob,not-an-email,UTC\n",
    );
    let path = file.to_str().unwrap();

    let first = workspace.run(&["import", "customers", path]);
    let second = workspace.run(&["import", "customers", path]);

    assert_eq!(first.status.code(), Some(2));
    let rejected = "line 3: invalid email \"not-an-email\": it is not a valid email address such \
                    as ann@example.com\n";
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        format!(
            "customers from {path}: 1 inserted, 0 updated, 0 unchanged, 1 rejected\n{rejected}"
        )
    );
    assert_eq!(second.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&second.stdout),
        format!(
            "customers from {path}: 0 inserted, 0 updated, 1 unchanged, 1 rejected\n{rejected}"
        )
    );
}

#[test]
fn import_clean_file_exits_zero() {
    let workspace = Workspace::new();
    let file = workspace.write("customers.csv", crate::harness::CUSTOMERS);

    let output = workspace.run(&["import", "customers", file.to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn init_refuses_to_overwrite() {
    let workspace = Workspace::new();
    let before = std::fs::read_to_string(workspace.config()).unwrap();

    let output = workspace.run(&["init"]);

    assert_eq!(output.status.code(), Some(1));
    let message = format!(
        "error: {} already exists; tact init never overwrites a configuration\n",
        workspace.config().display()
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), message);
    assert_eq!(std::fs::read_to_string(workspace.config()).unwrap(), before);
}

#[test]
fn customer_option_matches_positional_id() {
    let workspace = Workspace::new();
    workspace.import_customers();

    for command in ["history", "explain"] {
        let positional = workspace.run(&[command, "c1"]);
        let option = workspace.run(&[command, "--customer", "c1"]);
        let both = workspace.run(&[command, "c1", "--customer", "c2"]);

        assert_eq!(positional.status.code(), Some(0), "{command}");
        assert_eq!(option.status.code(), Some(0), "{command}");
        assert_eq!(option.stdout, positional.stdout, "{command}");
        let first = String::from_utf8_lossy(&positional.stdout);
        assert!(
            first.lines().next().unwrap_or_default().contains(" c1 "),
            "{first}"
        );
        assert_eq!(both.status.code(), Some(2), "{command}");
    }
}

#[test]
fn config_error_names_key() {
    let workspace = Workspace::new();
    workspace.append_config("min_gap = \"soon\"\n");

    let output = workspace.run(&["history", "c1"]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: invalid configuration key `policy.min_gap`"),
        "{stderr}"
    );
}

#[test]
fn environment_overrides_policy_key() {
    let workspace = Workspace::new();
    workspace.import_customers();

    let output = workspace
        .command()
        .args([
            "check",
            "--customer",
            "c2",
            "--channel",
            "email",
            "--purpose",
            "sales",
        ])
        .args(["--at", "2026-03-02T10:00:00Z", "--json"])
        .env("TACT_POLICY_PURPOSE_CAPS_SALES_MAX", "0")
        .output()
        .unwrap();

    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        value["decision"],
        "deny",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(value["reasons"][0]["rule"], "purpose_cap");
}

#[test]
fn prefs_set_writes_consent_log() {
    let workspace = Workspace::new();
    workspace.import_customers();

    workspace.run_ok(&[
        "prefs",
        "set",
        "c1",
        "--bucket",
        "quarterly",
        "--block-channel",
        "sms",
    ]);
    let output = workspace.run_ok(&["prefs", "show", "c1", "--json"]);

    let value: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(value["preferences"]["bucket"], "quarterly");
    assert_eq!(
        value["preferences"]["channel_opt_outs"]["sms"]["actor"],
        "staff"
    );
    let log = value["consent_log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[0]["change"],
        serde_json::json!({"change": "channel", "channel": "sms", "allowed": false})
    );
    assert_eq!(
        log[1]["change"],
        serde_json::json!({"change": "bucket", "bucket": "quarterly"})
    );
    assert_eq!(log[1]["source"], "cli");
}

#[test]
fn staff_cannot_lift_customer_opt_out() {
    let workspace = Workspace::new();
    workspace.import_customers();
    workspace.run_ok(&[
        "prefs",
        "set",
        "c1",
        "--marketing",
        "off",
        "--actor",
        "customer",
    ]);

    let output = workspace.run(&["prefs", "set", "c1", "--marketing", "on"]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("only the customer can change it"),
        "{stderr}"
    );
}

#[test]
fn prefs_set_with_locked_change_saves_nothing() {
    let workspace = Workspace::new();
    workspace.import_customers();
    workspace.run_ok(&[
        "prefs",
        "set",
        "c1",
        "--marketing",
        "off",
        "--actor",
        "customer",
    ]);

    // The do-not-contact change is valid and comes before the rejected marketing lift.
    let output = workspace.run(&[
        "prefs",
        "set",
        "c1",
        "--do-not-contact",
        "on",
        "--marketing",
        "on",
        "--bucket",
        "quarterly",
    ]);

    assert_eq!(output.status.code(), Some(1));
    let json = workspace.run_ok(&["prefs", "show", "c1", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["preferences"]["do_not_contact"],
        serde_json::Value::Null
    );
    assert_eq!(value["preferences"]["bucket"], serde_json::Value::Null);
    assert_eq!(
        value["preferences"]["marketing_opt_out"]["actor"],
        "customer"
    );
    let log = value["consent_log"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["actor"], "customer");
}

#[test]
fn rebuild_timelines_takes_rows_written_by_hand() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let store = workspace.store();
    let customer = store.customer_by_external_id("c1").unwrap().id;
    let connection = rusqlite::Connection::open(workspace.path().join("tact.db")).unwrap();
    connection
        .execute(
            "INSERT INTO contacts (customer_id, channel, purpose, at_ms, outcome) \
             VALUES (?1, 'phone', 'sales', 1773046800000, 'answered')",
            [customer.0],
        )
        .unwrap();
    let policy = tact_domain::Policy::default();
    let at = chrono::DateTime::from_timestamp(1_773_050_400, 0).unwrap();
    assert_eq!(
        store
            .load_view(customer, at, &policy)
            .unwrap()
            .contacts
            .len(),
        0
    );

    let output = workspace.run_ok(&["rebuild-timelines"]);

    assert_eq!(
        output,
        "derived the timelines of 1 customers with history\n"
    );
    let contacts = store.load_view(customer, at, &policy).unwrap().contacts;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].channel.as_str(), "phone");
}

#[test]
fn rebuild_timelines_names_unreadable_history() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let customer = workspace.store().customer_by_external_id("c1").unwrap().id;
    let connection = rusqlite::Connection::open(workspace.path().join("tact.db")).unwrap();
    connection
        .execute(
            "INSERT INTO contacts (id, customer_id, channel, purpose, at_ms, outcome) \
             VALUES (70, ?1, 'email', 'value', 1773046800000, 'bounced')",
            [customer.0],
        )
        .unwrap();

    let output = workspace.run(&["rebuild-timelines"]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "derived the timelines of 1 customers with history\n"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "customer c1 (id {customer}): invalid contact row 70: unknown outcome \"bounced\"\n\
         error: the history of 1 customers cannot be read, so tact cannot decide for them; \
         fix or delete the rows named above and run `tact rebuild-timelines` again\n"
    );
    assert_eq!(stderr, expected);
}

#[test]
fn backup_copies_database() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let copy = workspace.path().join("copy.db");

    let first = workspace.run(&["backup", copy.to_str().unwrap()]);
    let second = workspace.run(&["backup", copy.to_str().unwrap()]);

    assert!(first.status.success());
    assert_eq!(second.status.code(), Some(1));
    let restored = tact_storage::Store::open(&copy).unwrap();
    assert_eq!(
        restored
            .customer_by_external_id("c1")
            .unwrap()
            .name
            .as_deref(),
        Some("Ann Lee")
    );
}

#[test]
fn campaign_preview_from_folder() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let folder = workspace.path().join("spring");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("subject.txt"), "Spring tips for {{ name }}").unwrap();
    std::fs::write(
        folder.join("body.txt"),
        "Hello {{ name }},\n\nplant early.\n",
    )
    .unwrap();
    std::fs::write(folder.join("body.html"), "<p>Hello {{ name }}</p>").unwrap();
    let created = workspace.run_ok(&[
        "campaign",
        "create",
        "--name",
        "spring",
        "--template",
        folder.to_str().unwrap(),
        "--purpose",
        "value",
    ]);

    let preview = workspace.run_ok(&[
        "campaign",
        "preview",
        "1",
        "--customer",
        "c2",
        "--at",
        "2026-03-02T10:00:00Z",
    ]);

    assert_eq!(
        created,
        "campaign 1 created; start it with: tact campaign send 1\n"
    );
    assert_eq!(
        preview,
        "Subject: Spring tips for Bob Stone\n\nHello Bob Stone,\n\nplant early.\n\n\
         --- HTML part ---\n<p>Hello Bob Stone</p>\n\n--- decision for c2 ---\napprove\n"
    );
}

#[test]
fn campaign_unknown_field_is_named() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let template = workspace.write(
        "offer.toml",
        "subject = \"Offer\"\ntext = \"Your plan: {{ plan }}\"\n",
    );

    let output = workspace.run(&[
        "campaign",
        "create",
        "--name",
        "offer",
        "--template",
        template.to_str().unwrap(),
        "--purpose",
        "sales",
    ]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("template text uses unknown field `plan`"),
        "{stderr}"
    );
}

/// The header of the customers file of [`offer_without_bobs_plan`].
const OFFER_CUSTOMERS_HEADER: &str = "external_id,name,email,timezone,locale,plan\n";

/// Creates a workspace with Ann, who has a `plan`, Bob, who has none, and campaign 1,
/// whose template shows the plan.
fn offer_without_bobs_plan() -> Workspace {
    let workspace = Workspace::new();
    let customers = workspace.write(
        "customers.csv",
        &format!(
            "{OFFER_CUSTOMERS_HEADER}c1,Ann Lee,ann@example.com,UTC,en,gold\n\
             c2,Bob Stone,bob@example.com,UTC,en,\n"
        ),
    );
    workspace.run_ok(&["import", "customers", customers.to_str().unwrap()]);
    let template = workspace.write(
        "offer.toml",
        "subject = \"Offer\"\ntext = \"Your plan: {{ plan }}\"\n",
    );
    workspace.run_ok(&[
        "campaign",
        "create",
        "--name",
        "offer",
        "--template",
        template.to_str().unwrap(),
        "--purpose",
        "value",
    ]);
    workspace
}

#[test]
fn campaign_send_names_skipped_customer() {
    let workspace = offer_without_bobs_plan();

    let output = workspace.run(&["campaign", "send", "1"]);

    assert!(output.status.success(), "{output:?}");
    // Ann is approved, or deferred when the run falls outside contact hours.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let decided = [
        "1 approved and queued, 0 deferred",
        "0 approved and queued, 1 deferred",
    ]
    .map(|counts| format!("campaign 1: {counts}, 0 denied, 1 skipped\n"));
    assert!(decided.contains(&stdout.to_string()), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let bob = workspace.store().customer_by_external_id("c2").unwrap().id;
    assert!(stderr.contains("cannot be rendered"), "{stderr}");
    assert!(stderr.contains(&format!("customer.id={bob}")), "{stderr}");
    assert!(stderr.contains("customer.external_id=\"c2\""), "{stderr}");
    assert!(stderr.contains("skipped=1"), "{stderr}");

    let preview = workspace.run(&["campaign", "preview", "1", "--customer", "c2"]);
    let status = workspace.run_ok(&["campaign", "status", "1"]);
    let json = workspace.run_ok(&["campaign", "status", "1", "--json"]);

    assert_eq!(preview.status.code(), Some(1));
    assert!(
        status.ends_with(
            "skipped, without a field the template needs: 1 (tact campaign preview 1 \
             --customer ID shows why)\n"
        ),
        "{status}"
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["skipped"], 1);
    assert_eq!(
        String::from_utf8_lossy(&preview.stderr),
        "error: cannot render campaign 1 for customer c2: customer has no value for field \
         `plan`, which the template uses\n"
    );
}

#[test]
fn explain_lists_held_back_deliveries() {
    let workspace = Workspace::new();
    workspace.import_customers();
    workspace.run_ok(&["prefs", "set", "c2", "--block-channel", "email"]);
    workspace.create_tips_campaign();
    workspace.run_ok(&["campaign", "send", "1"]);

    let explain = workspace.run_ok(&["explain", "c2"]);
    let status = workspace.run_ok(&["campaign", "status", "1", "--json"]);

    assert!(
        explain.starts_with(
            "deliveries to c2 (1):\n  delivery 2 of campaign 1 (tips): denied\n    channel_opt_out: "
        ),
        "{explain}"
    );
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["by_rule"]["channel_opt_out"], 1);
    assert_eq!(status["by_state"]["denied"], 1);
}

#[test]
fn campaign_status_names_unsent_deliveries() {
    let workspace = Workspace::new();
    // Contact hours all day, so the approval does not depend on the hour of the run.
    workspace.append_config("quiet_hours = { start = \"00:00\", end = \"00:00\" }\n");
    workspace.import_customers();
    workspace.run_ok(&["prefs", "set", "c2", "--block-channel", "email"]);
    workspace.create_tips_campaign();
    workspace.run_ok(&["campaign", "send", "1"]);

    let status = workspace.run_ok(&["campaign", "status", "1"]);

    assert_eq!(
        status,
        "campaign 1 (tips): done\n\
         deliveries by state:\n  \
         approved: 1\n  \
         denied: 1\n\
         not sent yet:\n  \
         approved, sent by `tact serve`: 1\n\
         held back by rule:\n  \
         channel_opt_out: 1\n"
    );
}

#[test]
fn campaign_status_before_planning() {
    let workspace = Workspace::new();
    workspace.import_customers();
    workspace.create_tips_campaign();

    let status = workspace.run_ok(&["campaign", "status", "1"]);

    assert_eq!(
        status,
        "campaign 1 (tips): draft\ndeliveries by state: none\n"
    );
}

#[test]
fn campaign_create_warns_without_unsubscribe_link() {
    let workspace = Workspace::new();
    workspace.import_customers();
    let cases = [
        ("Hello {{ name }},", "value", true),
        (
            "Hello {{ name }},\\nUnsubscribe: {{ unsubscribe_url }}",
            "value",
            false,
        ),
        ("Your invoice, {{ name }}.", "transactional", false),
    ];
    for (index, (text, purpose, warns)) in cases.into_iter().enumerate() {
        let template = workspace.write(
            &format!("t{index}.toml"),
            &format!("subject = \"Hi\"\ntext = \"{text}\"\n"),
        );
        let name = format!("c{index}");

        let output = workspace.run(&[
            "campaign",
            "create",
            "--name",
            &name,
            "--template",
            template.to_str().unwrap(),
            "--purpose",
            purpose,
        ]);

        assert!(output.status.success(), "{output:?}");
        let expected = if warns {
            format!(
                "warning: the template of this {purpose} campaign never shows \
                 {{{{ unsubscribe_url }}}}; add it to the text so customers can unsubscribe \
                 from the message itself\n"
            )
        } else {
            String::new()
        };
        assert_eq!(String::from_utf8_lossy(&output.stderr), expected, "{text}");
    }
}

#[test]
fn missing_config_suggests_init() {
    let workspace = Workspace::new();

    let output = workspace.run(&["--config", "nothere.toml", "history", "c1"]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: cannot read configuration file nothere.toml (run `tact init` to write one): \
         No such file or directory (os error 2)\n"
    );
}

#[test]
fn serve_requires_api_token() {
    let workspace = Workspace::new();

    let output = workspace
        .command()
        .arg("serve")
        .env("TACT_HTTP_API_TOKEN", "")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: invalid configuration key `http.api_token`: empty; set it (tact init generates \
         one) or TACT_HTTP_API_TOKEN\n"
    );
}

#[test]
fn resumed_planning_skips_only_undecided() {
    let workspace = offer_without_bobs_plan();
    workspace.run_ok(&["campaign", "send", "1"]);
    // A planning that stopped half-way leaves the campaign running. Ann, decided before the
    // stop, loses her plan before the planning resumes.
    let store = workspace.store();
    let campaign = tact_domain::CampaignId(1);
    let now = crate::harness::wall_clock();
    store
        .set_campaign_status(campaign, tact_storage::CampaignStatus::Running, now)
        .unwrap();
    let blank = workspace.write(
        "blank.csv",
        &format!("{OFFER_CUSTOMERS_HEADER}c1,Ann Lee,ann@example.com,UTC,en,\n"),
    );
    workspace.run_ok(&["import", "customers", blank.to_str().unwrap()]);

    workspace.run_ok(&["campaign", "send", "1"]);
    let json = workspace.run_ok(&["campaign", "status", "1", "--json"]);

    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let deliveries: u64 = json["by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(deliveries, 1, "{json}");
    // Only Bob has no delivery, so only Bob is skipped.
    assert_eq!(json["skipped"], 1, "{json}");
}
