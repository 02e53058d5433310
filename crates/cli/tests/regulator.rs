//! The regulator's service as its users meet it, on SQLite and on
//! PostgreSQL (F6-1, F6-6, F6-8, F6-9, REC-2, REC-9): the test signs as
//! the devnet's exchange — it binds its traders' wallets and sends its
//! reports, honest and not — and the regulator reconciles each report
//! against the chain: a clean one is clean; a dropped entry, an altered
//! amount, a replayed report and a transfer left unreported are each the
//! right finding with its evidence; a wash trade and a trade with a
//! sanctioned DID raise alerts; reports from an organisation that is not
//! an exchange, unsigned or with a bad signature are refused; a rewritten
//! or skipped report is a finding; and after a kill -9 the reconciliation
//! gives the same findings, none twice.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tranche_api::client::NodeClient;
use tranche_api::report::{ExchangeReport, ReportedTrade, ReportedTransfer, SignedReport};
use tranche_api::report_binary::REPORT_MEDIA_TYPE;
use tranche_crypto::{Domain, Keypair};
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_service::signed::SignedClient;
use tranche_testkit::world::{claim_until, date, issuance_request};
use tranche_types::{ChainId, ClaimTopic, Hash, Outcome, Payload, Transfer, Units};

mod support;

use support::services::{
    bearer, did_of, healthy, login_as, now_ms, person, raw, send, send_final, service_table, start,
    stop_devnet_service, text, tokenize, tranche, wait_for, ServiceRun, Tokenizers,
};

/// A movement as the exchange reports it.
struct Move<'a> {
    tx: &'a (String, u64),
    token: &'a str,
    from: Option<&'a Keypair>,
    to: &'a Keypair,
    amount: u128,
    kind: &'a str,
}

fn reported(m: &Move) -> ReportedTransfer {
    ReportedTransfer {
        trade: None,
        kind: m.kind.into(),
        token: m.token.into(),
        from_wallet: m.from.map(|k| k.address().to_string()),
        from: m.from.map(did_of),
        to_wallet: m.to.address().to_string(),
        to: Some(did_of(m.to)),
        amount: Units(m.amount),
        tx: m.tx.0.clone(),
        height: m.tx.1,
    }
}

fn trade(
    id: u64,
    buyer: &Keypair,
    seller: &Keypair,
    tx: &(String, u64),
    token: &str,
) -> ReportedTrade {
    ReportedTrade {
        trade: id,
        matched_ms: now_ms(),
        token: token.into(),
        quote: "USD".into(),
        quote_on_chain: false,
        price: 100,
        quantity: 1,
        value: Units(100),
        buyer: did_of(buyer),
        buyer_wallet: buyer.address().to_string(),
        seller: did_of(seller),
        seller_wallet: seller.address().to_string(),
        fee_buyer: Units(0),
        fee_seller: Units(0),
        state: "settled".into(),
        tx: tx.0.clone(),
        height: tx.1,
    }
}

/// The exchange's reports, numbered and chained as the exchange makes them.
struct Reporter {
    key: Arc<Keypair>,
    chain: ChainId,
    seq: u64,
    prev: Hash,
    through: u64,
}

impl Reporter {
    fn next(
        &mut self,
        through: u64,
        trades: Vec<ReportedTrade>,
        transfers: Vec<ReportedTransfer>,
    ) -> SignedReport {
        self.seq += 1;
        let report = ExchangeReport {
            exchange: "devnet-exchange".into(),
            seq: self.seq,
            from_ms: self.seq * 1_000,
            to_ms: (self.seq + 1) * 1_000,
            prev: self.prev.to_hex(),
            after_height: self.through,
            through_height: through,
            trades,
            transfers,
        };
        let hash = report.hash();
        self.prev = hash;
        self.through = through;
        SignedReport {
            signature: self.key.sign(Domain::ExchangeReport, &self.chain, &hash.0),
            hash: hash.to_hex(),
            report,
        }
    }
}

#[test]
fn f6_1_f6_6_f6_8_f6_9_rec2_the_regulator_reconciles_signed_reports_against_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let base = 20_000 + (std::process::id() % 500) as u16 * 10;
    let mut cleanup = support::devnet_up(&dir, base);
    let devnet = DevnetFile::read(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The test runs the regulator's service itself, once per database, and
    // signs as the exchange (whose own service reports nothing it binds
    // here), the TSP and the issuer.
    stop_devnet_service(&rt, &devnet, "regulator", tranche_regulator::MIGRATIONS);
    stop_devnet_service(&rt, &devnet, "tsp", tranche_tsp::MIGRATIONS);
    stop_devnet_service(&rt, &devnet, "issuer", tranche_issuer::MIGRATIONS);
    let pw = PathBuf::from(&devnet.password_file);
    let keys = PathBuf::from(&devnet.keys);
    let open = |name: &str| devnet.open_key(name).unwrap();
    let [tsp, issuer, kyc, registry, appraiser, exchange] = [
        "devnet-tsp",
        "devnet-issuer",
        "devnet-kyc",
        "devnet-registry",
        "devnet-appraiser",
        "devnet-exchange",
    ]
    .map(open);
    let orgs = Tokenizers {
        tsp,
        issuer,
        registry,
        appraiser,
    };
    let exchange = Arc::new(exchange);
    let node = NodeClient::new(&devnet.nodes[0].api, None).unwrap();
    let chain: ChainId = devnet.chain_id.parse().unwrap();
    let t = tmp.path();

    let databases = support::services::test_databases(&rt, t);
    // The issuer's service, which takes the regulator's freeze requests,
    // on databases of its own.
    let issuer_databases = support::services::test_databases(&rt, t);
    for (run, database) in databases.iter().enumerate() {
        let ServiceRun {
            data,
            listen,
            api,
            config,
            log,
        } = ServiceRun::new(t, "regulator", base, run);
        // This run's reports start here: the chain before holds earlier
        // runs' transfers, which a report of theirs covered.
        let first_block = rt.block_on(node.status()).unwrap().finalized_height;
        // Alice and Bob trade at the exchange, which bound their wallets;
        // Carol's wallet the KYC provider bound.
        let [a, b, c] = ["alice", "bob", "carol"].map(|n| person(t, &format!("{n}{run}")));
        let token = format!("RG{run}");
        let asset = format!("A-RG{run}");
        let request = issuance_request(
            &format!("R-RG{run}"),
            &asset,
            &token,
            "devnet-issuer",
            &[(a.address(), 100)],
            100,
        );
        let issued = rt.block_on(async {
            for k in [&a, &b, &c] {
                let did = Ledger::did_of_key(&k.public_key());
                let claim = claim_until(&did, ClaimTopic::KYC, None, date("2099-12-31"));
                send(&node, &chain, &kyc, claim).await;
            }
            for (k, binder) in [(&a, &*exchange), (&b, &*exchange), (&c, &kyc)] {
                let binding = Payload::RegisterWallet(Ledger::sign_binding(&chain, k, k));
                send(&node, &chain, binder, binding).await;
            }
            tokenize(&node, &chain, &orgs, &a, &request).await
        });
        let transfer = |from: &Keypair, to: &Keypair, amount: u128| {
            let p = Payload::Transfer(Transfer {
                token: token.parse().unwrap(),
                to: to.address(),
                amount: Units(amount),
                reference: None,
            });
            let (hash, at) = rt.block_on(send_final(&node, &chain, from, p));
            // The node serves a transaction from its store a moment before
            // its status counts the block: reports made through the status
            // height must include this one.
            wait_for("the node's status to count the transfer", || {
                rt.block_on(node.status()).unwrap().finalized_height >= at
            });
            (hash, at)
        };
        let (t1, t2) = (transfer(&a, &b, 10), transfer(&b, &a, 4));

        let table = service_table(
            "devnet-regulator",
            (&keys, &pw),
            &devnet.nodes[3].api,
            &listen,
            &data,
            database,
        );
        let issuer_run = ServiceRun::new(t, "issuer", base + 2, run);
        std::fs::write(
            &config,
            format!(
                "{table}anchor_interval_secs = 2\n\n[regulator]\npolicy_delay_blocks = 3\n\n\
                 [service.peers]\n\"devnet-issuer\" = \"{}\"\n",
                issuer_run.api
            ),
        )
        .unwrap();
        let op = format!("rop{run}");
        support::services::operator(t, "regulator", &config, &op);
        let mut child = start("regulator", &config, &log);
        wait_for("the regulator's service", || healthy(&api));
        let o = login_as(t, &api, &op, &op, &[&t.join(format!("{op}.json"))]);
        assert!(o.status.success(), "{}", text(&o));
        let get = |path: &str| raw("GET", &format!("{api}{path}"), &bearer(t, &op), "");
        let post = |path: &str, body: Value| {
            raw(
                "POST",
                &format!("{api}{path}"),
                &bearer(t, &op),
                &body.to_string(),
            )
        };
        // Staff only, and an organisation's signed request only, for reports.
        for path in ["/reports", "/reconciliations", "/findings", "/alerts"] {
            assert_eq!(
                raw("GET", &format!("{api}{path}"), &[], "").0,
                401,
                "{path}"
            );
        }
        let (status, _) = raw("POST", &format!("{api}/reports"), &[], "{}");
        assert_eq!(status, 401, "an unsigned report");

        let signed_raw = |key: &Arc<Keypair>, org: &str, media: &str, body: Vec<u8>| {
            let client = SignedClient::new(Arc::clone(key), chain.clone(), org);
            rt.block_on(async {
                let r = client
                    .send_as(reqwest::Method::POST, &api, "/reports", media, body)
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            })
        };
        // Even reports in binary, as the exchange's service sends them;
        // odd ones as JSON, as an exchange may.
        let signed_as = |key: &Arc<Keypair>, org: &str, r: &SignedReport| -> (u16, Value) {
            if r.report.seq.is_multiple_of(2) {
                signed_raw(key, org, REPORT_MEDIA_TYPE, r.to_binary())
            } else {
                signed_raw(key, org, "application/json", serde_json::to_vec(r).unwrap())
            }
        };
        let (status, why) = signed_raw(
            &exchange,
            "devnet-exchange",
            REPORT_MEDIA_TYPE,
            b"TRS2 not a report".to_vec(),
        );
        assert_eq!(status, 400, "a damaged binary report: {why}");
        let deliver = |r: &SignedReport| signed_as(&exchange, "devnet-exchange", r);
        let height = || rt.block_on(node.status()).unwrap().finalized_height;
        let reconciled = |seq: u64| {
            wait_for(&format!("report {seq} reconciled"), || {
                get("/reports?exchange=devnet-exchange")
                    .1
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["seq"] == seq && r["state"] == "reconciled")
            });
            get("/reconciliations?exchange=devnet-exchange")
                .1
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["seq"] == seq)
                .unwrap()
                .clone()
        };
        let findings_of = |seq: u64| -> Vec<(String, String)> {
            let mut f: Vec<(String, String)> = get("/findings?exchange=devnet-exchange")
                .1
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["seq"] == seq)
                .map(|f| {
                    (
                        f["kind"].as_str().unwrap().into(),
                        f["detail"].as_str().unwrap().into(),
                    )
                })
                .collect();
            f.sort();
            f
        };
        let mut reporter = Reporter {
            key: Arc::clone(&exchange),
            chain: chain.clone(),
            seq: 0,
            prev: Hash([0; 32]),
            through: first_block,
        };
        // The first report the regulator has from the exchange: from its
        // first block on, the issuance and the two transfers touching the
        // exchange's wallets.
        let mv = |tx, from, to, amount, kind| Move {
            tx,
            token: &token,
            from,
            to,
            amount,
            kind,
        };
        let first = reporter.next(
            height(),
            vec![trade(1, &b, &a, &t1, &token)],
            vec![
                reported(&mv(&issued, None, &a, 100, "issuance")),
                reported(&mv(&t1, Some(&a), &b, 10, "holder")),
                reported(&mv(&t2, Some(&b), &a, 4, "holder")),
            ],
        );
        let (status, receipt) = deliver(&first);
        assert_eq!(
            (status, &receipt["state"]),
            (200, &json!("received")),
            "{receipt}"
        );
        let r1 = reconciled(1);
        assert_eq!(
            (
                &r1["verdict"],
                &r1["on_chain"],
                &r1["matched"],
                &r1["findings"]
            ),
            (&json!("clean"), &json!(3), &json!(3), &json!(0)),
            "{r1}"
        );
        assert_eq!(
            r1["supply"][&token]["issued"], "100",
            "issued, as the chain says"
        );
        // The exchange's retry of the same report: the same answer, nothing new.
        let (status, again) = deliver(&first);
        assert_eq!((status, &again["hash"]), (200, &receipt["hash"]));
        // The same signed request sent twice: taken once, then refused.
        let body = serde_json::to_string(&first).unwrap();
        let signed = tranche_service::signed::sign(
            &exchange,
            &chain,
            "devnet-exchange",
            "POST",
            "/reports",
            body.as_bytes(),
            tranche_service::now_ms() / 1000,
            "a-nonce-sent-twice",
        );
        let headers = [
            ("content-type", "application/json".to_string()),
            ("content-digest", signed.content_digest),
            ("signature-input", signed.signature_input),
            ("signature", signed.signature),
        ];
        let url = format!("{api}/reports");
        let (status, once) = raw("POST", &url, &headers, &body);
        assert_eq!((status, &once["hash"]), (200, &receipt["hash"]), "{once}");
        let (status, twice) = raw("POST", &url, &headers, &body);
        assert_eq!(
            (status, &twice["code"]),
            (401, &json!("replayed_request")),
            "{twice}"
        );

        // Report 2 alters an amount, drops an entry and leaves out a
        // transfer to a wallet outside the exchange.
        let (t3, t4, t5) = (
            transfer(&a, &b, 7),
            transfer(&a, &b, 2),
            transfer(&a, &c, 1),
        );
        let mut altered = reported(&mv(&t3, Some(&a), &b, 7, "holder"));
        altered.amount = Units(70);
        let second = reporter.next(height(), Vec::new(), vec![altered]);
        assert_eq!(deliver(&second).0, 200);
        let r2 = reconciled(2);
        assert_eq!(
            (&r2["verdict"], &r2["findings"]),
            (&json!("findings"), &json!(3)),
            "{r2}"
        );
        let f2 = findings_of(2);
        let kinds: Vec<&str> = f2.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["altered", "missing", "missing"], "{f2:?}");
        assert!(f2[0].1.contains("amount 7 on chain, 70 reported"), "{f2:?}");
        // Each with its evidence: the block, the transaction, the report.
        let all = get("/findings?exchange=devnet-exchange").1;
        let missing_t5 = all
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "missing" && f["evidence"]["chain"]["tx"] == t5.0.as_str())
            .unwrap_or_else(|| panic!("the transfer to carol is missing: {all}"));
        assert_eq!(missing_t5["evidence"]["chain"]["height"], t5.1);
        assert_eq!(
            missing_t5["evidence"]["report"]["hash"],
            second.hash.as_str()
        );
        assert!(all
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "missing" && f["evidence"]["chain"]["tx"] == t4.0.as_str()));

        // The reconciliation, exported and signed, holds against another
        // organisation's node; edited, it does not (REC-9).
        let (status, export) = get("/reconciliations/devnet-exchange/2/export");
        assert_eq!(status, 200, "{export}");
        let file = t.join(format!("reconciliation-{run}.json"));
        std::fs::write(&file, export.to_string()).unwrap();
        let verify = |f: &std::path::Path| {
            tranche()
                .arg("verify")
                .arg(f)
                .args(["--node", &devnet.nodes[1].api])
                .output()
                .unwrap()
        };
        let o = verify(&file);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("3 findings (2 missing, 0 extra, 1 altered, 0 repeated)"),
            "{}",
            text(&o)
        );
        let mut edited = export.clone();
        edited["reconciliation"]["mismatches"]
            .as_array_mut()
            .unwrap()
            .remove(1);
        std::fs::write(&file, edited.to_string()).unwrap();
        assert!(!verify(&file).status.success(), "a finding taken out");
        let mut altered = export.clone();
        altered["reconciliation"]["on_chain"][0]["amount"] = json!("8");
        std::fs::write(&file, altered.to_string()).unwrap();
        let o = verify(&file);
        assert!(!o.status.success(), "{}", text(&o));
        assert_eq!(get("/reconciliations/devnet-exchange/99/export").0, 404);

        // Report 3 replays report 1's transfers.
        let third = reporter.next(height(), Vec::new(), first.report.transfers.clone());
        assert_eq!(deliver(&third).0, 200);
        reconciled(3);
        let kinds: Vec<String> = findings_of(3).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["repeated", "repeated", "repeated"]);

        // The regulator links Alice and Bob, and sanctions Carol (F6-1):
        // the next version of the policy, on chain.
        let (status, link) = post(
            "/links",
            json!({"a": did_of(&a), "b": did_of(&b), "reason": "one beneficial owner"}),
        );
        assert_eq!(status, 200, "{link}");
        let policy = json!({
            "report_period_secs": 60,
            "limits": [{"asset": "USD", "large_value": "1000", "daily_value_max": "0", "travel_rule_value": "0"}],
            "blocked_countries": ["KP"],
            "sanctioned": [did_of(&c)],
        });
        let (status, published) = post("/policy", json!({ "policy": policy }));
        assert_eq!(status, 200, "{published}");
        let version = published["version"].as_u64().unwrap();
        let (status, late) = post(
            "/policy",
            json!({ "policy": policy, "effective_height": 1 }),
        );
        assert_eq!(status, 400, "a policy governs blocks still to come: {late}");
        wait_for("the policy in force", || {
            rt.block_on(node.aml_policy())
                .unwrap()
                .data
                .in_force
                .is_some_and(|p| u64::from(p.version) == version)
        });
        let in_force = rt
            .block_on(node.aml_policy())
            .unwrap()
            .data
            .in_force
            .unwrap();
        assert_eq!(in_force.regulator.as_str(), "devnet-regulator");
        assert!(in_force.policy.is_sanctioned(&did_of(&c)));
        // A wash trade between the linked identities, and a trade with the
        // sanctioned one.
        let t6 = transfer(&b, &c, 1);
        let fourth = reporter.next(
            height(),
            vec![
                trade(10, &a, &b, &t6, &token),
                trade(11, &c, &b, &t6, &token),
            ],
            vec![reported(&mv(&t6, Some(&b), &c, 1, "holder"))],
        );
        assert_eq!(deliver(&fourth).0, 200);
        let r4 = reconciled(4);
        assert_eq!(
            (&r4["verdict"], &r4["alerts"]),
            (&json!("clean"), &json!(2)),
            "{r4}"
        );
        let alerts = get("/alerts?exchange=devnet-exchange").1;
        let rules: Vec<(&str, &str)> = alerts
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["rule"].as_str().unwrap(), a["subject"].as_str().unwrap()))
            .collect();
        assert_eq!(
            rules,
            [("wash_trade", "trade/10"), ("sanctioned", "trade/11")]
        );
        assert_eq!(
            alerts[1]["evidence"]["trades"][0]["buyer"],
            did_of(&c).as_str()
        );

        // The sanctioned buyer's alert becomes a freeze request to the
        // token's issuer; its staff approve it, and the regulator sees the
        // wallet frozen on chain.
        let kyc_key = Arc::new(open("devnet-kyc"));
        let alert = alerts[1]["id"].as_u64().unwrap();
        let freeze = |wallet: String| {
            post(
                &format!("/alerts/{alert}/freeze"),
                json!({"token": token, "wallet": wallet, "reason": "a sanctioned buyer"}),
            )
        };
        let (status, why) = freeze(person(t, &format!("dave{run}")).address().to_string());
        assert_eq!(status, 400, "a wallet the alert does not concern: {why}");
        let (status, why) = post(
            "/alerts/999/freeze",
            json!({"token": token, "wallet": c.address().to_string(), "reason": "x"}),
        );
        assert_eq!(status, 404, "{why}");
        // Asked before the issuer's service is up: delivered once it is.
        let (status, asked) = freeze(c.address().to_string());
        assert_eq!(
            (status, &asked["state"]),
            (200, &json!("requested")),
            "{asked}"
        );
        assert_eq!(
            freeze(c.address().to_string()).1["id"],
            asked["id"],
            "asked once"
        );
        let request = asked["request"].as_str().unwrap().to_string();
        let issuer_table = service_table(
            "devnet-issuer",
            (&keys, &pw),
            &devnet.nodes[1].api,
            &issuer_run.listen,
            &issuer_run.data,
            &issuer_databases[run],
        );
        std::fs::write(
            &issuer_run.config,
            format!(
                "{issuer_table}anchor_interval_secs = 3600\n\n[issuer]\napprovals_required = 1\n"
            ),
        )
        .unwrap();
        let iop = format!("iop{run}");
        support::services::operator(t, "issuer", &issuer_run.config, &iop);
        let issuer_child =
            support::Killed(vec![start("issuer", &issuer_run.config, &issuer_run.log)]);
        let issuer_api = issuer_run.api.clone();
        wait_for("the issuer's service", || healthy(&issuer_api));
        let o = login_as(
            t,
            &issuer_api,
            &iop,
            &iop,
            &[&t.join(format!("{iop}.json"))],
        );
        assert!(o.status.success(), "{}", text(&o));
        let queued = || {
            raw(
                "GET",
                &format!("{issuer_api}/requests/freeze/{request}"),
                &bearer(t, &iop),
                "",
            )
        };
        wait_for("the freeze request at the issuer", || queued().0 == 200);
        let (_, view) = queued();
        assert_eq!(
            (&view["state"], &view["tsp"], &view["freeze"]["wallet"]),
            (
                &json!("pending"),
                &json!("devnet-regulator"),
                &json!(c.address().to_string())
            ),
            "{view}"
        );
        wait_for("the regulator to see it delivered", || {
            get("/freezes").1[0]["state"] == "delivered"
        });
        // Only regulators ask for freezes.
        let kyc_client = SignedClient::new(Arc::clone(&kyc_key), chain.clone(), "devnet-kyc");
        let status = rt.block_on(async {
            kyc_client
                .send(
                    reqwest::Method::POST,
                    &issuer_api,
                    "/freeze-requests",
                    serde_json::to_vec(&view["freeze"]).unwrap(),
                )
                .await
                .unwrap()
                .status()
                .as_u16()
        });
        assert_eq!(status, 403, "a freeze request from a KYC provider");
        let (status, decided) = raw(
            "POST",
            &format!("{issuer_api}/requests/freeze/{request}/decisions"),
            &bearer(t, &iop),
            &json!({"decision": "approve", "reason": "the regulator's sanctions list"}).to_string(),
        );
        assert_eq!(
            (status, &decided["state"]),
            (200, &json!("executing")),
            "{decided}"
        );
        wait_for("the freeze seen on chain", || {
            get("/freezes").1[0]["state"] == "executed"
        });
        let seen = get("/freezes").1[0].clone();
        wait_for("the issuer's check", || queued().1["state"] == "checked");
        assert_eq!(seen["executed_tx"], queued().1["execution_tx"], "{seen}");
        let wallet = rt.block_on(node.wallet(&c.address())).unwrap().data;
        assert_eq!(wallet.frozen_tokens, vec![token.parse().unwrap()]);
        let moved = rt.block_on(support::services::send_outcome(
            &node,
            &chain,
            &c,
            Payload::Transfer(Transfer {
                token: token.parse().unwrap(),
                to: a.address(),
                amount: Units(1),
                reference: None,
            }),
        ));
        assert!(
            matches!(&moved, Outcome::Rejected(r) if r.code.name() == "WALLET_FROZEN"),
            "{moved:?}"
        );
        drop(issuer_child);

        // Refused: a report from an organisation that is not an exchange,
        // one not signed by the exchange's key, one of another exchange.
        let (status, why) = signed_as(&kyc_key, "devnet-kyc", &fourth);
        assert_eq!(status, 403, "{why}");
        let mut forged = fourth.clone();
        forged.signature = kyc_key.sign(
            Domain::ExchangeReport,
            &chain,
            &Hash::from_hex(&forged.hash).unwrap().0,
        );
        forged.report.seq = 5;
        let (status, why) = deliver(&forged);
        assert_eq!(status, 422, "{why}");
        // Report 4 rewritten, signed and sent with the CLI as an exchange
        // reporting by other means would: refused, and a finding.
        let mut rewritten = fourth.report.clone();
        rewritten.trades.clear();
        let unsigned = t.join(format!("rewritten-{run}.json"));
        let signed = t.join(format!("rewritten-{run}.signed.json"));
        std::fs::write(&unsigned, serde_json::to_vec(&rewritten).unwrap()).unwrap();
        let exchange_key = keys.join("devnet-exchange.key");
        let o = tranche()
            .args(["service", "sign-report"])
            .arg(&unsigned)
            .arg("--key-file")
            .arg(&exchange_key)
            .arg("--password-file")
            .arg(&pw)
            .args(["--chain-id", chain.as_str(), "--out"])
            .arg(&signed)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let o = tranche()
            .args(["service", "call", &api, "/reports", "--body"])
            .arg(&signed)
            .args(["--sign-as", "devnet-exchange", "--chain-id", chain.as_str()])
            .arg("--key-file")
            .arg(&exchange_key)
            .arg("--password-file")
            .arg(&pw)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "refused: {}", text(&o));
        assert!(text(&o).contains("was received as"), "{}", text(&o));
        assert!(findings_of(4).iter().any(|(k, _)| k == "edited"));

        // Report 5 never comes; report 6 drops a transfer. The regulator is
        // killed with -9 as soon as it has report 6, and started again: the
        // same findings, once.
        let t7 = transfer(&a, &b, 3);
        let t8 = transfer(&b, &a, 1);
        reporter.seq += 1;
        let sixth = reporter.next(
            height(),
            Vec::new(),
            vec![reported(&mv(&t7, Some(&a), &b, 3, "holder"))],
        );
        let (status, receipt) = deliver(&sixth);
        assert_eq!(status, 200, "{receipt}");
        support::kill(child.id());
        let _ = child.wait();
        child = start("regulator", &config, &log);
        wait_for("the regulator again", || healthy(&api));
        let r6 = reconciled(6);
        assert_eq!(r6["findings"], 1, "the transfer left out: {r6}");
        let f6 = findings_of(6);
        let kinds: Vec<&str> = f6.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["missing", "missing"], "{f6:?}");
        assert!(
            f6.iter()
                .any(|(_, d)| d.contains("reports 5 to 5 never arrived")),
            "{f6:?}"
        );
        assert!(get("/findings?exchange=devnet-exchange")
            .1
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["evidence"]["chain"]["tx"] == t8.0.as_str()));

        // Every finding and alert is in the audit log, anchored on chain.
        let records = get("/audit?after=0&limit=1000").1;
        let actions: Vec<&str> = records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["entry"]["action"].as_str().unwrap())
            .collect();
        let count = |a: &str| actions.iter().filter(|x| **x == a).count();
        let total_findings = get("/findings?exchange=devnet-exchange")
            .1
            .as_array()
            .unwrap()
            .len();
        assert_eq!(count("finding"), total_findings, "{actions:?}");
        assert_eq!(count("alert"), 2);
        assert_eq!(count("freeze_request"), 1);
        assert_eq!(count("freeze_answer"), 1, "delivered");
        assert_eq!(count("freeze_executed"), 1);
        assert_eq!(count("reconcile"), 5);
        assert_eq!(count("publish_policy"), 1);
        assert_eq!(count("export"), 1);
        support::kill(child.id());
        let _ = child.wait();
        let _ = &mut cleanup;
    }
}
