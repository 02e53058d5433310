//! The custodian's service as its users meet it, on SQLite and on
//! PostgreSQL (SR-3, ST-3): a holder with a KYC credential hands in their
//! consent and the custodian opens their custodial wallet; they deposit
//! deposit tokens into it and are told at once, over the live stream and
//! at their webhook (signed, retried until it answers); they authorize a
//! transfer offline, the custodian checks its policy and sends it, is
//! killed before it is final, and after the restart the transfer is final
//! once and the holder told once; a forged, a replayed, an expired, an
//! over-the-limit and another person's authorization are each refused with
//! its reason; the proof of the transfer holds against another
//! organisation's node and a tampered one does not; and every endpoint
//! refuses the wrong caller.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tranche_api::client::NodeClient;
use tranche_crypto::Domain;
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_testkit::world::{claim_until, date};
use tranche_types::{ChainId, ClaimTopic, Payload, PublicKey, Signature, Timestamp, Transfer};
use tranche_types::{Units, WalletAddress};

mod support;

use support::services::{
    bearer, call, did_command, did_of, healthy, http_receiver, json_of, kyc_people, login_as,
    now_ms, publish_aml_policy, raw, send, service_table, start, stop_devnet_service, text,
    tranche, wait_for, ServiceRun,
};

/// Follows `/events/stream` in a session; what arrives, as JSON.
fn stream_reader(url: String, headers: Vec<(&'static str, String)>) -> Arc<Mutex<Vec<Value>>> {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = Arc::clone(&got);
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .unwrap();
        let mut r = client.get(&url);
        for (k, v) in &headers {
            r = r.header(*k, v);
        }
        let Ok(resp) = r.send() else { return };
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data:") {
                if let Ok(v) = serde_json::from_str(data.trim()) {
                    kept.lock().unwrap().push(v);
                }
            }
        }
    });
    got
}

fn balance(rt: &tokio::runtime::Runtime, node: &NodeClient, wallet: &WalletAddress) -> u128 {
    rt.block_on(node.wallet(wallet))
        .unwrap()
        .data
        .balances
        .iter()
        .find(|b| b.token.as_str() == "USD-DEP")
        .map_or(0, |b| b.units.0)
}

#[test]
fn sr3_st3_a_custodian_keeps_wallets_moves_them_only_on_the_holders_authorization_and_tells_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    // Below the ephemeral ports (32768 and up), where a client socket could
    // hold one.
    let base = 10_000 + (std::process::id() % 400) as u16 * 10;
    let mut cleanup = support::devnet_up(&dir, base);
    let devnet = DevnetFile::read(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The test runs the custodian's service itself, once per database.
    stop_devnet_service(&rt, &devnet, "custodian", tranche_custodian::MIGRATIONS);
    // The test signs as the regulator to publish AML policies.
    stop_devnet_service(&rt, &devnet, "regulator", tranche_regulator::MIGRATIONS);
    let bank = support::services::login_devnet_staff(tmp.path(), &devnet, "bank");
    let pw = PathBuf::from(&devnet.password_file);
    let keys = PathBuf::from(&devnet.keys);
    let open = |name: &str| {
        tranche_keystore::open_key_file(&keys.join(format!("{name}.key")), Some(&pw)).unwrap()
    };
    let [kyc, custodian, regulator] =
        ["devnet-kyc", "devnet-custodian", "devnet-regulator"].map(open);
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
        } = ServiceRun::new(t, "custodian", base, run);
        // Alice holds deposit tokens from the bank; Bob is who she pays.
        // Each has a wallet of their own key bound to their DID, a KYC
        // claim on chain and a KYC credential.
        let people = kyc_people(t, (&keys, &pw), &["alice", "bob"], run);
        let (alice, bob) = (&people[0], &people[1]);
        // Two wallets of nobody's, one of them on the custodian's list of
        // destinations with Bob's.
        let (payee, stranger) = (
            tranche_crypto::Keypair::from_seed(&[41 + run as u8; 32]).address(),
            tranche_crypto::Keypair::from_seed(&[51 + run as u8; 32]).address(),
        );
        let table = service_table(
            "devnet-custodian",
            (&keys, &pw),
            &devnet.nodes[4].api,
            &listen,
            &data,
            database,
        );
        std::fs::write(
            &config,
            format!(
                "{table}anchor_interval_secs = 2\ntrusted_issuers = [\"{}\"]\n\n[custodian]\ntransfer_max = \"50\"\ndaily_max = \"80\"\ndestinations = [\"{}\", \"{payee}\"]\n",
                did_of(&kyc),
                bob.1.address(),
            ),
        )
        .unwrap();
        let op = format!("cop{run}");
        support::services::operator(t, "custodian", &config, &op);

        rt.block_on(async {
            for (_, k) in &people {
                let binding = Payload::RegisterWallet(Ledger::sign_binding(&chain, k, k));
                send(&node, &chain, &kyc, binding).await;
                let did = Ledger::did_of_key(&k.public_key());
                let claim = claim_until(&did, ClaimTopic::KYC, None, date("2099-12-31"));
                send(&node, &chain, &kyc, claim).await;
            }
        });
        let session = |name: &str, at: &str, label: &str| -> String {
            let s = format!("{name}-{label}");
            let o = login_as(t, at, name, &s, &[&t.join(format!("{name}.kyc.json"))]);
            assert!(o.status.success(), "{}", text(&o));
            s
        };
        let alice_bank = session(&alice.0, &bank.api, "bank");
        let (status, out) = raw(
            "POST",
            &format!("{}/accounts", bank.api),
            &bearer(t, &alice_bank),
            &json!({"wallet": alice.1.address().to_string()}).to_string(),
        );
        assert_eq!(status, 200, "{out}");
        let (status, out) = raw(
            "POST",
            &format!("{}/deposits", bank.api),
            &bearer(t, "bank-operator-1"),
            &json!({"did": did_of(&alice.1), "amount": "1000", "reference": format!("CUS-{run}")})
                .to_string(),
        );
        assert_eq!(status, 200, "{out}");
        wait_for("alice's deposit tokens", || {
            balance(&rt, &node, &alice.1.address()) == 1000
        });

        cleanup.children.push(start("custodian", &config, &log));
        wait_for("the custodian's service", || healthy(&api));
        let a = session(&alice.0, &api, "custodian");
        let b = session(&bob.0, &api, "custodian");
        let o = login_as(t, &api, &op, &op, &[&t.join(format!("{op}.json"))]);
        assert!(o.status.success(), "{}", text(&o));

        // Without a session, nothing.
        for (method, path) in [
            ("POST", "/holders"),
            ("GET", "/holders"),
            ("GET", "/holders/me"),
            ("PUT", "/holders/me/webhook"),
            ("POST", "/instructions"),
            ("GET", "/instructions"),
            ("GET", "/events"),
            ("GET", "/events/stream"),
        ] {
            let json = [("content-type", "application/json".to_string())];
            let (status, out) = raw(method, &format!("{api}{path}"), &json, "{}");
            assert_eq!(status, 401, "{method} {path}: {out}");
        }

        // Onboarding: only one's own consent, and only as it was signed.
        let consent = |name: &str| {
            did_command(
                t,
                name,
                &format!("{name}.consent.json"),
                &[
                    "consent-custody",
                    "--chain-id",
                    chain.as_str(),
                    "--custodian",
                    "devnet-custodian",
                ],
            )
        };
        let holders = format!("{api}/holders");
        let body_of = |f: &Path| std::fs::read_to_string(f).unwrap();
        let (status, _) = raw("POST", &holders, &bearer(t, &a), &body_of(&consent(&bob.0)));
        assert_eq!(status, 403, "another's consent");
        let (status, _) = raw(
            "POST",
            &holders,
            &bearer(t, &a),
            r#"{"type":"subscribe","offering":"O","units":"1"}"#,
        );
        assert_eq!(status, 400, "not a consent");
        let mine = consent(&alice.0);
        let mut forged: Value = json_of(&body_of(&mine));
        forged["consent"] = json!(Signature([7; 64]));
        let (status, _) = raw("POST", &holders, &bearer(t, &a), &forged.to_string());
        assert_eq!(status, 400, "a consent that does not verify");
        let session_file = t.join(format!("{a}.session")).display().to_string();
        let consent_file = mine.display().to_string();
        let (code, out) = call(
            &api,
            "/holders",
            &["--session", &session_file, "--body", &consent_file],
        );
        assert_eq!(code, 0, "{out}");
        let opened = json_of(&out);
        let vault: WalletAddress = opened["wallet"].as_str().unwrap().parse().unwrap();
        let (status, again) = raw("POST", &holders, &bearer(t, &a), &body_of(&mine));
        assert_eq!((status, &again["wallet"]), (200, &opened["wallet"]));
        let me = |who: &str| raw("GET", &format!("{api}/holders/me"), &bearer(t, who), "");
        wait_for("the custodial wallet, open", || me(&a).1["state"] == "open");
        assert_eq!(me(&b).0, 404, "bob holds nothing here");
        assert_eq!(raw("GET", &holders, &bearer(t, &b), "").0, 403);
        let (status, listed) = raw("GET", &holders, &bearer(t, &op), "");
        assert_eq!(status, 200);
        assert!(listed
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["wallet"] == opened["wallet"]));

        // Notices: a webhook that fails twice before it answers, and a live
        // stream.
        let (hook, delivered) = http_receiver(2, "x-tranche-signature");
        let webhook = format!("{api}/holders/me/webhook");
        let (status, _) = raw("PUT", &webhook, &bearer(t, &a), r#"{"url":"ftp://nope"}"#);
        assert_eq!(status, 400);
        let (status, out) = raw(
            "PUT",
            &webhook,
            &bearer(t, &a),
            &json!({"url": hook}).to_string(),
        );
        assert_eq!(status, 200, "{out}");
        let live = stream_reader(format!("{api}/events/stream"), bearer(t, &a));

        // Alice deposits 100: the notice arrives over the stream at once.
        rt.block_on(send(
            &node,
            &chain,
            &alice.1,
            Payload::Transfer(Transfer {
                token: "USD-DEP".parse().unwrap(),
                to: vault,
                amount: Units(100),
                reference: None,
            }),
        ));
        wait_for("the deposit's notice on the stream", || {
            live.lock()
                .unwrap()
                .iter()
                .any(|e| e["direction"] == "in" && e["amount"] == "100")
        });
        let events = |who: &str| raw("GET", &format!("{api}/events"), &bearer(t, who), "").1;
        assert_eq!(events(&a)[0]["balance"], "100");
        assert_eq!(events(&b), json!([]), "bob sees nothing of alice's");

        // Alice authorizes 30 to Bob offline; the custodian sends it and is
        // killed before it is final.
        let bob_wallet = bob.1.address().to_string();
        let authorize = |amount: &str, number: &str, out: &str| {
            did_command(
                t,
                &alice.0,
                out,
                &[
                    "authorize-transfer",
                    "--chain-id",
                    chain.as_str(),
                    "--custodian",
                    "devnet-custodian",
                    "--token",
                    "USD-DEP",
                    "--to",
                    &bob_wallet,
                    "--amount",
                    amount,
                    "--number",
                    number,
                ],
            )
        };
        let instructions = format!("{api}/instructions");
        let first = authorize("30", "0", "move-30.json");
        let (status, out) = raw("POST", &instructions, &bearer(t, &a), &body_of(&first));
        assert_eq!((status, &out["state"]), (200, &json!("submitted")), "{out}");
        let id = out["id"].as_str().unwrap().to_string();
        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
        cleanup.children.push(start("custodian", &config, &log));
        wait_for("the custodian's service", || healthy(&api));
        let instruction =
            |who: &str, id: &str| raw("GET", &format!("{instructions}/{id}"), &bearer(t, who), "");
        wait_for("the transfer, final", || {
            instruction(&a, &id).1["state"] == "applied"
        });
        assert_eq!(balance(&rt, &node, &bob.1.address()), 30, "once");
        // The same authorization again: the same instruction, nothing more.
        let (status, again) = raw("POST", &instructions, &bearer(t, &a), &body_of(&first));
        assert_eq!((status, &again["id"]), (200, &json!(id)));
        assert_eq!(instruction(&b, &id).0, 404, "bob reads none of alice's");
        assert_eq!(instruction(&op, &id).0, 200, "staff do");

        // Refused, each with its reason, and on the record.
        let refused = |body: &str, reason: &str| {
            let (status, out) = raw("POST", &instructions, &bearer(t, &a), body);
            assert_eq!(
                (status, &out["code"]),
                (422, &json!("refused")),
                "{reason}: {out}\nthe service's log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            let message = out["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("({reason})")),
                "{reason}: {message}"
            );
        };
        // Replayed with its number under another amount.
        refused(&body_of(&authorize("5", "0", "replay.json")), "not_next");
        // Forged: the amount changed after signing.
        let mut forged: Value = json_of(&body_of(&authorize("10", "1", "forged.json")));
        forged["amount"] = json!("20");
        refused(&forged.to_string(), "forged");
        // Expired.
        let stale = Ledger::sign_authorization(
            &chain,
            &"devnet-custodian".parse().unwrap(),
            &alice.1,
            ("USD-DEP".parse().unwrap(), bob.1.address(), Units(10)),
            None,
            1,
            Timestamp(now_ms() - 1_000),
        );
        refused(
            &serde_json::to_string(&Payload::CustodialTransfer(stale)).unwrap(),
            "expired",
        );
        // Over the limit of one transfer, then of the day.
        refused(
            &body_of(&authorize("60", "1", "big.json")),
            "over_transfer_limit",
        );
        let second = authorize("40", "1", "move-40.json");
        let (status, out) = raw("POST", &instructions, &bearer(t, &a), &body_of(&second));
        assert_eq!(status, 200, "{out}");
        let second_id = out["id"].as_str().unwrap().to_string();
        // More than is free (30 left once both are out), then more than
        // the day allows (70 of 80 used).
        refused(
            &body_of(&authorize("31", "2", "much.json")),
            "insufficient_balance",
        );
        refused(
            &body_of(&authorize("20", "2", "day.json")),
            "over_daily_limit",
        );
        // A wallet the custodian does not pay; one it does, which the chain
        // would refuse (bound to nobody): its pre-check says so first.
        let to = |wallet: WalletAddress| {
            let p = Ledger::sign_authorization(
                &chain,
                &"devnet-custodian".parse().unwrap(),
                &alice.1,
                ("USD-DEP".parse().unwrap(), wallet, Units(5)),
                None,
                2,
                Timestamp(now_ms() + 60_000),
            );
            serde_json::to_string(&Payload::CustodialTransfer(p)).unwrap()
        };
        refused(&to(stranger), "destination_not_allowed");
        refused(&to(payee), "would_be_rejected");
        // Bob's authorization handed in by Alice: not hers to give.
        let bobs = Ledger::sign_authorization(
            &chain,
            &"devnet-custodian".parse().unwrap(),
            &bob.1,
            ("USD-DEP".parse().unwrap(), alice.1.address(), Units(1)),
            None,
            2,
            Timestamp(now_ms() + 60_000),
        );
        let bobs = serde_json::to_string(&Payload::CustodialTransfer(bobs)).unwrap();
        assert_eq!(raw("POST", &instructions, &bearer(t, &a), &bobs).0, 403);
        let (status, mine) = raw("GET", &instructions, &bearer(t, &a), "");
        assert_eq!(status, 200);
        let reasons: BTreeSet<String> = mine
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["reason"].as_str().map(str::to_string))
            .collect();
        for r in [
            "not_next",
            "forged",
            "expired",
            "over_transfer_limit",
            "insufficient_balance",
            "over_daily_limit",
            "destination_not_allowed",
            "would_be_rejected",
        ] {
            assert!(reasons.contains(r), "{r} on the record: {reasons:?}");
        }
        wait_for("the second transfer, final", || {
            instruction(&a, &second_id).1["state"] == "applied"
        });
        assert_eq!(balance(&rt, &node, &bob.1.address()), 70);
        assert_eq!(balance(&rt, &node, &vault), 30);

        // The AML regulator sanctions Bob (F6-1): the custodian moves
        // nothing more to him; the next run's policy bars nobody.
        let policy = |sanctioned: Vec<String>| json!({"report_period_secs": 3600, "limits": [], "blocked_countries": [], "sanctioned": sanctioned});
        // In force on the node the custodian reads (its own, which may be
        // a block behind the one the policy was sent to), and the custodian
        // past that block: it reads the policy once per block it follows.
        let custodian_node = NodeClient::new(&devnet.nodes[4].api, None).unwrap();
        let in_force_for_the_custodian = |version: u32| {
            let mut height = 0;
            wait_for("the policy in force on the custodian's node", || {
                let p = rt.block_on(custodian_node.aml_policy());
                height = p.as_ref().map_or(0, |p| p.height);
                p.is_ok_and(|p| p.data.in_force.is_some_and(|v| v.version == version))
            });
            wait_for("the custodian past the policy's block", || {
                let (status, health) = raw("GET", &format!("{api}/healthz"), &[], "");
                status == 200 && health["cursor"].as_u64().is_some_and(|c| c >= height)
            });
        };
        in_force_for_the_custodian(rt.block_on(publish_aml_policy(
            &node,
            &chain,
            &regulator,
            policy(vec![did_of(&bob.1)]),
        )));
        refused(&to(bob.1.address()), "sanctioned");
        in_force_for_the_custodian(rt.block_on(publish_aml_policy(
            &node,
            &chain,
            &regulator,
            policy(Vec::new()),
        )));

        // The proof holds against another organisation's node; tampered, not.
        let (status, proof) = raw(
            "GET",
            &format!("{instructions}/{id}/proof"),
            &bearer(t, &a),
            "",
        );
        assert_eq!(status, 200, "{proof}");
        let proof_file = t.join(format!("proof-{run}.json"));
        std::fs::write(&proof_file, proof.to_string()).unwrap();
        let verify = |file: &Path| {
            tranche()
                .arg("verify")
                .arg(file)
                .args(["--node", &devnet.nodes[2].api])
                .output()
                .unwrap()
        };
        let o = verify(&proof_file);
        assert!(o.status.success(), "{}", text(&o));
        let mut tampered = proof.clone();
        tampered["index"] = json!(proof["index"].as_u64().unwrap() + 1);
        std::fs::write(&proof_file, tampered.to_string()).unwrap();
        assert!(!verify(&proof_file).status.success(), "a tampered proof");
        assert_eq!(
            raw(
                "GET",
                &format!("{instructions}/{id}/proof"),
                &bearer(t, &b),
                ""
            )
            .0,
            404
        );

        // Every event once, with stable ids: in 100, out 30, out 40; the
        // webhook got them all, signed by the custodian, despite failing
        // twice and the restart (a repeat carries the same id).
        let seen = events(&a);
        let moves: Vec<(String, String)> = seen
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["direction"].as_str().unwrap().into(),
                    e["amount"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            moves,
            [("in", "100"), ("out", "30"), ("out", "40")]
                .map(|(d, a)| (d.to_string(), a.to_string()))
        );
        let ids: BTreeSet<String> = seen
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        let custodian_key: PublicKey = custodian.public_key();
        let pushed = || -> BTreeSet<String> {
            let mut ids = BTreeSet::new();
            for (signature, body) in delivered.lock().unwrap().iter() {
                let sig = Signature(hex::decode(signature).unwrap().try_into().unwrap());
                tranche_crypto::verify(&custodian_key, Domain::Notice, &chain, body, &sig)
                    .expect("each delivery signed by the custodian");
                let batch: Vec<Value> = serde_json::from_slice(body).unwrap();
                ids.extend(batch.iter().map(|e| e["id"].as_str().unwrap().to_string()));
            }
            ids
        };
        wait_for("every notice at the webhook", || pushed() == ids);
        assert_eq!(me(&a).1["delivered"], seen[2]["seq"]);

        // The decisions are in the audit log, for staff.
        let (status, audit) = raw("GET", &format!("{api}/audit"), &bearer(t, &op), "");
        assert_eq!(status, 200);
        let decisions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["entry"]["action"] == "custodial_transfer")
            .map(|r| r["entry"]["decision"].as_str().unwrap())
            .collect();
        assert_eq!(
            decisions
                .iter()
                .filter(|d| d.starts_with("co-signed"))
                .count(),
            2
        );
        assert_eq!(
            decisions
                .iter()
                .filter(|d| d.starts_with("refused"))
                .count(),
            9,
            "eight refusals and the sanctioned one"
        );

        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
    }
}
