//! The exchange's service as its users meet it, on SQLite and on
//! PostgreSQL (F6-2..F6-7, F6-11, SR-2): two traders log in with KYC and
//! jurisdiction credentials and bind the wallets the exchange gives them;
//! a token is listed once its issuance checks out on chain; they trade it
//! against the bank's deposit token and against USD kept at the exchange;
//! each trade is in the trade ledger and final on chain with the same
//! amounts; oversold, unfunded, ineligible and halted orders are refused
//! with stable codes; after a kill -9 the book is rebuilt from the journal;
//! a pause halts the book, and every endpoint refuses the wrong caller.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tranche_api::client::NodeClient;
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_testkit::world::{claim_until, date, issuance_request};
use tranche_types::{ChainId, ClaimTopic, Payload, SetFrozen, SetPaused, WalletAddress};

mod support;

use support::services::{
    bearer, did_of, healthy, http_receiver, issue_vc, kyc_people, login_as, publish_aml_policy,
    raw, send, service_table, start, stop_devnet_service, text, tokenize, tranche, wait_for,
    ServiceRun, Tokenizers,
};

fn chain_balance(
    rt: &tokio::runtime::Runtime,
    node: &NodeClient,
    wallet: &WalletAddress,
    token: &str,
) -> u128 {
    rt.block_on(node.wallet(wallet))
        .unwrap()
        .data
        .balances
        .iter()
        .find(|b| b.token.as_str() == token)
        .map_or(0, |b| b.units.0)
}

/// The `asset` balance row of a trader's view.
fn account<'a>(me: &'a Value, kind: &str, id: &str) -> Option<&'a Value> {
    me["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"]["kind"] == kind && b["asset"]["id"] == id)
}

fn consent(dir: &Path, name: &str, chain: &ChainId, wallet: &str) -> String {
    let out = dir.join(format!("{name}.wallet-consent.json"));
    let o = tranche()
        .args([
            "did",
            "consent-wallet",
            "--chain-id",
            chain.as_str(),
            "--wallet",
            wallet,
        ])
        .arg("--key-file")
        .arg(dir.join(format!("{name}.key")))
        .arg("--password-file")
        .arg(dir.join("person-pw"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn f6_2_f6_5_f6_7_sr2_traders_trade_a_listed_token_and_every_trade_settles_on_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    // Below the ephemeral ports (32768 and up), where a client socket could
    // hold one.
    let base = 14_000 + (std::process::id() % 50) as u16 * 10;
    let mut cleanup = support::devnet_up(&dir, base);
    let devnet = DevnetFile::read(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The test runs the exchange's service itself, once per database, and
    // signs as the TSP and the issuer to issue and pause a token.
    stop_devnet_service(&rt, &devnet, "exchange", tranche_exchange::MIGRATIONS);
    stop_devnet_service(&rt, &devnet, "tsp", tranche_tsp::MIGRATIONS);
    stop_devnet_service(&rt, &devnet, "issuer", tranche_issuer::MIGRATIONS);
    // ... and as the regulator, to publish AML policies.
    stop_devnet_service(&rt, &devnet, "regulator", tranche_regulator::MIGRATIONS);
    let bank = support::services::login_devnet_staff(tmp.path(), &devnet, "bank");
    let pw = PathBuf::from(&devnet.password_file);
    let keys = PathBuf::from(&devnet.keys);
    let open = |name: &str| {
        tranche_keystore::open_key_file(&keys.join(format!("{name}.key")), Some(&pw)).unwrap()
    };
    let [tsp, issuer, kyc, registry, appraiser, regulator] = [
        "devnet-tsp",
        "devnet-issuer",
        "devnet-kyc",
        "devnet-registry",
        "devnet-appraiser",
        "devnet-regulator",
    ]
    .map(open);
    let orgs = Tokenizers {
        tsp,
        issuer,
        registry,
        appraiser,
    };
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
        } = ServiceRun::new(t, "exchange", base, run);
        // Alice sells, Bob buys; Carol has credentials but no KYC claim on
        // chain, so the token's rules would refuse her.
        let people = kyc_people(t, (&keys, &pw), &["alice", "bob", "carol"], run);
        for (name, k) in &people {
            issue_vc(
                &keys,
                &pw,
                "devnet-kyc",
                &did_of(k),
                &["jurisdiction", "--country", "KR"],
                &t.join(format!("{name}.jur.json")),
            );
        }
        let (alice, bob, carol) = (&people[0], &people[1], &people[2]);
        rt.block_on(async {
            for (_, k) in [alice, bob] {
                let did = Ledger::did_of_key(&k.public_key());
                let claim = claim_until(&did, ClaimTopic::KYC, None, date("2099-12-31"));
                send(&node, &chain, &kyc, claim).await;
            }
        });
        let table = service_table(
            "devnet-exchange",
            (&keys, &pw),
            &devnet.nodes[2].api,
            &listen,
            &data,
            database,
        );
        std::fs::write(
            &config,
            format!(
                "{table}anchor_interval_secs = 2\ntrusted_issuers = [\"{}\"]\n\n[exchange]\ncurrencies = [\"USD\"]\nquote_tokens = [\"USD-DEP\"]\nfee_bps = 10\norder_units_max = \"1000\"\norder_value_max = \"100000000\"\neligibility_ttl_ms = 60000\n",
                did_of(&kyc),
            ),
        )
        .unwrap();
        let (inbox, pushed) = http_receiver(1, "signature");
        std::fs::write(
            &config,
            std::fs::read_to_string(&config).unwrap() + &format!("report_url = \"{inbox}\"\n"),
        )
        .unwrap();
        let op = format!("xop{run}");
        support::services::operator(t, "exchange", &config, &op);
        cleanup.children.push(start("exchange", &config, &log));
        wait_for("the exchange's service", || healthy(&api));
        let session = |name: &str, at: &str, label: &str| -> String {
            let s = format!("{name}-{label}");
            let creds = [
                t.join(format!("{name}.kyc.json")),
                t.join(format!("{name}.jur.json")),
            ];
            let creds: Vec<&Path> = creds.iter().map(PathBuf::as_path).collect();
            let o = login_as(t, at, name, &s, &creds);
            assert!(o.status.success(), "{}", text(&o));
            s
        };
        let (a, b, c) = (
            session(&alice.0, &api, "exchange"),
            session(&bob.0, &api, "exchange"),
            session(&carol.0, &api, "exchange"),
        );
        let o = login_as(t, &api, &op, &op, &[&t.join(format!("{op}.json"))]);
        assert!(o.status.success(), "{}", text(&o));

        // Without a session, nothing.
        for (method, path) in [
            ("POST", "/traders"),
            ("GET", "/traders"),
            ("GET", "/traders/me"),
            ("PUT", "/traders/me/wallet"),
            ("POST", "/accounts/credits"),
            ("POST", "/accounts/debits"),
            ("GET", "/markets"),
            ("GET", "/markets/X/USD"),
            ("POST", "/orders"),
            ("GET", "/orders"),
            ("GET", "/orders/1"),
            ("DELETE", "/orders/1"),
            ("PATCH", "/orders/1"),
            ("GET", "/trades"),
        ] {
            let json = [("content-type", "application/json".to_string())];
            let (status, out) = raw(method, &format!("{api}{path}"), &json, "{}");
            assert_eq!(status, 401, "{method} {path}: {out}");
        }

        // Onboarding (F6-3, F6-11): a wallet each, bound on their consent.
        let post = |who: &str, path: &str, body: Value| {
            raw(
                "POST",
                &format!("{api}{path}"),
                &bearer(t, who),
                &body.to_string(),
            )
        };
        let get = |who: &str, path: &str| raw("GET", &format!("{api}{path}"), &bearer(t, who), "");
        let mut wallets = Vec::new();
        for (who, (name, _)) in [(&a, alice), (&b, bob), (&c, carol)] {
            let (status, me) = post(who, "/traders", json!({}));
            assert_eq!(
                (status, &me["state"]),
                (200, &json!("awaiting_consent")),
                "{me}"
            );
            let wallet = me["wallet"].as_str().unwrap().to_string();
            let (status, again) = post(who, "/traders", json!({}));
            assert_eq!((status, &again["wallet"]), (200, &me["wallet"]), "the same");
            let body = consent(t, name, &chain, &wallet);
            let (status, out) = raw(
                "PUT",
                &format!("{api}/traders/me/wallet"),
                &bearer(t, who),
                &body,
            );
            assert_eq!(status, 200, "{out}");
            wallets.push(wallet.parse::<WalletAddress>().unwrap());
        }
        // Another's consent is refused.
        let bobs = consent(t, &bob.0, &chain, &wallets[1].to_string());
        let (status, _) = raw(
            "PUT",
            &format!("{api}/traders/me/wallet"),
            &bearer(t, &a),
            &bobs,
        );
        assert_eq!(status, 403);
        for who in [&a, &b, &c] {
            wait_for("the wallet bound", || {
                get(who, "/traders/me").1["state"] == "active"
            });
        }
        assert_eq!(get(&a, "/traders").0, 403, "traders are listed for staff");
        assert_eq!(get(&op, "/traders").1.as_array().unwrap().len(), 3);

        // A token issued to Alice's exchange wallet is listed once its
        // issuance checks out (F6-2, SR-2).
        let token = format!("XT{run}");
        let asset = format!("A-XT{run}");
        let request = issuance_request(
            &format!("R-XT{run}"),
            &asset,
            &token,
            "devnet-issuer",
            &[(wallets[0], 100)],
            100,
        );
        rt.block_on(tokenize(&node, &chain, &orgs, &alice.1, &request));
        wait_for("the token listed", || {
            get(&b, "/markets")
                .1
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["token"] == token.as_str() && l["status"] == "listed")
        });
        let listing = get(&b, "/markets").1;
        let listing = listing
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["token"] == token.as_str())
            .unwrap()
            .clone();
        assert!(
            listing["reason"]
                .as_str()
                .unwrap()
                .starts_with("issued 100 of 100"),
            "{listing}"
        );
        assert_eq!(
            listing["instruments"],
            json!([format!("{token}/USD"), format!("{token}/USD-DEP")])
        );
        wait_for("alice's tokens seen", || {
            account(&get(&a, "/traders/me").1, "token", &token).is_some()
        });

        // Bob funds his wallet with the bank's deposit token, and his
        // account at the exchange with USD.
        let bob_bank = {
            let s = format!("{}-bank", bob.0);
            let o = login_as(
                t,
                &bank.api,
                &bob.0,
                &s,
                &[&t.join(format!("{}.kyc.json", bob.0))],
            );
            assert!(o.status.success(), "{}", text(&o));
            s
        };
        let (status, out) = raw(
            "POST",
            &format!("{}/accounts", bank.api),
            &bearer(t, &bob_bank),
            &json!({"wallet": wallets[1].to_string()}).to_string(),
        );
        assert_eq!(status, 200, "{out}");
        let (status, out) = raw(
            "POST",
            &format!("{}/deposits", bank.api),
            &bearer(t, "bank-operator-1"),
            &json!({"did": did_of(&bob.1), "amount": "5000", "reference": format!("XDEP-{run}")})
                .to_string(),
        );
        assert_eq!(status, 200, "{out}");
        let credit = json!({"did": did_of(&bob.1), "currency": "USD", "amount": "100000", "reference": format!("WIRE-{run}")});
        assert_eq!(
            post(&b, "/accounts/credits", credit.clone()).0,
            403,
            "operators credit"
        );
        let (status, out) = post(&op, "/accounts/credits", credit.clone());
        assert_eq!((status, &out["balance"]), (200, &json!("100000")), "{out}");
        let (status, out) = post(&op, "/accounts/credits", credit);
        assert_eq!(
            (status, &out["balance"]),
            (200, &json!("100000")),
            "once per reference: {out}"
        );
        wait_for("bob's deposit tokens seen", || {
            account(&get(&b, "/traders/me").1, "token", "USD-DEP")
                .is_some_and(|x| x["free"] == "5000")
        });

        // Against the deposit token on chain: both legs settle atomically.
        let dep = format!("{token}/USD-DEP");
        let (status, sell) = post(
            &a,
            "/orders",
            json!({"instrument": dep, "side": "sell", "price": 5, "quantity": 10, "client_id": "a-1"}),
        );
        assert_eq!((status, &sell["state"]), (200, &json!("open")), "{sell}");
        let (status, again) = post(
            &a,
            "/orders",
            json!({"instrument": dep, "side": "sell", "price": 5, "quantity": 10, "client_id": "a-1"}),
        );
        assert_eq!(
            (status, &again["id"]),
            (200, &sell["id"]),
            "a retry places nothing new"
        );
        let (status, buy) = post(
            &b,
            "/orders",
            json!({"instrument": dep, "side": "buy", "price": 5, "quantity": 4}),
        );
        assert_eq!(
            (status, &buy["state"], &buy["filled"]),
            (200, &json!("filled"), &json!(4)),
            "{buy}"
        );
        let trades = |who: &str| get(who, "/trades").1;
        wait_for("the trade settled", || trades(&b)[0]["state"] == "settled");
        assert_eq!(chain_balance(&rt, &node, &wallets[1], &token), 4);
        assert_eq!(chain_balance(&rt, &node, &wallets[0], "USD-DEP"), 20);
        let book = get(&b, &format!("/markets/{token}/USD-DEP")).1;
        assert_eq!(book["asks"][0]["quantity"], 6, "{book}");

        // Refusals, each with a stable code.
        let refused = |who: &str, body: Value, code: &str| {
            let (status, out) = post(who, "/orders", body);
            assert_eq!(
                (status, &out["code"]),
                (422, &json!("refused")),
                "{code}: {out}"
            );
            assert!(
                out["message"].as_str().unwrap().starts_with(code),
                "{code}: {out}"
            );
        };
        refused(
            &a,
            json!({"instrument": dep, "side": "sell", "price": 5, "quantity": 91}),
            "insufficient_tokens",
        );
        refused(
            &b,
            json!({"instrument": dep, "side": "buy", "price": 1000, "quantity": 100}),
            "insufficient_funds",
        );
        refused(
            &c,
            json!({"instrument": dep, "side": "buy", "price": 5, "quantity": 1}),
            "not_eligible",
        );
        refused(
            &b,
            json!({"instrument": dep, "side": "buy", "price": 5, "quantity": 1001}),
            "over_order_limit",
        );
        let (status, post_only) = post(
            &b,
            "/orders",
            json!({"instrument": dep, "side": "buy", "price": 5, "quantity": 1, "tif": "post_only"}),
        );
        assert_eq!(
            (status, &post_only["state"], &post_only["reason"]),
            (200, &json!("rejected"), &json!("post_only_would_cross")),
            "{post_only}"
        );
        let (status, fok) = post(
            &b,
            "/orders",
            json!({"instrument": dep, "side": "buy", "price": 5, "quantity": 7, "tif": "fok"}),
        );
        assert_eq!((status, &fok["state"]), (200, &json!("rejected")), "{fok}");

        // Against USD at the exchange: the chain carries the token, the
        // exchange's ledger the money, exactly when the chain is final.
        let usd_pair = format!("{token}/USD");
        let (status, out) = post(
            &a,
            "/orders",
            json!({"instrument": usd_pair, "side": "sell", "price": 2000, "quantity": 5}),
        );
        assert_eq!(status, 200, "{out}");
        let (status, out) = post(
            &b,
            "/orders",
            json!({"instrument": usd_pair, "side": "buy", "quantity": 5}),
        );
        assert_eq!(
            (status, &out["filled"]),
            (200, &json!(5)),
            "a market order: {out}"
        );
        wait_for("the USD trade settled", || {
            trades(&b)[0]["state"] == "settled"
        });
        assert_eq!(chain_balance(&rt, &node, &wallets[1], &token), 9);
        let me = get(&b, "/traders/me").1;
        assert_eq!(
            account(&me, "currency", "USD").unwrap()["balance"],
            "89990",
            "10,000 and a 10 bp fee: {me}"
        );
        let me = get(&a, "/traders/me").1;
        assert_eq!(
            account(&me, "currency", "USD").unwrap()["balance"],
            "9990",
            "{me}"
        );
        let debit = json!({"did": did_of(&alice.1), "currency": "USD", "amount": "10000", "reference": format!("PAYOUT-{run}")});
        let (status, out) = post(&op, "/accounts/debits", debit);
        assert_eq!(status, 422, "more than she has: {out}");

        // kill -9: the resting order is rebuilt from the journal.
        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
        cleanup.children.push(start("exchange", &config, &log));
        wait_for("the exchange's service", || healthy(&api));
        let open = get(&a, "/orders?open=true").1;
        assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
        assert_eq!(open[0]["open"], 6);
        let book = get(&b, &format!("/markets/{token}/USD-DEP")).1;
        assert_eq!(book["asks"][0]["quantity"], 6, "{book}");
        let id = open[0]["id"].as_u64().unwrap();
        let (status, amended) = raw(
            "PATCH",
            &format!("{api}/orders/{id}"),
            &bearer(t, &a),
            &json!({"quantity": 3}).to_string(),
        );
        assert_eq!((status, &amended["open"]), (200, &json!(3)), "{amended}");
        assert_eq!(
            raw("DELETE", &format!("{api}/orders/{id}"), &bearer(t, &b), "").0,
            404,
            "bob cannot cancel alice's"
        );

        // A pause halts the book (cancels still accepted); resuming reopens it.
        rt.block_on(send(
            &node,
            &chain,
            &orgs.issuer,
            Payload::SetPaused(SetPaused {
                token: token.parse().unwrap(),
                paused: true,
            }),
        ));
        wait_for("the book halted", || {
            get(&b, &format!("/markets/{token}/USD-DEP")).1["status"] == "halted"
        });
        let (status, halted) = post(
            &b,
            "/orders",
            json!({"instrument": dep, "side": "buy", "price": 5, "quantity": 1}),
        );
        // The node's holder check refuses a paused token at once; an
        // answer it gave moments before lets the order reach the halted book.
        assert!(
            status == 422 || (halted["state"] == "rejected" && halted["reason"] == "halted"),
            "{halted}"
        );
        let (status, cancelled) = raw("DELETE", &format!("{api}/orders/{id}"), &bearer(t, &a), "");
        assert_eq!(
            (status, &cancelled["state"]),
            (200, &json!("cancelled")),
            "{cancelled}"
        );
        rt.block_on(send(
            &node,
            &chain,
            &orgs.issuer,
            Payload::SetPaused(SetPaused {
                token: token.parse().unwrap(),
                paused: false,
            }),
        ));
        wait_for("the book open again", || {
            get(&b, &format!("/markets/{token}/USD-DEP")).1["status"] == "open"
        });

        // The trade ledger (F6-5) agrees with the chain.
        let ledger = get(&op, "/trades").1;
        let bought: u64 = ledger
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["token"] == token.as_str() && t["state"] == "settled")
            .map(|t| t["quantity"].as_u64().unwrap())
            .sum();
        assert_eq!(
            u128::from(bought),
            chain_balance(&rt, &node, &wallets[1], &token)
        );
        assert_eq!(trades(&c), json!([]), "carol sees no one's trades");
        let held = get(&a, "/traders/me").1;
        assert_eq!(
            account(&held, "token", &token).unwrap()["held"],
            "0",
            "{held}"
        );

        // Reports (F6-6, F6-8): the operator closes the period; the
        // regulator's organisation reads them with a request signed by its
        // key and checks them against the chain; nobody else reads them.
        assert_eq!(
            post(&a, "/reports", json!({})).0,
            403,
            "operators close reports"
        );
        let (status, closed) = post(&op, "/reports", json!({}));
        assert_eq!(status, 200, "{closed}");
        let reported = &closed["report"];
        assert_eq!(reported["trades"].as_array().unwrap().len(), 2, "{closed}");
        // Every movement touching a trader's wallet: the trades' legs, each
        // naming its trade, and the deposits.
        let moves = reported["transfers"].as_array().unwrap();
        let legs: Vec<&Value> = moves.iter().filter(|m| m["kind"] == "settlement").collect();
        assert_eq!(legs.len(), 3, "two legs and one: {closed}");
        assert!(legs.iter().all(|l| l["trade"].is_u64()), "{closed}");
        assert!(
            moves.iter().any(|m| m["kind"] == "issuance"
                && m["to_wallet"] == wallets[0].to_string().as_str()
                && m["to"] == did_of(&alice.1).as_str()),
            "alice's tokens, issued to her exchange wallet: {closed}"
        );
        assert_eq!(reported["trades"][0]["seller"], did_of(&alice.1));
        assert_eq!(reported["trades"][0]["buyer"], did_of(&bob.1));
        assert_eq!(get(&a, "/reports").0, 403, "a trader reads no reports");
        let signed_get = |org: &str, out: &Path| {
            tranche()
                .args([
                    "service",
                    "call",
                    &api,
                    "/reports?after=0",
                    "--sign-as",
                    org,
                    "--chain-id",
                    chain.as_str(),
                ])
                .arg("--key-file")
                .arg(keys.join(format!("{org}.key")))
                .arg("--password-file")
                .arg(&pw)
                .stdout(std::fs::File::create(out).unwrap())
                .output()
                .unwrap()
        };
        let file = t.join(format!("reports-{run}.json"));
        let o = signed_get("devnet-tsp", &file);
        assert!(!o.status.success(), "a TSP reads no reports");
        let o = signed_get("devnet-regulator", &file);
        assert!(o.status.success(), "{}", text(&o));
        let verify = |f: &Path| {
            tranche()
                .arg("verify")
                .arg(f)
                .args(["--node", &devnet.nodes[3].api])
                .output()
                .unwrap()
        };
        let o = verify(&file);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("2 trades, {} transfers", moves.len())),
            "{}",
            text(&o)
        );
        let mut tampered: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let last = tampered.as_array().unwrap().len() - 1;
        tampered[last]["report"]["trades"][0]["quantity"] = json!(3);
        let forged = t.join(format!("reports-{run}-edited.json"));
        std::fs::write(&forged, tampered.to_string()).unwrap();
        let o = verify(&forged);
        assert!(
            !o.status.success() && text(&o).contains("edited"),
            "{}",
            text(&o)
        );
        let mut gap: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        gap.as_array_mut().unwrap().remove(0);
        gap.as_array_mut()
            .unwrap()
            .insert(0, tampered[last].clone());
        std::fs::write(&forged, gap.to_string()).unwrap();
        assert!(!verify(&forged).status.success(), "out of order");
        // Pushed to the configured inbox, signed, retried after a refusal.
        wait_for("the reports pushed", || pushed.lock().unwrap().len() >= 2);
        let got = pushed.lock().unwrap().clone();
        assert!(
            got.iter().all(|(sig, _)| sig.starts_with("tranche=:")),
            "{:?}",
            got.iter()
                .map(|(sig, body)| (
                    sig.clone(),
                    String::from_utf8_lossy(&body[..body.len().min(120)]).to_string()
                ))
                .collect::<Vec<_>>()
        );
        // In binary: the report the exchange signed, its hash its bytes'.
        let last_pushed =
            tranche_api::report::SignedReport::from_binary(&got.last().unwrap().1).unwrap();
        assert_eq!(last_pushed.hash, closed["hash"].as_str().unwrap());
        assert_eq!(
            last_pushed.report.seq,
            closed["report"]["seq"].as_u64().unwrap()
        );

        // The WebSocket: Bob follows the book and trades over it; Alice is
        // told of her order's fill on hers.
        let ws = |who: &str| {
            let token = support::services::token(t, who);
            let (socket, _) =
                tungstenite::connect(format!("ws://{listen}/ws?token={token}")).unwrap();
            if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
                s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
                    .unwrap();
            }
            socket
        };
        let next = |s: &mut tungstenite::WebSocket<_>| -> Value {
            loop {
                match s.read().expect("a message within 20 s") {
                    tungstenite::Message::Text(t) => {
                        return serde_json::from_str(t.as_str()).unwrap()
                    }
                    _ => continue,
                }
            }
        };
        let until = |s: &mut tungstenite::WebSocket<_>,
                     what: &str,
                     pred: &dyn Fn(&Value) -> bool|
         -> Value {
            let mut seen = Vec::new();
            for _ in 0..50 {
                let m = next(s);
                if pred(&m) {
                    return m;
                }
                eprintln!("on the WebSocket, waiting for {what}: {m}");
                seen.push(m);
            }
            panic!("no {what} on the WebSocket: {seen:?}");
        };
        assert!(
            tungstenite::connect(format!("ws://{listen}/ws?token=nope")).is_err(),
            "no session, no WebSocket"
        );
        let (mut bws, mut aws) = (ws(&b), ws(&a));
        let ws_send = |s: &mut tungstenite::WebSocket<_>, v: Value| {
            s.send(tungstenite::Message::Text(v.to_string().into()))
                .unwrap();
        };
        ws_send(&mut bws, json!({"op": "hello"}));
        assert_eq!(next(&mut bws)["code"], "bad_request");
        ws_send(&mut bws, json!({"op": "subscribe", "instrument": dep}));
        let book = next(&mut bws);
        assert_eq!(
            (&book["type"], &book["asks"]),
            (&json!("book"), &json!([])),
            "{book}"
        );
        let (status, out) = post(
            &a,
            "/orders",
            json!({"instrument": dep, "side": "sell", "price": 6, "quantity": 2}),
        );
        assert_eq!(status, 200, "{out}");
        let book = until(&mut bws, "the ask", &|m| {
            m["type"] == "book" && m["asks"][0]["price"] == 6
        });
        assert_eq!(book["asks"][0]["quantity"], 2);
        ws_send(
            &mut bws,
            json!({"op": "place", "order": {"instrument": dep, "side": "buy", "price": 6, "quantity": 2}}),
        );
        // The answer and the market data come in either order.
        let mut seen: Vec<Value> = Vec::new();
        let has =
            |seen: &[Value], pred: &dyn Fn(&Value) -> bool| seen.iter().find(|m| pred(m)).cloned();
        let is_mine =
            |m: &Value| m["type"] == "order" && m["side"] == "buy" && m["state"] == "filled";
        let is_tick = |m: &Value| m["type"] == "trade";
        while has(&seen, &is_mine).is_none() || has(&seen, &is_tick).is_none() {
            assert!(
                seen.len() < 50,
                "no answer and trade on the WebSocket: {seen:?}"
            );
            seen.push(next(&mut bws));
        }
        let tick = has(&seen, &is_tick).unwrap();
        assert_eq!((&tick["price"], &tick["quantity"]), (&json!(6), &json!(2)));
        let hers = until(&mut aws, "her fill", &|m| {
            m["type"] == "order" && m["state"] == "filled"
        });
        assert_eq!(hers["did"], did_of(&alice.1), "only her own orders");

        // An API key: Bob's program signs its requests instead of logging in.
        let bot = support::services::person(t, &format!("{}-bot", bob.0));
        let bot_key = serde_json::to_value(bot.public_key()).unwrap();
        let (status, out) = post(&b, "/traders/me/keys", json!({"key": bot_key}));
        assert_eq!((status, &out["key"]), (200, &bot_key), "{out}");
        assert_eq!(
            post(&a, "/traders/me/keys", json!({"key": bot_key})).0,
            409,
            "bob's key is his"
        );
        assert_eq!(post(&b, "/traders/me/keys", json!({"key": "beef"})).0, 400);
        let as_bot = |path: &str, body: Option<Value>| {
            let mut c = tranche();
            c.args([
                "service",
                "call",
                &api,
                path,
                "--sign-as",
                bot_key.as_str().unwrap(),
                "--chain-id",
                chain.as_str(),
            ])
            .arg("--key-file")
            .arg(t.join(format!("{}-bot.key", bob.0)))
            .arg("--password-file")
            .arg(t.join("person-pw"));
            if let Some(b) = body {
                c.args(["--body", &b.to_string()]);
            }
            c.output().unwrap()
        };
        let o = as_bot(
            "/orders",
            Some(json!({"instrument": dep, "side": "buy", "price": 1, "quantity": 1})),
        );
        assert!(o.status.success(), "{}", text(&o));
        let placed: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (&placed["state"], &placed["did"]),
            (&json!("open"), &json!(did_of(&bob.1))),
            "{placed}"
        );
        let o = as_bot("/orders?open=true", None);
        assert!(o.status.success(), "{}", text(&o));
        let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(listed[0]["id"], placed["id"], "{listed}");
        let (status, cancelled) = raw(
            "DELETE",
            &format!("{api}/orders/{}", placed["id"]),
            &bearer(t, &b),
            "",
        );
        assert_eq!(
            (status, &cancelled["state"]),
            (200, &json!("cancelled")),
            "{cancelled}"
        );
        let (status, _) = raw(
            "DELETE",
            &format!("{api}/traders/me/keys/{}", bot_key.as_str().unwrap()),
            &bearer(t, &b),
            "",
        );
        assert_eq!(status, 200);
        assert!(
            !as_bot("/orders", None).status.success(),
            "a revoked key signs nothing"
        );

        // A settlement the chain refuses (Bob's wallet frozen after the
        // exchange last checked him): the trade fails with the chain's code
        // and both sides' balances are whole.
        let free = |who: &str, kind: &str, id: &str| -> String {
            account(&get(who, "/traders/me").1, kind, id)
                .map_or("0".into(), |x| x["free"].as_str().unwrap().to_string())
        };
        let (bob_cash, alice_tokens) = (free(&b, "token", "USD-DEP"), free(&a, "token", &token));
        let frozen = |on: bool| {
            Payload::SetFrozen(SetFrozen {
                token: token.parse().unwrap(),
                wallet: wallets[1],
                frozen: on,
            })
        };
        rt.block_on(send(&node, &chain, &orgs.issuer, frozen(true)));
        let (status, out) = post(
            &a,
            "/orders",
            json!({"instrument": dep, "side": "sell", "price": 7, "quantity": 1}),
        );
        assert_eq!(status, 200, "{out}");
        let (status, out) = post(
            &b,
            "/orders",
            json!({"instrument": dep, "side": "buy", "price": 7, "quantity": 1}),
        );
        assert_eq!(
            (status, &out["state"]),
            (200, &json!("filled")),
            "matched on a check made before the freeze: {out}"
        );
        wait_for("the settlement refused", || {
            trades(&b)[0]["state"] == "failed"
        });
        let failed = &trades(&b)[0];
        assert_eq!(failed["reason"], "WALLET_FROZEN", "{failed}");
        assert_eq!(free(&b, "token", "USD-DEP"), bob_cash, "bob's money whole");
        assert_eq!(
            free(&a, "token", &token),
            alice_tokens,
            "alice's tokens whole"
        );
        rt.block_on(send(&node, &chain, &orgs.issuer, frozen(false)));

        // kill -9 under load: Alice and Bob keep trading while the exchange
        // is killed. After the restart every acknowledged order is on the
        // book or traded, and the trade ledger equals the chain.
        let flood = |who: String, side: &'static str| {
            let url = format!("{api}/orders");
            let headers = bearer(t, &who);
            let instrument = dep.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for _ in 0..40 {
                    let body =
                        json!({"instrument": instrument, "side": side, "price": 8, "quantity": 1});
                    let client = reqwest::blocking::Client::new();
                    let mut r = client.post(&url).body(body.to_string());
                    for (k, v) in &headers {
                        r = r.header(*k, v);
                    }
                    match r.send() {
                        Ok(resp) if resp.status().is_success() => {
                            let v: Value = resp.json().unwrap();
                            acked.push(v["id"].as_u64().unwrap());
                        }
                        _ => break,
                    }
                }
                acked
            })
        };
        let (sells, buys) = (flood(a.clone(), "sell"), flood(b.clone(), "buy"));
        std::thread::sleep(std::time::Duration::from_millis(400));
        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
        let acked: Vec<u64> = sells
            .join()
            .unwrap()
            .into_iter()
            .chain(buys.join().unwrap())
            .collect();
        assert!(
            !acked.is_empty(),
            "orders were acknowledged before the kill"
        );
        eprintln!("{} of 80 orders acknowledged before the kill", acked.len());
        cleanup.children.push(start("exchange", &config, &log));
        wait_for("the exchange's service", || healthy(&api));
        for id in &acked {
            let (status, o) = get(&op, &format!("/orders/{id}"));
            assert_eq!(status, 200, "acknowledged order {id} survives: {o}");
            assert!(o["state"] == "open" || o["state"] == "filled", "{o}");
        }
        wait_for("every trade settled", || {
            get(&op, "/trades")
                .1
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["state"] != "settling")
        });
        let ledger = get(&op, "/trades").1;
        let settled: Vec<&Value> = ledger
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "settled")
            .collect();
        let txs: std::collections::BTreeSet<&str> =
            settled.iter().map(|t| t["tx"].as_str().unwrap()).collect();
        assert_eq!(txs.len(), settled.len(), "no settlement twice");
        let bought: u64 = settled
            .iter()
            .filter(|t| t["token"] == token.as_str() && t["buyer"] == did_of(&bob.1).as_str())
            .map(|t| t["quantity"].as_u64().unwrap())
            .sum();
        assert_eq!(
            u128::from(bought),
            chain_balance(&rt, &node, &wallets[1], &token),
            "the trade ledger is the chain's"
        );

        // The regulator's AML policy (F6-1), from the block it governs: a
        // sanctioned identity trades no more, and an identity commits at
        // most the daily limit in orders; the exchange's own limits stay.
        let publish = |sanctioned: Vec<String>, daily: &str| {
            let policy = json!({
                "report_period_secs": 3600,
                "limits": [{"asset": "USD-DEP", "large_value": "0", "daily_value_max": daily, "travel_rule_value": "0"}],
                "blocked_countries": [],
                "sanctioned": sanctioned,
            });
            rt.block_on(publish_aml_policy(&node, &chain, &regulator, policy));
        };
        // Bob's order resting when the policy sanctioning him takes effect
        // is cancelled then.
        let dep = format!("{token}/USD-DEP");
        let (status, resting) = post(
            &b,
            "/orders",
            json!({"instrument": dep, "side": "buy", "price": 1, "quantity": 1}),
        );
        assert_eq!(
            (status, &resting["state"]),
            (200, &json!("open")),
            "{resting}"
        );
        let resting = resting["id"].as_u64().unwrap();
        publish(vec![did_of(&bob.1)], "1000");
        wait_for("the policy enforced", || {
            let (status, out) = post(
                &b,
                "/orders",
                json!({"instrument": dep, "side": "buy", "price": 1, "quantity": 1, "tif": "ioc"}),
            );
            status == 422
                && out["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("sanctioned"))
        });
        wait_for("bob's resting order cancelled", || {
            get(&b, &format!("/orders/{resting}")).1["state"] == "cancelled"
        });
        refused(
            &a,
            json!({"instrument": dep, "side": "sell", "price": 11, "quantity": 100}),
            "over_daily_limit",
        );
        refused(
            &a,
            json!({"instrument": dep, "side": "buy", "price": 5, "quantity": 1001}),
            "over_order_limit",
        );
        // Each refusal is in the exchange's audit log, on the policy's authority.
        let audit = get(&op, "/audit?after=0&limit=1000").1;
        assert!(audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["entry"]["authority"] == "aml-policy"
                && r["entry"]["decision"] == "refused: sanctioned"));
        // The next run trades under a policy that bars nobody.
        publish(Vec::new(), "0");

        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
    }
}
