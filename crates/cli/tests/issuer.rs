//! The issuer's service as its users meet it, on SQLite and on PostgreSQL:
//! a devnet's TSP files a request; the issuer's operators log in with their
//! DIDs and staff credentials (`tranche service login`) and approve it
//! through the API (four eyes); the service executes it once and checks it
//! on chain — across a kill -9 between the second approval and the
//! execution, and another between the execution and its check. Every
//! refusal an endpoint makes, for each kind of caller, is checked, and a
//! name a staff member leaves in their profile is found nowhere but in the
//! vault's ciphertext.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tranche_api::client::NodeClient;
use tranche_crypto::rand_core::OsRng;
use tranche_crypto::Keypair;
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_testkit::world::{
    appraisal, claim_until, issuance_request, record_ownership, register_asset, usd,
};
use tranche_types::{ChainId, ClaimTopic, Payload, WithdrawIssuance};

use support::services::{
    call, healthy, json_of, now_ms, raw, send, stop_devnet_service, tranche, wait_for,
};

mod support;

fn start(config: &Path, log: &Path) -> std::process::Child {
    support::services::start("issuer", config, log)
}

fn text(o: &std::process::Output) -> String {
    support::services::text(o)
}

#[test]
fn the_issuer_service_executes_only_what_two_operators_approved_exactly_once_across_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let base = 24_000 + (std::process::id() % 500) as u16 * 10;
    let mut cleanup = support::devnet_up(&dir, base);
    let devnet = DevnetFile::read(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The test runs the issuer's service itself, once per database: the
    // devnet's own would sign with the same key; and it signs as the TSP.
    stop_devnet_service(&rt, &devnet, "issuer", tranche_issuer::MIGRATIONS);
    stop_devnet_service(&rt, &devnet, "tsp", tranche_tsp::MIGRATIONS);
    let pw = PathBuf::from(&devnet.password_file);
    let keys = PathBuf::from(&devnet.keys);
    let open = |name: &str| {
        tranche_keystore::open_key_file(&keys.join(format!("{name}.key")), Some(&pw)).unwrap()
    };
    let (tsp, kyc, appraiser) = (
        open("devnet-tsp"),
        open("devnet-kyc"),
        open("devnet-appraiser"),
    );
    let registry = open("devnet-registry");
    let node_api = devnet.nodes[0].api.clone();
    let node = NodeClient::new(&node_api, None).unwrap();
    let chain: ChainId = devnet.chain_id.parse().unwrap();

    // Two investor wallets of one KYC'd identity.
    let investor = Keypair::generate(&mut OsRng);
    let wallets: Vec<Keypair> = (0..2).map(|_| Keypair::generate(&mut OsRng)).collect();
    let did = Ledger::did_of_key(&investor.public_key());
    rt.block_on(async {
        for w in &wallets {
            send(
                &node,
                &chain,
                &tsp,
                Payload::RegisterWallet(Ledger::sign_binding(&chain, w, &investor)),
            )
            .await;
        }
        send(
            &node,
            &chain,
            &kyc,
            claim_until(&did, ClaimTopic::KYC, None, "2099-12-31".parse().unwrap()),
        )
        .await;
    });
    let allocations = [(wallets[0].address(), 600u128), (wallets[1].address(), 400)];

    let databases = support::services::test_databases(&rt, tmp.path());
    for (run, database) in databases.iter().enumerate() {
        let data = tmp.path().join(format!("issuer-{run}"));
        let listen = format!("127.0.0.1:{}", base + 300 + run as u16);
        let api = format!("http://{listen}");
        let config = tmp.path().join(format!("issuer-{run}.toml"));
        let table = support::services::service_table(
            "devnet-issuer",
            (&keys, &pw),
            &devnet.nodes[1].api,
            &listen,
            &data,
            database,
        );
        // A long poll: the service follows and sends once at start, then
        // waits a minute, which leaves room to kill it between steps.
        std::fs::write(
            &config,
            format!("{table}poll_ms = 60000\n\n[issuer]\napprovals_required = 2\n"),
        )
        .unwrap();
        let log = tmp.path().join(format!("issuer-{run}.log"));

        // Staff: two operators and a third whose credential is revoked, by
        // the CLI; one whose credential has expired.
        let people: Vec<(String, Keypair)> = (0..4)
            .map(|i| {
                let name = format!("op{run}-{i}");
                let k = Keypair::generate(&mut OsRng);
                let file = tranche_crypto::KeyFile::seal(
                    &k,
                    b"operator-password",
                    tranche_crypto::KdfParams::DEFAULT,
                    &mut OsRng,
                )
                .unwrap();
                std::fs::write(tmp.path().join(format!("{name}.key")), file.to_json()).unwrap();
                (name, k)
            })
            .collect();
        std::fs::write(tmp.path().join("op-pw"), "operator-password").unwrap();
        let did_of = |k: &Keypair| tranche_identity::DidKey::from_public_key(&k.public_key()).did();
        for (name, k) in &people[..3] {
            let o = tranche()
                .args(["issuer", "--config"])
                .arg(&config)
                .args(["staff", "add", "--subject", &did_of(k), "--out"])
                .arg(tmp.path().join(format!("{name}.json")))
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
        }
        let list = tranche()
            .args(["issuer", "--config"])
            .arg(&config)
            .args(["staff", "list"])
            .output()
            .unwrap();
        let staff = json_of(&String::from_utf8_lossy(&list.stdout));
        let revoked_id = staff[2]["credential_id"].as_str().unwrap().to_string();
        let o = tranche()
            .args(["issuer", "--config"])
            .arg(&config)
            .args(["staff", "revoke", "--credential", &revoked_id])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        rt.block_on(async {
            let db = tranche_service::Db::open(
                &support::services::database_url(&data, database),
                tranche_issuer::MIGRATIONS,
            )
            .await
            .unwrap();
            let auth = tranche_service::auth::Auth::new(
                "devnet-issuer",
                "devnet-issuer",
                std::sync::Arc::new(open("devnet-issuer")),
                vec![],
            );
            let vc = auth
                .issue_staff(
                    &db,
                    &did_of(&people[3].1),
                    "operator",
                    now_ms() + 1_000,
                    now_ms(),
                )
                .await
                .unwrap();
            std::fs::write(
                tmp.path().join(format!("{}.json", people[3].0)),
                vc.to_string(),
            )
            .unwrap();
        });
        std::thread::sleep(Duration::from_millis(1_100));

        // The TSP files a request (and one it withdraws) before the service starts.
        let (asset, token, request) = (format!("A-{run}"), format!("T-{run}"), format!("R-{run}"));
        rt.block_on(async {
            let price = usd(1_000 * 10_000);
            send(
                &node,
                &chain,
                &registry,
                record_ownership(&asset, did.clone()),
            )
            .await;
            send(
                &node,
                &chain,
                &tsp,
                register_asset(&asset, did.clone(), price.clone()),
            )
            .await;
            send(&node, &chain, &appraiser, appraisal(&asset, price)).await;
            let withdrawn = issuance_request(
                &format!("W-{run}"),
                &asset,
                &token,
                "devnet-issuer",
                &allocations,
                1_000,
            );
            send(&node, &chain, &tsp, Payload::RequestIssuance(withdrawn)).await;
            send(
                &node,
                &chain,
                &tsp,
                Payload::WithdrawIssuance(WithdrawIssuance {
                    request: format!("W-{run}").parse().unwrap(),
                }),
            )
            .await;
            let filed = issuance_request(
                &request,
                &asset,
                &token,
                "devnet-issuer",
                &allocations,
                1_000,
            );
            send(&node, &chain, &tsp, Payload::RequestIssuance(filed)).await;
        });

        cleanup.children.push(start(&config, &log));
        wait_for("the issuer's service", || healthy(&api));

        // Logging in: the operators; the revoked and the expired are refused.
        let login = |i: usize| {
            let (name, _) = &people[i];
            tranche()
                .args(["service", "login", &api, "--password-file"])
                .arg(tmp.path().join("op-pw"))
                .arg("--key-file")
                .arg(tmp.path().join(format!("{name}.key")))
                .arg("--credential")
                .arg(tmp.path().join(format!("{name}.json")))
                .arg("--out")
                .arg(tmp.path().join(format!("{name}.session")))
                .output()
                .unwrap()
        };
        for i in 0..2 {
            let o = login(i);
            assert!(o.status.success(), "{}", text(&o));
        }
        let revoked = login(2);
        assert_eq!(revoked.status.code(), Some(3), "{}", text(&revoked));
        assert!(
            text(&revoked).contains("presentation_invalid") && text(&revoked).contains("revoked"),
            "{}",
            text(&revoked)
        );
        let expired = login(3);
        assert_eq!(expired.status.code(), Some(3));
        assert!(text(&expired).contains("expired"), "{}", text(&expired));
        let session = |i: usize| {
            tmp.path()
                .join(format!("{}.session", people[i].0))
                .display()
                .to_string()
        };
        let token_of = |i: usize| {
            json_of(&std::fs::read_to_string(session(i)).unwrap())["token"]
                .as_str()
                .unwrap()
                .to_string()
        };

        // Reading the queue: staff see it; no session, or an organisation
        // without the TSP role, or a replayed signed request, do not.
        let request_path = format!("/requests/issuance/{request}");
        let (code, out) = call(&api, &request_path, &["--session", &session(0)]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(json_of(&out)["state"], "pending");
        let (code, out) = call(
            &api,
            &format!("/requests/issuance/W-{run}"),
            &["--session", &session(0)],
        );
        assert_eq!(
            (code, json_of(&out)["state"].clone()),
            (0, json!("withdrawn"))
        );
        let (code, out) = call(&api, "/requests", &[]);
        assert_eq!(code, 3);
        assert!(out.contains("401 unauthenticated"), "{out}");
        let signed = |org: &str| {
            vec![
                "--sign-as".to_string(),
                org.to_string(),
                "--key-file".into(),
                keys.join(format!("{org}.key")).display().to_string(),
                "--password-file".into(),
                pw.display().to_string(),
                "--chain-id".into(),
                devnet.chain_id.clone(),
            ]
        };
        let exchange = signed("devnet-exchange");
        let (code, out) = call(
            &api,
            "/requests",
            &exchange.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(code, 3);
        assert!(
            out.contains("403 forbidden") && out.contains("Tsp"),
            "{out}"
        );
        let as_tsp = signed("devnet-tsp");
        let as_tsp: Vec<&str> = as_tsp.iter().map(String::as_str).collect();
        let (code, out) = call(&api, &request_path, &as_tsp);
        assert_eq!(code, 0, "{out}");
        // The TSP's GET of the request, signed at `at` (s) with `nonce`.
        let signed_get = |at: u64, nonce: &str| {
            let h = tranche_service::signed::sign(
                &tsp,
                &chain,
                "devnet-tsp",
                "GET",
                &request_path,
                b"",
                at,
                nonce,
            );
            [
                ("content-digest", h.content_digest),
                ("signature-input", h.signature_input),
                ("signature", h.signature),
            ]
        };
        let url = format!("{api}{request_path}");
        let headers = signed_get(now_ms() / 1000, "replay-me");
        assert_eq!(raw("GET", &url, &headers, "").0, 200);
        let (status, body) = raw("GET", &url, &headers, "");
        assert_eq!(
            (status, body["code"].clone()),
            (401, json!("replayed_request"))
        );
        let stale = signed_get(now_ms() / 1000 - 3_600, "old");
        let (status, body) = raw("GET", &url, &stale, "");
        assert_eq!(
            (status, body["code"].clone()),
            (401, json!("stale_request"))
        );

        // Deciding: only an operator's session, a decision with a reason.
        let decisions = format!("{api}{request_path}/decisions");
        let approve =
            json!({"decision": "approve", "reason": "allocations match the subscriptions"})
                .to_string();
        let (status, body) = raw("POST", &decisions, &[], &approve);
        assert_eq!(
            (status, body["code"].clone()),
            (401, json!("unauthenticated"))
        );
        let bearer = |i: usize| {
            vec![
                ("authorization", format!("Bearer {}", token_of(i))),
                ("content-type", "application/json".into()),
            ]
        };
        let (status, body) = raw(
            "POST",
            &decisions,
            &bearer(0),
            r#"{"decision":"approve","reason":""}"#,
        );
        assert_eq!((status, body["code"].clone()), (400, json!("bad_request")));
        let (status, body) = raw(
            "POST",
            &decisions,
            &bearer(0),
            r#"{"decision":"maybe","reason":"x"}"#,
        );
        assert_eq!((status, body["code"].clone()), (400, json!("bad_request")));
        let (status, _) = raw(
            "POST",
            &decisions,
            &bearer(0),
            r#"{"decision":"approve","reason":"x","moves":[]}"#,
        );
        assert_eq!(status, 400, "an issuance takes no moves");
        let (status, body) = raw(
            "POST",
            &format!("{api}/requests/issuance/NOPE/decisions"),
            &bearer(0),
            &approve,
        );
        assert_eq!((status, body["code"].clone()), (404, json!("not_found")));
        let (code, out) = call(
            &api,
            &format!("{request_path}/decisions"),
            &["--session", &session(0), "--body", &approve],
        );
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            (
                json_of(&out)["state"].clone(),
                json_of(&out)["approvals"].clone()
            ),
            (json!("pending"), json!(1))
        );
        let (status, body) = raw("POST", &decisions, &bearer(0), &approve);
        assert_eq!(
            (status, body["code"].clone()),
            (409, json!("conflict")),
            "the same operator twice"
        );
        let (status, body) = raw(
            "POST",
            &format!("{api}/requests/issuance/W-{run}/decisions"),
            &bearer(1),
            &approve,
        );
        assert_eq!(
            (status, body["code"].clone()),
            (409, json!("conflict")),
            "a withdrawn request"
        );

        // A staff member's name, in their profile: only in the vault.
        let seeded = format!("Seo Yeon-woo Seeded{run}");
        let (status, _) = raw(
            "PUT",
            &format!("{api}/me/profile"),
            &bearer(1),
            &json!({"name": seeded, "email": "syw@example.com"}).to_string(),
        );
        assert_eq!(status, 204);

        // The second approval records the execution; the service is killed
        // before it sends it (its next send is a minute away).
        let (code, out) = call(
            &api,
            &format!("{request_path}/decisions"),
            &[
                "--session",
                &session(1),
                "--body",
                &json!({"decision": "approve", "reason": "appraisal within tolerance"}).to_string(),
            ],
        );
        assert_eq!(code, 0, "{out}");
        assert_eq!(json_of(&out)["state"], "executing");
        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
        let issued = || {
            rt.block_on(node.issuance(&request))
                .unwrap()
                .and_then(|v| v.data.check)
                .is_some_and(|c| c.executed)
        };
        assert!(!issued(), "nothing was sent before the kill");

        // Restarted, it sends the execution at once; killed again once the
        // chain has it, before it follows the block that carries it.
        cleanup.children.push(start(&config, &log));
        wait_for("the execution on chain", issued);
        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();

        // Restarted, it follows the block and records the check.
        cleanup.children.push(start(&config, &log));
        wait_for("the issuer's service", || healthy(&api));
        let o = login(0);
        assert!(o.status.success(), "{}", text(&o));
        wait_for("the check", || {
            let (code, out) = call(&api, &request_path, &["--session", &session(0)]);
            code == 0 && json_of(&out)["state"] == "checked"
        });
        let (_, out) = call(&api, &request_path, &["--session", &session(0)]);
        let view = json_of(&out);
        assert!(
            view["checked"]
                .as_str()
                .unwrap()
                .starts_with("issued 1000 of 1000"),
            "{view}"
        );
        assert_eq!(view["outcome"], "applied");
        let check = rt
            .block_on(node.issuance(&request))
            .unwrap()
            .unwrap()
            .data
            .check
            .unwrap();
        assert_eq!(check.issued.map(|u| u.0), Some(1_000));

        // Token administration: an operator proposes an agent action on the
        // issued token, two approve it, the service sends it and checks it.
        let administration = format!("{api}/administration");
        let document = json!({"type": "set_document", "token": token, "name": "prospectus",
            "uri": format!("https://devnet-tsp.example/{token}.pdf"), "digest": "ab".repeat(32)});
        let proposal = |id: &str, payload: &serde_json::Value| {
            json!({"id": id, "payload": payload, "reason": "the prospectus is published"})
                .to_string()
        };
        let doc_id = format!("DOC-{run}");
        let (status, body) = raw("POST", &administration, &[], &proposal(&doc_id, &document));
        assert_eq!(
            (status, body["code"].clone()),
            (401, json!("unauthenticated"))
        );
        let transfer = json!({"type": "transfer", "token": token, "to": wallets[1].address().to_string(), "amount": "1"});
        let (status, body) = raw(
            "POST",
            &administration,
            &bearer(0),
            &proposal(&doc_id, &transfer),
        );
        assert_eq!(
            (status, body["code"].clone()),
            (400, json!("bad_request")),
            "{body}"
        );
        let mut elsewhere = document.clone();
        elsewhere["token"] = json!("NOT-ON-CHAIN");
        let (status, _) = raw(
            "POST",
            &administration,
            &bearer(0),
            &proposal(&doc_id, &elsewhere),
        );
        assert_eq!(status, 422, "a token that does not exist");
        let (status, body) = raw(
            "POST",
            &administration,
            &bearer(0),
            &proposal(&doc_id, &document),
        );
        assert_eq!(
            (status, body["state"].clone()),
            (200, json!("pending")),
            "{body}"
        );
        let (status, body) = raw(
            "POST",
            &administration,
            &bearer(1),
            &proposal(&doc_id, &document),
        );
        assert_eq!(
            (status, body["state"].clone()),
            (200, json!("pending")),
            "the same again"
        );
        let mut other = document.clone();
        other["name"] = json!("terms");
        let (status, _) = raw(
            "POST",
            &administration,
            &bearer(0),
            &proposal(&doc_id, &other),
        );
        assert_eq!(status, 409, "the same id for another payload");
        let doc_path = format!("{api}/requests/administration/{doc_id}");
        for i in 0..2 {
            let (status, body) = raw(
                "POST",
                &format!("{doc_path}/decisions"),
                &bearer(i),
                &approve,
            );
            assert_eq!(status, 200, "{body}");
        }
        // Killed before it sends (its next send is a minute away): the
        // restart sends it, once.
        let mut service = cleanup.children.pop().unwrap();
        service.kill().unwrap();
        service.wait().unwrap();
        cleanup.children.push(start(&config, &log));
        wait_for("the issuer's service", || healthy(&api));
        wait_for("the document's check", || {
            raw("GET", &doc_path, &bearer(0), "").1["state"] == "checked"
        });
        let docs = rt
            .block_on(node.token_documents(&token))
            .unwrap()
            .unwrap()
            .data;
        assert_eq!(docs.documents.len(), 1);
        assert_eq!(
            docs.documents[0].uri.as_str(),
            format!("https://devnet-tsp.example/{token}.pdf")
        );

        // Exactly one execution was ever signed.
        let db = rt
            .block_on(tranche_service::Db::open(
                &support::services::database_url(&data, database),
                tranche_issuer::MIGRATIONS,
            ))
            .unwrap();
        let (executions,): (i64,) = rt
            .block_on(
                sqlx::query_as("SELECT COUNT(*) FROM kit_outbox WHERE kind = 'execute_issuance'")
                    .fetch_one(db.pool()),
            )
            .unwrap();
        assert_eq!(executions, 1);

        // The seeded name: not in the log, not in the database outside the
        // vault's ciphertext.
        let logged = std::fs::read(&log).unwrap();
        assert!(
            !logged.windows(seeded.len()).any(|w| w == seeded.as_bytes()),
            "the name is in the log"
        );
        let stored = support::services::stored_bytes(
            &rt,
            &data,
            database,
            &db,
            &[
                "SELECT detail || COALESCE(checked, '') FROM issuer_requests",
                "SELECT staff || reason FROM issuer_decisions",
            ],
        );
        assert!(stored.len() > 1_000);
        for needle in [seeded.as_bytes(), b"syw@example.com".as_slice()] {
            assert!(
                !stored.windows(needle.len()).any(|w| w == needle),
                "PII stored in clear ({})",
                String::from_utf8_lossy(needle)
            );
        }

        // The metrics and the OpenAPI document describe the service.
        let metrics = reqwest::blocking::get(format!("{api}/metrics"))
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains("tranche_service_http_requests_total")
                && metrics.contains("queue_depth"),
            "{metrics}"
        );
        support::services::documents(
            &api,
            &[
                "/requests/{kind}/{request}/decisions",
                "/auth/session",
                "/audit/export",
                "/healthz",
            ],
        );
        let mut service = cleanup.children.pop().unwrap();
        let _ = service.kill();
        let _ = service.wait();
    }
}
