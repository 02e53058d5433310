//! The escrow bank's service as its users meet it, on SQLite and on
//! PostgreSQL: people with KYC credentials open accounts for their wallets;
//! an operator credits a deposit, which mints as many deposit tokens; an
//! investor subscribes to two offerings that escrow with the bank; the bank
//! closes both once their windows end — refunding everyone in the one below
//! its soft cap — and, once the issuer has issued the other in full,
//! releases its proceeds to the owner, through kill -9s at short intervals
//! all along; the owner redeems deposit tokens and the operator marks the
//! payout paid. Every step is sent exactly once, every endpoint refuses
//! the wrong caller, and a person's name and address are found nowhere but
//! in the vault's ciphertext.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tranche_api::client::NodeClient;
use tranche_crypto::Keypair;
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_testkit::world::{
    appraisal, claim_until, date, default_rules, record_ownership, register_asset, usd,
};
use tranche_types::{
    ChainId, ClaimTopic, OpenOffering, Payload, RedeemCash, Subscribe, Timestamp, Units,
};

mod support;

use support::services::{
    bearer, call, contains, database_url, did_of, healthy, json_of, kyc_people, login, now_ms, raw,
    send, service_table, start, stop_devnet_service, stored_bytes, text, wait_for, ServiceRun,
};

/// Kills and restarts the service `times` times, `ms` apart: whatever it
/// was doing when killed must be neither lost nor doubled.
fn crash_repeatedly(
    cleanup: &mut support::Running,
    config: &Path,
    log: &Path,
    times: usize,
    ms: u64,
) {
    for i in 0..times {
        std::thread::sleep(std::time::Duration::from_millis(ms + 97 * i as u64));
        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
        cleanup.children.push(start("bank", config, log));
    }
}

#[test]
fn f5_8_rec8_the_bank_mints_escrows_refunds_and_releases_exactly_once_across_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let base = 25_000 + (std::process::id() % 400) as u16 * 10;
    let mut cleanup = support::devnet_up(&dir, base);
    let devnet = DevnetFile::read(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The test runs the bank's service itself, once per database; the
    // devnet's issuer service issues, on its two operators' approval.
    stop_devnet_service(&rt, &devnet, "bank", tranche_bank::MIGRATIONS);
    // It signs as the TSP by hand.
    stop_devnet_service(&rt, &devnet, "tsp", tranche_tsp::MIGRATIONS);
    let issuer_service = support::services::login_devnet_staff(tmp.path(), &devnet, "issuer");
    let pw = PathBuf::from(&devnet.password_file);
    let keys = PathBuf::from(&devnet.keys);
    let open = |name: &str| {
        tranche_keystore::open_key_file(&keys.join(format!("{name}.key")), Some(&pw)).unwrap()
    };
    let [tsp, kyc, appraiser, registry] = [
        "devnet-tsp",
        "devnet-kyc",
        "devnet-appraiser",
        "devnet-registry",
    ]
    .map(open);
    let node = NodeClient::new(&devnet.nodes[0].api, None).unwrap();
    let chain: ChainId = devnet.chain_id.parse().unwrap();
    let t = tmp.path();

    let databases = support::services::test_databases(&rt, t);
    for (run, database) in databases.iter().enumerate() {
        let ServiceRun {
            data,
            listen,
            api,
            config,
            log,
        } = ServiceRun::new(t, "bank", base, run);
        // The devnet's deposit token first; on PostgreSQL a token of its own.
        let token = if run == 0 {
            "USD-DEP".to_string()
        } else {
            format!("USD-PG{run}")
        };
        let table = service_table(
            "devnet-bank",
            (&keys, &pw),
            &devnet.nodes[0].api,
            &listen,
            &data,
            database,
        );
        std::fs::write(
            &config,
            format!(
                "{table}anchor_interval_secs = 3600\ntrusted_issuers = [\"{}\"]\n\n[bank]\ntoken = \"{token}\"\ncurrency = \"USD\"\n",
                did_of(&kyc),
            ),
        )
        .unwrap();

        // Staff: one operator. People: an investor and an owner, each with
        // a wallet of their own key, KYC'd on chain and by credential.
        let op = format!("op{run}");
        let op_key = support::services::operator(t, "bank", &config, &op);
        let people = kyc_people(t, (&keys, &pw), &["investor", "owner"], run);
        let (investor, owner) = (&people[0], &people[1]);
        rt.block_on(async {
            for (_, k) in &people {
                send(
                    &node,
                    &chain,
                    &tsp,
                    Payload::RegisterWallet(Ledger::sign_binding(&chain, k, k)),
                )
                .await;
                let did = Ledger::did_of_key(&k.public_key());
                let kyc_claim = claim_until(&did, ClaimTopic::KYC, None, date("2099-12-31"));
                send(&node, &chain, &kyc, kyc_claim).await;
            }
        });

        cleanup.children.push(start("bank", &config, &log));
        wait_for("the bank's service", || healthy(&api));
        wait_for("the deposit token on chain", || {
            rt.block_on(node.token(&token)).unwrap().is_some()
        });
        for (name, _) in &people {
            let o = login(t, &api, name, &t.join(format!("{name}.kyc.json")));
            assert!(o.status.success(), "{}", text(&o));
        }
        let o = login(t, &api, &op, &t.join(format!("{op}.json")));
        assert!(o.status.success(), "{}", text(&o));

        // Accounts: only a KYC'd person, only for their own wallet.
        let accounts = format!("{api}/accounts");
        let wallet_of = |k: &Keypair| k.address().to_string();
        let body = |k: &Keypair| json!({"wallet": wallet_of(k)}).to_string();
        let json_only = [("content-type", "application/json".to_string())];
        let (status, out) = raw("POST", &accounts, &json_only, &body(&investor.1));
        assert_eq!(
            (status, out["code"].clone()),
            (401, json!("unauthenticated"))
        );
        let (status, out) = raw("POST", &accounts, &bearer(t, &op), &body(&op_key));
        assert_eq!((status, out["code"].clone()), (403, json!("forbidden")));
        let (status, out) = raw("POST", &accounts, &bearer(t, &investor.0), &body(&owner.1));
        assert_eq!(
            (status, out["code"].clone()),
            (403, json!("forbidden")),
            "another's wallet: {out}"
        );
        let (status, out) = raw(
            "POST",
            &accounts,
            &bearer(t, &investor.0),
            r#"{"wallet":"nope"}"#,
        );
        assert_eq!((status, out["code"].clone()), (400, json!("bad_request")));
        for (name, k) in &people {
            for _ in 0..2 {
                let (status, out) = raw("POST", &accounts, &bearer(t, name), &body(k));
                assert_eq!(status, 200, "{out}");
                assert_eq!(out["wallet"], wallet_of(k));
            }
        }
        let (status, _) = raw("GET", &accounts, &bearer(t, &investor.0), "");
        assert_eq!(status, 403, "a customer does not list accounts");

        // A name and an address: only in the vault.
        let seeded = format!("Han Ji-min Seeded{run}");
        let address = format!("{run}7 Sejong-daero, Jongno-gu");
        let (status, _) = raw(
            "PUT",
            &format!("{api}/me/profile"),
            &bearer(t, &investor.0),
            &json!({"name": seeded, "email": format!("{address}@example.com")}).to_string(),
        );
        assert_eq!(status, 204);

        // Deposits: an operator's, bounded, idempotent by reference.
        let deposits = format!("{api}/deposits");
        let investor_did = did_of(&investor.1);
        let deposit = |did: &str, amount: &str, reference: &str| {
            json!({"did": did, "amount": amount, "reference": reference}).to_string()
        };
        let d = deposit(&investor_did, "10000000", &format!("IN-{run}"));
        assert_eq!(raw("POST", &deposits, &json_only, &d).0, 401);
        assert_eq!(raw("POST", &deposits, &bearer(t, &investor.0), &d).0, 403);
        for bad in [
            deposit(&investor_did, "0", "X-1"),
            deposit(&investor_did, "10000000", ""),
            deposit(&investor_did, "10000000", "has space"),
            deposit(&investor_did, "1000000000000000001", "X-2"),
        ] {
            let (status, out) = raw("POST", &deposits, &bearer(t, &op), &bad);
            assert_eq!(
                (status, out["code"].clone()),
                (400, json!("bad_request")),
                "{bad}"
            );
        }
        let (status, _) = raw(
            "POST",
            &deposits,
            &bearer(t, &op),
            &deposit(
                "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
                "1",
                "X-3",
            ),
        );
        assert_eq!(status, 404);
        let (code, out) = call(
            &api,
            "/deposits",
            &[
                "--session",
                &t.join(format!("{op}.session")).display().to_string(),
                "--body",
                &d,
            ],
        );
        assert_eq!(code, 0, "{out}");
        let first = json_of(&out);
        assert_eq!(first["state"], "minting");
        let (status, again) = raw("POST", &deposits, &bearer(t, &op), &d);
        assert_eq!((status, again["tx"].clone()), (200, first["tx"].clone()));
        let other = deposit(&investor_did, "1", &format!("IN-{run}"));
        assert_eq!(raw("POST", &deposits, &bearer(t, &op), &other).0, 409);
        let statement = |name: &str| -> Value {
            let (status, out) = raw("GET", &format!("{api}/accounts/me"), &bearer(t, name), "");
            assert_eq!(status, 200, "{out}");
            out
        };
        wait_for("the minting, final and followed", || {
            statement(&investor.0)["deposits"][0]["state"] == "minted"
        });
        assert_eq!(statement(&investor.0)["balance"], "10000000");

        // Two offerings escrowed with the bank, the second to miss its soft
        // cap; the investor subscribes to both.
        let asset = format!("A-B{run}");
        let cash: tranche_types::TokenId = token.parse().unwrap();
        let closes = now_ms() + 15_000;
        let offering = |id: &str, soft_cap: u128| {
            Payload::OpenOffering(OpenOffering {
                offering: id.parse().unwrap(),
                asset: asset.parse().unwrap(),
                token: format!("S-{id}").parse().unwrap(),
                unit_price: usd(10_000),
                amount: Units(1_000),
                min_units: Units(1),
                max_units: Units(1_000),
                soft_cap: Units(soft_cap),
                opens: Timestamp(now_ms()),
                closes: Timestamp(closes),
                issuer: "devnet-issuer".parse().unwrap(),
                bank: "devnet-bank".parse().unwrap(),
                cash_token: cash.clone(),
                issue_date: date("2026-01-01"),
                expiry_date: date("2036-12-31"),
                rules: default_rules(),
                lockup_until: None,
            })
        };
        let (good, refunded) = (format!("OB{run}"), format!("OR{run}"));
        rt.block_on(async {
            let owner_did = Ledger::did_of_key(&owner.1.public_key());
            send(
                &node,
                &chain,
                &registry,
                record_ownership(&asset, owner_did.clone()),
            )
            .await;
            let price = usd(10_000_000);
            send(
                &node,
                &chain,
                &tsp,
                register_asset(&asset, owner_did, price.clone()),
            )
            .await;
            send(&node, &chain, &appraiser, appraisal(&asset, price)).await;
            send(&node, &chain, &tsp, offering(&good, 500)).await;
            send(&node, &chain, &tsp, offering(&refunded, 1_000)).await;
            for (id, units) in [(&good, 600), (&refunded, 100)] {
                let p = Payload::Subscribe(Subscribe {
                    offering: id.parse().unwrap(),
                    units: Units(units),
                });
                send(&node, &chain, &investor.1, p).await;
            }
        });
        assert_eq!(statement(&investor.0)["balance"], "3000000");

        // Killed again and again while the windows end and the bank closes.
        let wait_ms = closes.saturating_sub(now_ms());
        crash_repeatedly(&mut cleanup, &config, &log, 4, wait_ms / 4);
        crash_repeatedly(&mut cleanup, &config, &log, 4, 300);
        // Sessions are in the database: they outlive the restarts.
        wait_for("the bank's service", || healthy(&api));
        let state_of = |id: &str| -> String {
            let (status, out) = raw("GET", &format!("{api}/offerings"), &bearer(t, &op), "");
            assert_eq!(status, 200, "{out}");
            out.as_array()
                .unwrap()
                .iter()
                .find(|o| o["offering"] == id)
                .map(|o| o["state"].as_str().unwrap().to_string())
                .unwrap_or_default()
        };
        wait_for("the refund", || state_of(&refunded) == "refunded");
        wait_for("the allocation", || state_of(&good) == "allocated");
        assert_eq!(
            statement(&investor.0)["balance"],
            "4000000",
            "the refund came back"
        );
        assert_eq!(
            raw(
                "GET",
                &format!("{api}/offerings"),
                &bearer(t, &investor.0),
                ""
            )
            .0,
            403
        );

        // The issuer's service queued the closed offering; its two
        // operators approve, it issues in full and checks it (SR-1); the
        // bank releases, killed meanwhile.
        let queued = format!("/requests/offering/{good}");
        let issuer_session = |i: usize| {
            t.join(format!("{}.session", issuer_service.staff[i].name))
                .display()
                .to_string()
        };
        wait_for("the issuer's queue", || {
            let (code, out) = call(
                &issuer_service.api,
                &queued,
                &["--session", &issuer_session(0)],
            );
            code == 0 && json_of(&out)["state"] == "pending"
        });
        let (_, out) = call(
            &issuer_service.api,
            &queued,
            &["--session", &issuer_session(0)],
        );
        assert_eq!(json_of(&out)["amount"], "600", "{out}");
        for i in 0..2 {
            let body =
                json!({"decision": "approve", "reason": "allocations as the close fixed them"});
            let (code, out) = call(
                &issuer_service.api,
                &format!("{queued}/decisions"),
                &["--session", &issuer_session(i), "--body", &body.to_string()],
            );
            assert_eq!(code, 0, "{out}");
        }
        crash_repeatedly(&mut cleanup, &config, &log, 3, 200);
        wait_for("the bank's service", || healthy(&api));
        wait_for("the release", || state_of(&good) == "released");
        let (_, out) = call(
            &issuer_service.api,
            &queued,
            &["--session", &issuer_session(1)],
        );
        let checked = json_of(&out);
        assert_eq!(checked["state"], "checked", "{checked}");
        assert!(
            checked["checked"]
                .as_str()
                .unwrap()
                .starts_with("issued 600 of 600"),
            "{checked}"
        );
        let owner_statement = statement(&owner.0);
        assert_eq!(owner_statement["balance"], "6000000", "{owner_statement}");
        let escrow = Ledger::escrow_wallet(&good.parse().unwrap());
        let escrowed = rt.block_on(node.wallet(&escrow)).unwrap().data.balances;
        assert!(escrowed.iter().all(|b| b.units.is_zero()), "{escrowed:?}");

        // The owner redeems; the bank owes, an operator pays.
        rt.block_on(send(
            &node,
            &chain,
            &owner.1,
            Payload::RedeemCash(RedeemCash {
                token: cash.clone(),
                amount: Units(1_000_000),
            }),
        ));
        let owed = || {
            let (status, out) = raw(
                "GET",
                &format!("{api}/payouts?state=owed"),
                &bearer(t, &op),
                "",
            );
            assert_eq!(status, 200, "{out}");
            out
        };
        wait_for("the payout owed", || {
            owed().as_array().is_some_and(|a| !a.is_empty())
        });
        let payout = owed()[0].clone();
        assert_eq!(
            (payout["amount"].clone(), payout["did"].clone()),
            (json!("1000000"), json!(did_of(&owner.1)))
        );
        let metrics = reqwest::blocking::get(format!("{api}/metrics"))
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains("queue=\"payouts_owed\"} 1"),
            "the payout waits on the operators' dashboard: {metrics}"
        );
        let paid_url = format!("{api}/payouts/{}/paid", payout["tx"].as_str().unwrap());
        let paid = json!({"reference": format!("OUT-{run}")}).to_string();
        assert_eq!(raw("POST", &paid_url, &bearer(t, &owner.0), &paid).0, 403);
        assert_eq!(
            raw(
                "GET",
                &format!("{api}/payouts?state=maybe"),
                &bearer(t, &op),
                ""
            )
            .0,
            400
        );
        assert_eq!(
            raw(
                "POST",
                &format!("{api}/payouts/zz/paid"),
                &bearer(t, &op),
                &paid
            )
            .0,
            400
        );
        for _ in 0..2 {
            let (status, out) = raw("POST", &paid_url, &bearer(t, &op), &paid);
            assert_eq!(
                (status, out["state"].clone()),
                (200, json!("paid")),
                "{out}"
            );
        }
        let other = json!({"reference": "OUT-other"}).to_string();
        assert_eq!(raw("POST", &paid_url, &bearer(t, &op), &other).0, 409);
        let owner_statement = statement(&owner.0);
        assert_eq!(owner_statement["balance"], "5000000");
        assert_eq!(owner_statement["payouts"][0]["state"], "paid");
        let kinds: Vec<&str> = owner_statement["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["escrow", "redemption"], "{owner_statement}");
        let (status, staff_view) = raw(
            "GET",
            &format!("{api}/accounts/{}", did_of(&owner.1)),
            &bearer(t, &op),
            "",
        );
        assert_eq!(
            (status, staff_view["balance"].clone()),
            (200, json!("5000000"))
        );

        // Every step was signed once and applied: no double, no loss.
        let url = database_url(&data, database);
        let db = rt
            .block_on(tranche_service::Db::open(&url, tranche_bank::MIGRATIONS))
            .unwrap();
        wait_for("the outbox to empty", || {
            let (n,): (i64,) = rt
                .block_on(
                    sqlx::query_as("SELECT COUNT(*) FROM kit_outbox WHERE state <> 'final'")
                        .fetch_one(db.pool()),
                )
                .unwrap();
            n == 0
        });
        let sent = support::services::outbox_kinds(&rt, &db);
        let count = |k: &str| sent.iter().filter(|kind| *kind == k).count();
        assert_eq!(
            [
                count("mint_cash"),
                count("close_offering"),
                count("release_proceeds")
            ],
            [1, 2, 1],
            "{sent:?}"
        );

        // The name and the address: in no log, nowhere in the database but
        // the vault's ciphertext.
        let logged = std::fs::read(&log).unwrap();
        let stored = stored_bytes(
            &rt,
            &data,
            database,
            &db,
            &[
                "SELECT did || wallet FROM bank_accounts",
                "SELECT reference || did || staff FROM bank_deposits",
            ],
        );
        assert!(stored.len() > 1_000);
        for needle in [seeded.as_bytes(), address.as_bytes()] {
            assert!(!contains(&logged, needle), "PII in the log");
            assert!(!contains(&stored, needle), "PII stored in clear");
        }

        // The OpenAPI document describes the bank's endpoints.
        support::services::documents(
            &api,
            &[
                "/accounts",
                "/accounts/me",
                "/deposits",
                "/payouts/{tx}/paid",
                "/offerings",
            ],
        );
        let mut service = cleanup.children.pop().unwrap();
        let _ = service.kill();
        let _ = service.wait();
    }
}
