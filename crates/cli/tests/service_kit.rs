//! The service kit against a real devnet: an organisation's service follows
//! the chain, sends what it signs through its outbox, anchors its audit log
//! on chain (REC-9) where `tranche audit verify` checks it, and tells signed
//! requests of organisations apart by the roles the chain records.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tranche_devnet::DevnetFile;
use tranche_service::audit::{self, Entry};
use tranche_service::follower::Apply;
use tranche_service::{signed, ServiceCode, ServiceConfig};
use tranche_types::Role;

fn tranche() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tranche"))
}

mod support;

/// A role that only follows: the kit's own effects (the outbox's finality,
/// the cursor) are what is checked.
struct Follows;

impl Apply for Follows {
    fn apply<'a>(
        &'a self,
        _conn: &'a mut sqlx::AnyConnection,
        _block: &'a tranche_api::node::BlockRecord,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<(), tranche_service::ServiceError>> + Send + 'a,
        >,
    > {
        Box::pin(async { Ok(()) })
    }
}

/// A role that records each block it applies in `t_seen` (a height twice
/// would break its key) and fails once, at `fail_at`, if set; and what it
/// was told committed, in order.
#[derive(Default)]
struct Records {
    fail_at: std::sync::Mutex<Option<u64>>,
    committed: std::sync::Mutex<Vec<u64>>,
}

impl Apply for Records {
    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        block: &'a tranche_api::node::BlockRecord,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<(), tranche_service::ServiceError>> + Send + 'a,
        >,
    > {
        Box::pin(async move {
            sqlx::query("INSERT INTO t_seen (height) VALUES ($1)")
                .bind(block.height as i64)
                .execute(&mut *conn)
                .await?;
            let mut fail = self.fail_at.lock().unwrap();
            if *fail == Some(block.height) {
                *fail = None;
                return Err(tranche_service::ServiceError::internal(
                    "a block",
                    "failing once, as asked",
                ));
            }
            Ok(())
        })
    }

    fn committed(&self, block: &tranche_api::node::BlockRecord) {
        self.committed.lock().unwrap().push(block.height);
    }
}

fn config(dir: &Path, devnet: &DevnetFile, org: &str, data: &Path, db: &str) -> ServiceConfig {
    let node = devnet
        .nodes
        .iter()
        .find(|n| n.org == org)
        .map_or_else(|| devnet.nodes[0].api.clone(), |n| n.api.clone());
    let text = format!(
        r#"org = "{org}"
key_file = "{keys}/{org}.key"
password_file = "{pw}"
node = "{node}"
listen = "127.0.0.1:0"
data_dir = "{data}"
database_url = "{db}"
anchor_interval_secs = 1
"#,
        keys = devnet.keys,
        pw = devnet.password_file,
        data = data.display(),
    );
    let c: ServiceConfig = toml::from_str(&text).unwrap();
    c.resolve(dir).unwrap()
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rec9_a_service_anchors_its_audit_log_on_chain_and_authorizes_organisations_by_their_chain_roles(
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let base = 21_000 + (std::process::id() % 1_000) as u16 * 10;
    let _running = support::devnet_up(&dir, base);
    let devnet = DevnetFile::read(&dir).unwrap();

    for (i, url) in tranche_service::db::test_databases(tmp.path())
        .await
        .into_iter()
        .enumerate()
    {
        // One service per database, both the issuer's: the second starts its
        // outbox from the chain's next nonce for the key the first moved on.
        let data = tmp.path().join(format!("issuer-{i}"));
        let cfg = config(&dir, &devnet, "devnet-issuer", &data, &url);
        let service = tranche_service::Service::open(cfg, &[]).await.unwrap();

        // Three decisions, anchored: the anchor is a transaction the outbox
        // sends and the follower sees final.
        {
            let mut w = service.db.write().await.unwrap();
            let entry = |n: u32| Entry {
                actor: "did:key:z6MkOperator".into(),
                authority: "urn:tranche:devnet-issuer:staff:0".into(),
                action: "approve".into(),
                subject: format!("issuance/R-{n}"),
                decision: "approved".into(),
                reason: None,
                tx: None,
            };
            // One decision alone, then two appended together: one chain.
            service.decide(&mut w.tx, None, entry(0)).await.unwrap();
            let two = audit::append_many(&mut w.tx, 1_000, vec![entry(1), entry(2)])
                .await
                .unwrap();
            assert_eq!((two[0].seq, two[1].seq), (2, 3));
            assert_eq!(two[1].prev, two[0].hash);
            assert_eq!(
                audit::head(&mut w.tx).await.unwrap(),
                (3, two[1].hash.clone())
            );
            w.commit().await.unwrap();
        }
        let before = service
            .node
            .organisation("devnet-issuer")
            .await
            .unwrap()
            .unwrap()
            .data;
        let anchored_before = before.audit_anchor.map_or(0, |a| a.entries);
        assert_eq!(service.anchor_audit().await.unwrap(), Some(3));
        assert_eq!(
            service.anchor_audit().await.unwrap(),
            None,
            "nothing new to anchor"
        );
        let s = Arc::clone(&service);
        until("the anchor to be final", || {
            let s = Arc::clone(&s);
            async move {
                s.send_once().await.unwrap();
                s.follow_once(&Follows).await.unwrap();
                let (pending,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM kit_outbox WHERE state <> 'final'")
                        .fetch_one(s.db.pool())
                        .await
                        .unwrap();
                pending == 0
            }
        })
        .await;
        let (outcome,): (String,) = sqlx::query_as("SELECT outcome FROM kit_outbox")
            .fetch_one(service.db.pool())
            .await
            .unwrap();
        // The first service's anchor covers 3 entries; the second's log is
        // new and also 3 long, which the chain refuses: a log is never cut back.
        let expected = if anchored_before < 3 {
            "applied"
        } else {
            "AUDIT_ANCHOR_NOT_AFTER"
        };
        assert_eq!(outcome, expected);
        // Signed requests: the TSP's key signs, the chain says it is a TSP.
        let tsp_key = tranche_keystore::open_key_file(
            &Path::new(&devnet.keys).join("devnet-tsp.key"),
            Some(Path::new(&devnet.password_file)),
        )
        .unwrap();
        let now = tranche_service::now_ms();
        let check = |h: &signed::SignedHeaders, path: &str, body: &[u8], at: u64| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("content-digest", h.content_digest.parse().unwrap());
            headers.insert("signature-input", h.signature_input.parse().unwrap());
            headers.insert("signature", h.signature.parse().unwrap());
            let (db, node, chain) = (
                service.db.clone(),
                service.node.clone(),
                service.chain_id.clone(),
            );
            let (path, body) = (path.to_string(), body.to_vec());
            async move { signed::check(&db, &node, &chain, &headers, "POST", &path, &body, at).await }
        };
        let h = signed::sign(
            &tsp_key,
            &service.chain_id,
            "devnet-tsp",
            "POST",
            "/x",
            b"{}",
            now / 1000,
            "n-1",
        );
        let caller = check(&h, "/x", b"{}", now).await.unwrap();
        assert_eq!(caller.org, "devnet-tsp");
        caller.require(Role::Tsp).unwrap();
        assert_eq!(
            caller.require(Role::Issuer).unwrap_err().code,
            ServiceCode::Forbidden
        );
        assert_eq!(
            check(&h, "/x", b"{}", now).await.unwrap_err().code,
            ServiceCode::ReplayedRequest
        );
        assert_eq!(
            check(&h, "/y", b"{}", now).await.unwrap_err().code,
            ServiceCode::SignatureInvalid
        );
        assert_eq!(
            check(&h, "/x", b"{\"a\":1}", now).await.unwrap_err().code,
            ServiceCode::SignatureInvalid
        );
        let old = signed::sign(
            &tsp_key,
            &service.chain_id,
            "devnet-tsp",
            "POST",
            "/x",
            b"",
            now / 1000 - 3_600,
            "n-2",
        );
        assert_eq!(
            check(&old, "/x", b"", now).await.unwrap_err().code,
            ServiceCode::StaleRequest
        );
        // Signed with the TSP's key in another organisation's name.
        let posing = signed::sign(
            &tsp_key,
            &service.chain_id,
            "devnet-exchange",
            "POST",
            "/x",
            b"",
            now / 1000,
            "n-3",
        );
        assert_eq!(
            check(&posing, "/x", b"", now).await.unwrap_err().code,
            ServiceCode::SignatureInvalid
        );
        let nobody = signed::sign(
            &tsp_key,
            &service.chain_id,
            "no-such-org",
            "POST",
            "/x",
            b"",
            now / 1000,
            "n-4",
        );
        assert_eq!(
            check(&nobody, "/x", b"", now).await.unwrap_err().code,
            ServiceCode::Forbidden
        );
        if anchored_before >= 3 {
            continue;
        }
        let on_chain = service
            .node
            .organisation("devnet-issuer")
            .await
            .unwrap()
            .unwrap()
            .data
            .audit_anchor
            .unwrap();
        let mut conn = service.db.pool().acquire().await.unwrap();
        let export = audit::Export {
            org: "devnet-issuer".into(),
            records: audit::records(&mut conn, 0, 1000).await.unwrap(),
            anchors: audit::anchors(&mut conn).await.unwrap(),
        };
        assert_eq!(on_chain.entries, 3);
        assert_eq!(on_chain.head.to_hex(), export.records[2].hash);

        // `tranche audit verify` checks the export against any node.
        let file = tmp.path().join("audit.json");
        std::fs::write(&file, serde_json::to_vec(&export).unwrap()).unwrap();
        let verify = |path: &Path| {
            tranche()
                .args(["audit", "verify"])
                .arg(path)
                .args(["--node", &devnet.nodes[3].api])
                .output()
                .unwrap()
        };
        let ok = verify(&file);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let mut altered = export.clone();
        altered.records[1].entry.decision = "refused".into();
        let bad = tmp.path().join("altered.json");
        std::fs::write(&bad, serde_json::to_vec(&altered).unwrap()).unwrap();
        let refused = verify(&bad);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "an altered log does not verify"
        );
        // A log cut back below what the chain anchored does not verify.
        let mut cut = export.clone();
        cut.records.truncate(2);
        cut.anchors.clear();
        std::fs::write(&bad, serde_json::to_vec(&cut).unwrap()).unwrap();
        assert_eq!(
            verify(&bad).status.code(),
            Some(1),
            "a truncated log does not verify"
        );

        // Far behind the chain (the cursor taken back to its start), the
        // follower catches up in runs of blocks: each block applied once,
        // in order, and a run that fails leaves nothing of itself behind.
        drop(conn);
        sqlx::raw_sql("CREATE TABLE t_seen (height BIGINT PRIMARY KEY); DELETE FROM kit_cursor")
            .execute(service.db.pool())
            .await
            .unwrap();
        let head = service.node.status().await.unwrap().finalized_height;
        assert!(head >= 6, "a chain long enough to catch up on: {head}");
        let role = Records::default();
        *role.fail_at.lock().unwrap() = Some(head / 2);
        assert!(service.follow_once(&role).await.is_err());
        let seen = || async {
            let rows: Vec<(i64,)> = sqlx::query_as("SELECT height FROM t_seen ORDER BY height")
                .fetch_all(service.db.pool())
                .await
                .unwrap();
            rows.into_iter().map(|(h,)| h as u64).collect::<Vec<_>>()
        };
        let cursor =
            tranche_service::follower::cursor(&mut service.db.pool().acquire().await.unwrap())
                .await
                .unwrap();
        assert!(cursor < head / 2, "the failed run is not applied: {cursor}");
        assert_eq!(seen().await, (1..=cursor).collect::<Vec<_>>());
        let before = seen().await;
        assert_eq!(*role.committed.lock().unwrap(), before);
        let applied = service.follow_once(&role).await.unwrap();
        let now = seen().await;
        let committed = role.committed.lock().unwrap().clone();
        assert_eq!(committed, now);
        assert!(now.len() as u64 >= head, "{} of {head}", now.len());
        assert_eq!(now, (1..=now.len() as u64).collect::<Vec<_>>());
        assert_eq!(applied, now.len() as u64 - cursor);
    }

    // TLS by configuration: the service answers HTTPS to a client trusting
    // its CA, and nothing to one that does not, nor plain HTTP.
    let ident = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (tmp.path().join("svc.crt"), tmp.path().join("svc.key"));
    std::fs::write(&cert, ident.cert.pem()).unwrap();
    std::fs::write(&key, ident.signing_key.serialize_pem()).unwrap();
    let data = tmp.path().join("issuer-tls");
    let url = format!("sqlite://{}?mode=rwc", data.join("service.db").display());
    let mut cfg = config(&dir, &devnet, "devnet-issuer", &data, &url);
    let port = base + 50;
    cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
    cfg.tls = Some(tranche_service::config::TlsFiles {
        cert: cert.clone(),
        key,
    });
    let service = tranche_service::Service::open(cfg, &[]).await.unwrap();
    let (router, doc) = service.routes().split_for_parts();
    let router = tranche_service::http::finish(router, service.metrics.clone(), doc);
    let running = tokio::spawn(Arc::clone(&service).run(Arc::new(Follows), router));
    let call = move |url: String, ca: Option<PathBuf>| {
        let mut c = tranche();
        c.args(["service", "call", &url, "/healthz"]);
        if let Some(ca) = ca {
            c.arg("--ca-cert").arg(ca);
        }
        c.output().unwrap()
    };
    let https = format!("https://127.0.0.1:{port}");
    let mut up = None;
    for _ in 0..100 {
        let (u, ca) = (https.clone(), cert.clone());
        let out = tokio::task::spawn_blocking(move || call(u, Some(ca)))
            .await
            .unwrap();
        if out.status.success() {
            up = Some(String::from_utf8_lossy(&out.stdout).to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = up.expect("the service answers over TLS");
    assert!(answer.contains("\"ok\""), "{answer}");
    let u = https.clone();
    let untrusted = tokio::task::spawn_blocking(move || call(u, None))
        .await
        .unwrap();
    assert!(
        !untrusted.status.success(),
        "a client not trusting the CA is refused"
    );
    let plain = format!("http://127.0.0.1:{port}");
    let plain = tokio::task::spawn_blocking(move || call(plain, None))
        .await
        .unwrap();
    assert!(!plain.status.success(), "plain HTTP gets no answer");
    running.abort();
}
