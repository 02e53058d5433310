//! The TSP's service as its users meet it, on SQLite and on PostgreSQL,
//! beside the devnet's escrow bank and issuer services: an owner holding an
//! ownership credential the registry recorded on chain registers an asset
//! (ST-6: no other credential, no other owner); an offering 30 % above the
//! appraisal is refused (SR-6), one within it opens — across kill -9s —
//! once the appraisal is corrected; an investor with KYC and jurisdiction
//! credentials has a wallet bound, deposits at the bank and subscribes; the
//! bank closes, the issuer's two operators approve, the TSP verifies the
//! issuance in its audit log (SR-1) and the owner is paid. Every endpoint
//! refuses the wrong caller; the asset's description and a person's name
//! are found nowhere but in the vault's ciphertext.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tranche_api::client::NodeClient;
use tranche_crypto::Keypair;
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_testkit::world::{claim_until, date, default_rules};
use tranche_types::{ChainId, ClaimTopic, Hash, Money, Payload, RecordAppraisal, RecordOwnership};

mod support;

use support::services::{
    bearer, call, contains, database_url, did_of, documents, healthy, issue_vc, json_of, login_all,
    login_as, login_devnet_staff, person, person_signs, person_submits, raw, send, service_table,
    start, stop_devnet_service, stored_bytes, text, tranche, wait_for, ServiceRun,
};

fn usd(minor: u128) -> Money {
    tranche_testkit::world::usd(minor)
}

#[test]
fn st6_sr6_sr1_the_tsp_registers_for_attested_owners_opens_within_policy_and_verifies_issuance() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let dir = t.join("devnet");
    let base = 26_000 + (std::process::id() % 400) as u16 * 10;
    let _cleanup = support::devnet_up(&dir, base);
    let mut cleanup = support::Running {
        dir: PathBuf::new(),
        children: Vec::new(),
    };
    let devnet = DevnetFile::read(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The test runs the TSP's service itself, once per database.
    stop_devnet_service(&rt, &devnet, "tsp", tranche_tsp::MIGRATIONS);
    let pw = PathBuf::from(&devnet.password_file);
    let keys = PathBuf::from(&devnet.keys);
    let open = |name: &str| {
        tranche_keystore::open_key_file(&keys.join(format!("{name}.key")), Some(&pw)).unwrap()
    };
    let [kyc, appraiser, registry] =
        ["devnet-kyc", "devnet-appraiser", "devnet-registry"].map(open);
    let node = NodeClient::new(&devnet.nodes[0].api, None).unwrap();
    let chain: ChainId = devnet.chain_id.parse().unwrap();
    let issuer = login_devnet_staff(t, &devnet, "issuer");
    let bank = login_devnet_staff(t, &devnet, "bank");
    let session_of = |name: &str| t.join(format!("{name}.session")).display().to_string();

    let databases = support::services::test_databases(&rt, t);
    for (run, database) in databases.iter().enumerate() {
        let ServiceRun {
            data,
            listen,
            api,
            config,
            log,
        } = ServiceRun::new(t, "tsp", base, run);
        let table = service_table(
            "devnet-tsp",
            (&keys, &pw),
            &devnet.nodes[0].api,
            &listen,
            &data,
            database,
        );
        std::fs::write(
            &config,
            format!(
                "{table}anchor_interval_secs = 3600\ntrusted_issuers = [\"{}\", \"{}\"]\n",
                did_of(&registry),
                did_of(&kyc)
            ),
        )
        .unwrap();
        let op = format!("tsp-op{run}");
        support::services::operator(t, "tsp", &config, &op);
        cleanup.children.push(start("tsp", &config, &log));
        wait_for("the TSP's service", || healthy(&api));
        let o = login_all(t, &api, &op, &[&t.join(format!("{op}.json"))]);
        assert!(o.status.success(), "{}", text(&o));

        // People: an owner and an investor, each KYC'd with a country, on
        // chain and by credential; the owner also holds the registry's
        // ownership credential, whose digest the registry records.
        let asset = format!("A-T{run}");
        let people: Vec<(String, Keypair)> = ["owner", "investor"]
            .iter()
            .map(|n| {
                let name = format!("{n}{run}");
                let k = person(t, &name);
                let did = did_of(&k);
                let vc = |kind: &str| t.join(format!("{name}.{kind}.json"));
                issue_vc(
                    &keys,
                    &pw,
                    "devnet-kyc",
                    &did,
                    &["kyc", "--level", "high"],
                    &vc("kyc"),
                );
                issue_vc(
                    &keys,
                    &pw,
                    "devnet-kyc",
                    &did,
                    &["jurisdiction", "--country", "KR"],
                    &vc("country"),
                );
                (name, k)
            })
            .collect();
        let (owner, investor) = (&people[0], &people[1]);
        let vc_of = |name: &str, kind: &str| t.join(format!("{name}.{kind}.json"));
        let owns = vc_of(&owner.0, "owns");
        issue_vc(
            &keys,
            &pw,
            "devnet-registry",
            &did_of(&owner.1),
            &["asset-ownership", "--asset", &asset],
            &owns,
        );
        // A second ownership credential, which the registry never records.
        let unrecorded = vc_of(&owner.0, "unrecorded");
        issue_vc(
            &keys,
            &pw,
            "devnet-registry",
            &did_of(&owner.1),
            &[
                "asset-ownership",
                "--asset",
                &asset,
                "--id",
                "urn:tranche:test:unrecorded",
            ],
            &unrecorded,
        );
        let digest = tranche()
            .args(["vc", "digest"])
            .arg(&owns)
            .output()
            .unwrap();
        let digest: Hash = String::from_utf8(digest.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        rt.block_on(async {
            let owner_did = Ledger::did_of_key(&owner.1.public_key());
            let p = Payload::RecordOwnership(RecordOwnership {
                asset: asset.parse().unwrap(),
                owner: owner_did,
                credential: digest,
            });
            send(&node, &chain, &registry, p).await;
            for (_, k) in &people {
                let did = Ledger::did_of_key(&k.public_key());
                send(
                    &node,
                    &chain,
                    &kyc,
                    claim_until(&did, ClaimTopic::KYC, None, date("2099-12-31")),
                )
                .await;
            }
        });
        for (name, _) in &people {
            let mut creds = vec![vc_of(name, "kyc"), vc_of(name, "country")];
            if *name == owner.0 {
                creds.push(owns.clone());
            }
            let creds: Vec<&Path> = creds.iter().map(PathBuf::as_path).collect();
            let o = login_all(t, &api, name, &creds);
            assert!(o.status.success(), "{}", text(&o));
        }

        // Registering: only the attested owner, with the recorded credential.
        let assets = format!("{api}/assets");
        let seeded = format!("{run}9 Teheran-ro Gangnam, deed Seeded{run}");
        let register = |credential: &Path, id: &str| {
            let vc: Value =
                serde_json::from_str(&std::fs::read_to_string(credential).unwrap()).unwrap();
            json!({"asset": id, "kind": "tangible", "price": usd(10_000_000),
                   "description": seeded, "credential": vc})
            .to_string()
        };
        let json_only = [("content-type", "application/json".to_string())];
        assert_eq!(
            raw("POST", &assets, &json_only, &register(&owns, &asset)).0,
            401
        );
        let (status, out) = raw(
            "POST",
            &assets,
            &bearer(t, &investor.0),
            &register(&owns, &asset),
        );
        assert_eq!(
            (status, out["code"].clone()),
            (403, json!("forbidden")),
            "{out}"
        );
        let (status, out) = raw(
            "POST",
            &assets,
            &bearer(t, &owner.0),
            &register(&unrecorded, &asset),
        );
        assert_eq!(status, 403, "{out}");
        assert!(out["message"].as_str().unwrap().contains("ST-6"), "{out}");
        let (status, out) = raw(
            "POST",
            &assets,
            &bearer(t, &owner.0),
            &register(&owns, "A-OTHER"),
        );
        assert_eq!(status, 403, "another asset than the credential's: {out}");
        for _ in 0..2 {
            let (status, out) = raw(
                "POST",
                &assets,
                &bearer(t, &owner.0),
                &register(&owns, &asset),
            );
            assert_eq!(status, 200, "{out}");
        }
        let asset_view = |who: &str| -> Value {
            let (status, out) = raw("GET", &format!("{assets}/{asset}"), &bearer(t, who), "");
            assert_eq!(status, 200, "{out}");
            out
        };
        wait_for("the registration", || {
            asset_view(&owner.0)["state"] == "registered"
        });
        assert_eq!(
            raw(
                "GET",
                &format!("{assets}/{asset}"),
                &bearer(t, &investor.0),
                ""
            )
            .0,
            404
        );

        // Appraised 30 % below the asking price: no offering (SR-6).
        let appraise = |minor: u128| {
            let p = Payload::RecordAppraisal(RecordAppraisal {
                asset: asset.parse().unwrap(),
                value: usd(minor),
            });
            rt.block_on(send(&node, &chain, &appraiser, p));
        };
        appraise(7_692_308);
        wait_for("the appraisal", || {
            asset_view(&op)["within_policy"] == false
        });
        let offering = format!("OT{run}");
        let token = format!("ST{run}");
        let offer = json!({
            "offering": offering, "asset": asset, "token": token, "unit_price": usd(10_000),
            "amount": "1000", "min_units": "1", "max_units": "1000", "soft_cap": "100",
            "window_secs": 15, "issuer": "devnet-issuer", "bank": "devnet-bank",
            "cash_token": "USD-DEP", "issue_date": "2026-01-01", "expiry_date": "2036-12-31",
            "rules": default_rules(), "lockup_until": "2030-06-30",
        })
        .to_string();
        let offerings = format!("{api}/offerings");
        let (status, out) = raw("POST", &offerings, &bearer(t, &op), &offer);
        assert_eq!(
            (status, out["code"].clone()),
            (409, json!("conflict")),
            "{out}"
        );
        assert!(
            out["message"].as_str().unwrap().contains("bps apart"),
            "{out}"
        );
        appraise(10_000_000);
        wait_for("the new appraisal", || {
            asset_view(&op)["within_policy"] == true
        });

        // Wallets: bound for the DID that logged in, after its presentation.
        // The binding a person signs offline with `tranche did bind-wallet`.
        let bind_with = |key_file: &Path, password_file: &Path, out: &Path| {
            let o = tranche()
                .args([
                    "did",
                    "bind-wallet",
                    "--chain-id",
                    &devnet.chain_id,
                    "--key-file",
                ])
                .arg(key_file)
                .arg("--password-file")
                .arg(password_file)
                .arg("--out")
                .arg(out)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
            std::fs::read_to_string(out).unwrap()
        };
        let binding = |name: &str| {
            bind_with(
                &t.join(format!("{name}.key")),
                &t.join("person-pw"),
                &t.join(format!("{name}.bind.json")),
            )
        };
        let wallets = format!("{api}/wallets");
        let (status, _) = raw(
            "POST",
            &wallets,
            &bearer(t, &investor.0),
            &binding(&owner.0),
        );
        assert_eq!(status, 403, "another DID's binding");
        let (status, _) = raw("POST", &wallets, &bearer(t, &op), &binding(&op));
        assert_eq!(status, 403, "no KYC credential");
        for (name, _) in &people {
            let (status, out) = raw("POST", &wallets, &bearer(t, name), &binding(name));
            assert_eq!(status, 200, "{out}");
        }
        wait_for("the bindings", || {
            people.iter().all(|(_, k)| {
                rt.block_on(node.wallet(&k.address()))
                    .unwrap()
                    .data
                    .did
                    .is_some()
            })
        });

        // Money at the bank: both open accounts, the investor's deposit.
        let bank_account = |session: &str, k: &Keypair| {
            let body = json!({"wallet": k.address().to_string()}).to_string();
            let url = format!("{}/accounts", bank.api);
            let (status, out) = raw("POST", &url, &bearer(t, session), &body);
            assert_eq!(status, 200, "{out}");
        };
        let bank_deposit = |did: &str, amount: &str, reference: String| {
            let body = json!({"did": did, "amount": amount, "reference": reference}).to_string();
            let operator = session_of(&bank.staff[0].name);
            let (code, out) = call(
                &bank.api,
                "/deposits",
                &["--session", &operator, "--body", &body],
            );
            assert_eq!(code, 0, "{out}");
        };
        for (name, k) in &people {
            let at_bank = format!("{name}-bank");
            let o = login_as(t, &bank.api, name, &at_bank, &[&vc_of(name, "kyc")]);
            assert!(o.status.success(), "{}", text(&o));
            bank_account(&at_bank, k);
        }
        bank_deposit(&did_of(&investor.1), "1000000", format!("T-IN-{run}"));

        // Opening: an operator's; killed again and again meanwhile, sent once.
        assert_eq!(raw("POST", &offerings, &bearer(t, &owner.0), &offer).0, 403);
        let (status, out) = raw("POST", &offerings, &bearer(t, &op), &offer);
        assert_eq!(status, 200, "{out}");
        for i in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(150 + 100 * i));
            let mut service = cleanup.children.pop().unwrap();
            service.kill().unwrap();
            service.wait().unwrap();
            cleanup.children.push(start("tsp", &config, &log));
        }
        wait_for("the TSP's service", || healthy(&api));
        let status_of = |who: &str| -> Value {
            let (status, out) = raw(
                "GET",
                &format!("{offerings}/{offering}"),
                &bearer(t, who),
                "",
            );
            assert_eq!(status, 200, "{out}");
            out
        };
        wait_for("the offering open", || {
            status_of(&investor.0)["state"] == "open"
        });
        assert_eq!(
            raw("POST", &offerings, &bearer(t, &op), &offer).0,
            200,
            "the same again"
        );

        // The investor subscribes from the bound wallet once the money is in.
        wait_for("the deposit", || {
            let w = rt
                .block_on(node.wallet(&investor.1.address()))
                .unwrap()
                .data;
            w.balances
                .iter()
                .any(|b| b.token.as_str() == "USD-DEP" && b.units.0 >= 1_000_000)
        });
        // Signed with the investor's own key, offline (REC-5): their first
        // transaction, handed to the TSP, which relays it to its node.
        let node_api = &devnet.nodes[0].api;
        let subscriptions = format!("{api}/subscriptions");
        let signed_for = |payload: Value| {
            let file = person_signs(t, &investor.0, &investor.1, &devnet.chain_id, 1, &payload);
            std::fs::read_to_string(file).unwrap()
        };
        let elsewhere =
            signed_for(json!({"type": "subscribe", "offering": "NO-SUCH", "units": "100"}));
        let (status, out) = raw("POST", &subscriptions, &bearer(t, &investor.0), &elsewhere);
        assert_eq!(
            (status, out["code"].clone()),
            (404, json!("not_found")),
            "{out}"
        );
        let not_one = signed_for(json!({"type": "claim_distribution", "distribution": "D-NONE"}));
        let (status, out) = raw("POST", &subscriptions, &bearer(t, &investor.0), &not_one);
        assert_eq!(
            (status, out["code"].clone()),
            (400, json!("bad_request")),
            "{out}"
        );
        let signed = signed_for(json!({"type": "subscribe", "offering": offering, "units": "100"}));
        assert_eq!(raw("POST", &subscriptions, &json_only, &signed).0, 401);
        let (status, out) = raw("POST", &subscriptions, &bearer(t, &owner.0), &signed);
        assert_eq!(
            (status, out["code"].clone()),
            (403, json!("forbidden")),
            "another DID's wallet: {out}"
        );
        let mut altered: Value = serde_json::from_str(&signed).unwrap();
        altered["tx"]["nonce"] = json!(7);
        let (status, out) = raw(
            "POST",
            &subscriptions,
            &bearer(t, &investor.0),
            &altered.to_string(),
        );
        assert_eq!(status, 400, "a signature over other bytes: {out}");
        // Recorded by the relay, and the service killed before it sent it:
        // the next start sends it.
        let stx: tranche_types::SignedTransaction = serde_json::from_str(&signed).unwrap();
        let tx_id = stx.hash().to_hex();
        // And one that expired meanwhile: refused for good, not sent forever.
        let expired = tranche_crypto::sign_transaction(
            &investor.1,
            tranche_types::Transaction {
                valid_until: tranche_types::Timestamp(1),
                nonce: 2,
                ..stx.tx.clone()
            },
        )
        .unwrap();
        let expired_id = expired.hash().to_hex();
        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
        rt.block_on(async {
            let db = tranche_service::Db::open(
                &database_url(&data, database),
                tranche_tsp::MIGRATIONS,
            )
            .await
            .unwrap();
            for (id, signed) in [(&tx_id, &stx), (&expired_id, &expired)] {
                sqlx::query(
                    "INSERT INTO tsp_subscriptions (tx, offering, did, wallet, units, signed, state, received_ms)
                     VALUES ($1, $2, $3, $4, '100', $5, 'sent', 0)",
                )
                .bind(id.clone())
                .bind(offering.clone())
                .bind(did_of(&investor.1))
                .bind(investor.1.address().to_string())
                .bind(hex::encode(signed.to_bytes()))
                .execute(db.pool())
                .await
                .unwrap();
            }
        });
        cleanup.children.push(start("tsp", &config, &log));
        wait_for("the TSP's service", || healthy(&api));
        let relayed_url = format!("{subscriptions}/{tx_id}");
        wait_for("the subscription", || {
            let (status, out) = raw("GET", &relayed_url, &bearer(t, &investor.0), "");
            assert_eq!(status, 200, "{out}");
            out["state"] == "applied"
        });
        let (status, out) = raw(
            "GET",
            &format!("{subscriptions}/{expired_id}"),
            &bearer(t, &investor.0),
            "",
        );
        assert_eq!(
            (status, out["state"].clone()),
            (200, json!("refused")),
            "{out}"
        );
        // Handed in again (a retry): the same subscription, taken once.
        for _ in 0..2 {
            let (status, out) = raw("POST", &subscriptions, &bearer(t, &investor.0), &signed);
            assert_eq!(status, 202, "{out}");
            assert_eq!(out["tx"], json!(tx_id), "{out}");
        }
        assert_eq!(raw("GET", &relayed_url, &bearer(t, &owner.0), "").0, 404);
        assert_eq!(raw("GET", &relayed_url, &bearer(t, &op), "").0, 200);
        let v = rt.block_on(node.offering(&offering)).unwrap().unwrap().data;
        assert_eq!((v.subscribed.0, v.subscriptions), (100, 1), "taken once");
        // The node lists an offering's subscriptions a page at a time.
        let page = |query: &str| {
            raw(
                "GET",
                &format!("{node_api}/offerings/{offering}{query}"),
                &[],
                "",
            )
            .1
        };
        let first = page("?after=0&limit=1");
        assert_eq!(
            first["data"]["entries"][0]["units"],
            json!("100"),
            "{first}"
        );
        assert_eq!(first["data"]["entries_from"], json!(0));
        let past = page("?after=1");
        assert_eq!(
            (
                past["data"]["entries"].clone(),
                past["data"]["subscriptions"].clone()
            ),
            (json!([]), json!(1)),
            "{past}"
        );
        assert_eq!(page("?limit=0")["data"]["entries"], json!([]));

        // The bank closes; the issuer's operators approve; the TSP verifies.
        let queued = format!("/requests/offering/{offering}");
        wait_for("the issuer's queue", || {
            let (code, out) = call(
                &issuer.api,
                &queued,
                &["--session", &session_of(&issuer.staff[0].name)],
            );
            code == 0 && json_of(&out)["state"] == "pending"
        });
        for op in &issuer.staff {
            let body =
                json!({"decision": "approve", "reason": "allocations as closed"}).to_string();
            let (code, out) = call(
                &issuer.api,
                &format!("{queued}/decisions"),
                &["--session", &session_of(&op.name), "--body", &body],
            );
            assert_eq!(code, 0, "{out}");
        }
        wait_for("the release", || {
            status_of(&investor.0)["state"] == "released"
        });
        let done = status_of(&investor.0);
        assert_eq!(
            done["verified"],
            json!("issued 100 of 100 allocated to 1 subscriptions"),
            "{done}"
        );
        // The offering's lock-up holds every unit it issued (F5-6 terms).
        let held = rt
            .block_on(node.wallet(&investor.1.address()))
            .unwrap()
            .data;
        let locked = held
            .balances
            .iter()
            .find(|b| b.token.as_str() == token)
            .and_then(|b| b.locked.clone())
            .expect("the issued units are locked up");
        assert_eq!(
            (locked.units.0, locked.until.to_string()),
            (100, "2030-06-30".to_string())
        );
        let owner_cash = rt.block_on(node.wallet(&owner.1.address())).unwrap().data;
        assert!(
            owner_cash
                .balances
                .iter()
                .any(|b| b.token.as_str() == "USD-DEP" && b.units.0 == 1_000_000),
            "{owner_cash:?}"
        );

        // The TSP's own wallet, bound to its DID and funded at the bank.
        let tsp_key = open("devnet-tsp");
        let tsp_did = did_of(&tsp_key);
        let tsp_vc = |kind: &str| t.join(format!("tsp{run}.{kind}.json"));
        issue_vc(
            &keys,
            &pw,
            "devnet-kyc",
            &tsp_did,
            &["kyc", "--level", "high"],
            &tsp_vc("kyc"),
        );
        issue_vc(
            &keys,
            &pw,
            "devnet-kyc",
            &tsp_did,
            &["jurisdiction", "--country", "KR"],
            &tsp_vc("country"),
        );
        let tsp_login = |service: &str, session: &str, vcs: &[PathBuf]| {
            let mut c = tranche();
            c.args(["service", "login", service, "--password-file"])
                .arg(&pw)
                .arg("--key-file")
                .arg(keys.join("devnet-tsp.key"));
            for vc in vcs {
                c.arg("--credential").arg(vc);
            }
            let o = c
                .arg("--out")
                .arg(t.join(format!("{session}.session")))
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
        };
        let (self_tsp, self_bank) = (format!("tsp-self{run}"), format!("tsp-bank{run}"));
        tsp_login(&api, &self_tsp, &[tsp_vc("kyc"), tsp_vc("country")]);
        let bind = bind_with(
            &keys.join("devnet-tsp.key"),
            &pw,
            &t.join(format!("tsp{run}.bind.json")),
        );
        let (status, out) = raw("POST", &wallets, &bearer(t, &self_tsp), &bind);
        assert_eq!(status, 200, "{out}");
        wait_for("the TSP's own binding", || {
            rt.block_on(node.wallet(&tsp_key.address()))
                .unwrap()
                .data
                .did
                .is_some()
        });
        tsp_login(&bank.api, &self_bank, &[tsp_vc("kyc")]);
        bank_account(&self_bank, &tsp_key);

        let cash_of = |k: &Keypair| -> u128 {
            let w = rt.block_on(node.wallet(&k.address())).unwrap().data;
            w.balances
                .iter()
                .find(|b| b.token.as_str() == "USD-DEP")
                .map_or(0, |b| b.units.0)
        };
        // What an earlier run's reclaim left in the TSP's wallet stays there.
        let start = cash_of(&tsp_key);
        bank_deposit(&tsp_did, "1600000", format!("T-TSP-{run}"));
        wait_for("the TSP's deposit", || {
            cash_of(&tsp_key) == start + 1_600_000
        });

        // A profit of 5,000 distributed over a checkpoint and claimed (F5-9).
        let distribution = format!("D-T{run}");
        let distribute =
            json!({"distribution": distribution, "token": token, "total": usd(500_000),
                                "cash_token": "USD-DEP", "claim_secs": 3600})
            .to_string();
        let distributions = format!("{api}/distributions");
        assert_eq!(
            raw("POST", &distributions, &bearer(t, &investor.0), &distribute).0,
            403
        );
        let (status, out) = raw("POST", &distributions, &bearer(t, &op), &distribute);
        assert_eq!(status, 200, "{out}");
        let action = |kind: &str, id: &str| -> Value {
            let (status, out) = raw(
                "GET",
                &format!("{api}/actions/{kind}/{id}"),
                &bearer(t, &investor.0),
                "",
            );
            assert_eq!(status, 200, "{out}");
            out
        };
        wait_for("the funding", || {
            action("distribution", &distribution)["state"] == "funded"
        });
        let before = cash_of(&investor.1);
        let claim = json!({"type": "claim_distribution", "distribution": distribution});
        person_submits(
            t,
            &investor.0,
            &investor.1,
            &devnet.chain_id,
            2,
            &claim,
            node_api,
        );
        wait_for("the claim", || cash_of(&investor.1) > before);
        assert_eq!(
            cash_of(&investor.1) - before,
            500_000,
            "the whole profit: the only holder"
        );

        // A second distribution nobody claims: reclaimed only after its
        // deadline.
        let unclaimed = format!("D2-T{run}");
        let second = json!({"distribution": unclaimed, "token": token, "total": usd(100_000),
                            "cash_token": "USD-DEP", "claim_secs": 6})
        .to_string();
        let posted = support::services::now_ms();
        let (status, out) = raw("POST", &distributions, &bearer(t, &op), &second);
        assert_eq!(status, 200, "{out}");
        let reclaim = format!("{distributions}/{unclaimed}/reclaim");
        let (status, out) = raw("POST", &reclaim, &bearer(t, &op), "");
        assert_eq!(
            (status, out["code"].clone()),
            (409, json!("conflict")),
            "{out}"
        );
        wait_for("the second funding", || {
            action("distribution", &unclaimed)["state"] == "funded"
        });
        if support::services::now_ms() < posted + 5_000 {
            // Funded, and holders may still claim.
            let (status, out) = raw("POST", &reclaim, &bearer(t, &op), "");
            assert_eq!(status, 409, "{out}");
            assert!(
                out["message"].as_str().unwrap().contains("reclaim after"),
                "{out}"
            );
        }
        let funded = cash_of(&tsp_key);
        let wait = (posted + 7_500).saturating_sub(support::services::now_ms());
        std::thread::sleep(std::time::Duration::from_millis(wait));
        assert_eq!(raw("POST", &reclaim, &bearer(t, &investor.0), "").0, 403);
        let (status, out) = raw("POST", &reclaim, &bearer(t, &op), "");
        assert_eq!(status, 200, "{out}");
        wait_for("the reclaim", || {
            action("distribution", &unclaimed)["state"] == "reclaimed"
        });
        assert_eq!(
            cash_of(&tsp_key) - funded,
            100_000,
            "the unclaimed came back"
        );

        // The asset is sold: the tokens redeemed at 100 each and revoked
        // (F5-10), the issuer's operators approving, the TSP verifying.
        let request = format!("V-T{run}");
        let redeem = json!({"request": request, "token": token, "amount": "100",
                            "unit_price": usd(10_000), "cash_token": "USD-DEP"})
        .to_string();
        let (status, out) = raw(
            "POST",
            &format!("{api}/redemptions"),
            &bearer(t, &op),
            &redeem,
        );
        assert_eq!(status, 200, "{out}");
        let revocation = format!("/requests/revocation/{request}");
        wait_for("the issuer's revocation queue", || {
            let (code, out) = call(
                &issuer.api,
                &revocation,
                &["--session", &session_of(&issuer.staff[0].name)],
            );
            code == 0 && json_of(&out)["state"] == "pending"
        });
        let moves = json!([{"wallet": investor.1.address().to_string(), "amount": "100"}]);
        for (i, op) in issuer.staff.iter().enumerate() {
            let mut body = json!({"decision": "approve", "reason": "the asset was sold"});
            if i == 0 {
                body["moves"] = moves.clone();
            }
            let (code, out) = call(
                &issuer.api,
                &format!("{revocation}/decisions"),
                &[
                    "--session",
                    &session_of(&op.name),
                    "--body",
                    &body.to_string(),
                ],
            );
            assert_eq!(code, 0, "{out}");
        }
        let before = cash_of(&investor.1);
        wait_for("the TSP's verification", || {
            action("redemption", &request)["state"] == "verified"
        });
        assert_eq!(
            action("redemption", &request)["verified"],
            "revoked 100 of 100 requested"
        );
        assert_eq!(
            cash_of(&investor.1) - before,
            1_000_000,
            "the sale proceeds"
        );

        let (code, out) = call(&api, "/audit/export", &["--session", &session_of(&op)]);
        assert_eq!(code, 0, "{out}");
        for line in [
            "matches: issued 100",
            "matches: revoked 100",
            "check_appraisal",
        ] {
            assert!(out.contains(line), "{line}: {out}");
        }

        // Every transaction signed once, and applied.
        let db = rt
            .block_on(tranche_service::Db::open(
                &database_url(&data, database),
                tranche_tsp::MIGRATIONS,
            ))
            .unwrap();
        let sent = support::services::outbox_kinds(&rt, &db);
        let count = |k: &str| sent.iter().filter(|kind| *kind == k).count();
        assert_eq!(
            [
                count("register_asset"),
                count("register_wallet"),
                count("open_offering"),
                count("create_checkpoint"),
                count("declare_distribution"),
                count("fund_distribution"),
                count("request_revocation"),
                count("reclaim_distribution"),
            ],
            // The TSP's own wallet is bound once, on the first database.
            [1, if run == 0 { 3 } else { 2 }, 1, 2, 2, 2, 1, 1],
            "{sent:?}"
        );

        // The description: only in the vault.
        let logged = std::fs::read(&log).unwrap();
        let stored = stored_bytes(
            &rt,
            &data,
            database,
            &db,
            &[
                "SELECT terms || note FROM tsp_offerings",
                "SELECT owner || note FROM tsp_assets",
            ],
        );
        assert!(stored.len() > 1_000);
        assert!(!contains(&logged, seeded.as_bytes()), "PII in the log");
        assert!(!contains(&stored, seeded.as_bytes()), "PII stored in clear");
        // Nor in any node's chain data: on chain, only its digest.
        let mut chain = Vec::new();
        for n in &devnet.nodes {
            chain.extend(support::services::bytes_below(
                &Path::new(&n.config).parent().unwrap().join("data"),
            ));
        }
        assert!(chain.len() > 10_000, "the chain data is read");
        assert!(!contains(&chain, seeded.as_bytes()), "PII on chain");
        documents(
            &api,
            &[
                "/distributions",
                "/distributions/{distribution}/reclaim",
                "/redemptions",
                "/actions/{kind}/{id}",
                "/assets",
                "/assets/{asset}",
                "/wallets",
                "/offerings",
                "/offerings/{offering}",
                "/subscriptions",
                "/subscriptions/{tx}",
            ],
        );
        let mut service = cleanup.children.pop().unwrap();
        let _ = service.kill();
        let _ = service.wait();
    }
}
