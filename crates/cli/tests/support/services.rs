//! Driving role services from a test as their users would: the `tranche`
//! binary for commands, raw HTTP for what the CLI would never send, and a
//! node client to send organisations' transactions and wait for them.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tranche_api::client::NodeClient;
use tranche_crypto::rand_core::OsRng;
use tranche_crypto::{sign_transaction, Keypair};
use tranche_types::{ChainId, Outcome, Payload, Timestamp, Transaction};

pub fn tranche() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tranche"))
}

pub fn now_ms() -> u64 {
    tranche_service::now_ms()
}

/// Signs `payload` with `key`'s next nonce, sends it and waits until it is
/// final; it must apply.
pub async fn send(node: &NodeClient, chain: &ChainId, key: &Keypair, payload: Payload) {
    let outcome = send_outcome(node, chain, key, payload).await;
    assert!(matches!(outcome, Outcome::Applied), "{outcome:?}");
}

/// [`send`], answering the outcome.
pub async fn send_outcome(
    node: &NodeClient,
    chain: &ChainId,
    key: &Keypair,
    payload: Payload,
) -> Outcome {
    send_recorded(node, chain, key, payload)
        .await
        .receipt
        .outcome
}

/// [`send`], answering the transaction's hash (hex) and block.
pub async fn send_final(
    node: &NodeClient,
    chain: &ChainId,
    key: &Keypair,
    payload: Payload,
) -> (String, u64) {
    let r = send_recorded(node, chain, key, payload).await;
    assert!(
        matches!(r.receipt.outcome, Outcome::Applied),
        "{:?}",
        r.receipt.outcome
    );
    (r.hash.to_hex(), r.height)
}

async fn send_recorded(
    node: &NodeClient,
    chain: &ChainId,
    key: &Keypair,
    payload: Payload,
) -> tranche_api::node::TransactionRecord {
    let nonce = node.next_nonce(&key.public_key()).await.unwrap();
    let tx = Transaction {
        chain_id: chain.clone(),
        signer: key.public_key(),
        nonce,
        valid_until: Timestamp(now_ms() + 600_000),
        payload,
    };
    let stx = sign_transaction(key, tx).unwrap();
    node.submit(&stx).await.unwrap();
    node.wait(&stx.tx.hash(), Duration::from_secs(60))
        .await
        .unwrap()
        .expect("final within a minute")
}

/// Publishes `policy` (its JSON) as the next version of the AML policy,
/// signed by `regulator`, governing from three blocks on; returns once the
/// node has it in force.
pub async fn publish_aml_policy(
    node: &NodeClient,
    chain: &ChainId,
    regulator: &Keypair,
    policy: Value,
) -> u32 {
    let now = node.aml_policy().await.unwrap();
    let version = now.data.versions.last().map_or(1, |v| v.version + 1);
    let p = tranche_types::Payload::PublishAmlPolicy(tranche_types::PublishAmlPolicy {
        version,
        effective_height: now.height + 3,
        policy: serde_json::from_value(policy).unwrap(),
    });
    send(node, chain, regulator, p).await;
    for _ in 0..600 {
        let in_force = node.aml_policy().await.unwrap().data.in_force;
        if in_force.is_some_and(|v| v.version == version) {
            return version;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("AML policy version {version} not in force within a minute");
}

/// The devnet's organisations a test signs as to tokenize an asset.
pub struct Tokenizers {
    pub tsp: Keypair,
    pub issuer: Keypair,
    pub registry: Keypair,
    pub appraiser: Keypair,
}

/// Tokenizes `request`'s asset, owned by `owner` and worth 10,000 USD: the
/// registry attests the owner, the TSP registers it, the appraiser values
/// it, the TSP requests and the issuer executes the issuance. Answers the
/// execution's hash and block.
pub async fn tokenize(
    node: &NodeClient,
    chain: &ChainId,
    orgs: &Tokenizers,
    owner: &Keypair,
    request: &tranche_types::RequestIssuance,
) -> (String, u64) {
    use tranche_testkit::world::{appraisal, execution, record_ownership, register_asset, usd};
    let asset = request.asset.as_str();
    let owner = tranche_ledger::Ledger::did_of_key(&owner.public_key());
    let value = usd(1_000_000);
    send(
        node,
        chain,
        &orgs.registry,
        record_ownership(asset, owner.clone()),
    )
    .await;
    send(
        node,
        chain,
        &orgs.tsp,
        register_asset(asset, owner, value.clone()),
    )
    .await;
    send(node, chain, &orgs.appraiser, appraisal(asset, value)).await;
    let p = Payload::RequestIssuance(request.clone());
    send(node, chain, &orgs.tsp, p).await;
    send_final(node, chain, &orgs.issuer, execution(request)).await
}

pub fn healthy(api: &str) -> bool {
    reqwest::blocking::get(format!("{api}/healthz")).is_ok_and(|r| r.status().is_success())
}

/// Starts `tranche <role> --config <config>`, its output appended to `log`.
pub fn start(role: &str, config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    tranche()
        .arg(role)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `tranche service call`, its exit code and output.
pub fn call(api: &str, path: &str, args: &[&str]) -> (i32, String) {
    let o = tranche()
        .args(["service", "call", api, path])
        .args(args)
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), text(&o))
}

pub fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A raw request, for what the CLI would never send.
pub fn raw(method: &str, url: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut r = client
        .request(method.parse().unwrap(), url)
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    let resp = r.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// A person: a fresh key, sealed in `dir/<name>.key` under the password in
/// `dir/person-pw`.
pub fn person(dir: &Path, name: &str) -> Keypair {
    let k = Keypair::generate(&mut OsRng);
    let file = tranche_crypto::KeyFile::seal(
        &k,
        b"person-password",
        tranche_crypto::KdfParams::DEFAULT,
        &mut OsRng,
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.key")), file.to_json()).unwrap();
    std::fs::write(dir.join("person-pw"), "person-password").unwrap();
    k
}

/// `tranche service login` as `dir/<name>.key` presenting `credential`;
/// the session in `dir/<name>.session`.
pub fn login(dir: &Path, api: &str, name: &str, credential: &Path) -> Output {
    login_all(dir, api, name, &[credential])
}

/// [`login`], presenting several credentials at once.
pub fn login_all(dir: &Path, api: &str, name: &str, credentials: &[&Path]) -> Output {
    login_as(dir, api, name, name, credentials)
}

/// [`login_all`], the session in `dir/<session>.session`: one person at
/// several services.
pub fn login_as(dir: &Path, api: &str, name: &str, session: &str, credentials: &[&Path]) -> Output {
    let mut c = tranche();
    c.args(["service", "login", api, "--password-file"])
        .arg(dir.join("person-pw"))
        .arg("--key-file")
        .arg(dir.join(format!("{name}.key")));
    for credential in credentials {
        c.arg("--credential").arg(credential);
    }
    c.arg("--out")
        .arg(dir.join(format!("{session}.session")))
        .output()
        .unwrap()
}

/// Logs in the staff of the devnet's `role` service; each session in
/// `dir/<staff name>.session`. Returns the service's entry.
pub fn login_devnet_staff(
    dir: &Path,
    devnet: &tranche_devnet::DevnetFile,
    role: &str,
) -> tranche_devnet::ServiceEntry {
    let service = devnet
        .services
        .iter()
        .find(|s| s.role == role)
        .unwrap()
        .clone();
    for op in &service.staff {
        let o = tranche()
            .args(["service", "login", &service.api, "--password-file"])
            .arg(&devnet.password_file)
            .args([
                "--key-file",
                &op.key_file,
                "--credential",
                &op.credential,
                "--out",
            ])
            .arg(dir.join(format!("{}.session", op.name)))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    service
}

/// `tranche vc issue` by the devnet organisation `issuer` (its key in
/// `keys`, password file `pw`) about `subject`, into `out`; `kind` and its
/// options as the command takes them.
pub fn issue_vc(keys: &Path, pw: &Path, issuer: &str, subject: &str, kind: &[&str], out: &Path) {
    let o = tranche()
        .args(["vc", "issue", "--key-file"])
        .arg(keys.join(format!("{issuer}.key")))
        .arg("--password-file")
        .arg(pw)
        .args(["--subject", subject, "--kind"])
        .args(kind)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// The bearer token of `dir/<name>.session`.
pub fn token(dir: &Path, name: &str) -> String {
    json_of(&std::fs::read_to_string(dir.join(format!("{name}.session"))).unwrap())["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Headers of a JSON request in `dir/<name>.session`'s session.
pub fn bearer(dir: &Path, name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {}", token(dir, name))),
        ("content-type", "application/json".into()),
    ]
}

/// The DID of `k`.
pub fn did_of(k: &Keypair) -> String {
    tranche_identity::DidKey::from_public_key(&k.public_key()).did()
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The database of a test's service: SQLite in `data` when `database` is
/// empty, else that URL.
pub fn database_url(data: &Path, database: &str) -> String {
    if database.is_empty() {
        format!("sqlite://{}?mode=rwc", data.join("service.db").display())
    } else {
        database.to_string()
    }
}

/// Everything a service stored, as bytes to search for what must not be
/// there: the SQLite files themselves, or on PostgreSQL the rows of the
/// kit's tables and of `role_queries` (each selecting one text column).
pub fn stored_bytes(
    rt: &tokio::runtime::Runtime,
    data: &Path,
    database: &str,
    db: &tranche_service::Db,
    role_queries: &[&str],
) -> Vec<u8> {
    let mut stored: Vec<u8> = Vec::new();
    if database.is_empty() {
        for suffix in ["", "-wal", "-journal"] {
            if let Ok(b) = std::fs::read(format!("{}{suffix}", data.join("service.db").display())) {
                stored.extend(b);
            }
        }
        return stored;
    }
    let kit = [
        "SELECT entry FROM kit_audit",
        "SELECT did || roles || credentials FROM kit_sessions",
        "SELECT owner || record || ciphertext FROM vault_records",
    ];
    for q in kit.iter().chain(role_queries) {
        let rows: Vec<(String,)> = rt
            .block_on(sqlx::query_as(sqlx::AssertSqlSafe(*q)).fetch_all(db.pool()))
            .unwrap();
        stored.extend(rows.into_iter().flat_map(|(r,)| r.into_bytes()));
    }
    stored
}

/// Checks the service at `api` documents each of `paths` in its OpenAPI
/// document.
pub fn documents(api: &str, paths: &[&str]) {
    let doc: Value = reqwest::blocking::get(format!("{api}/openapi.json"))
        .unwrap()
        .json()
        .unwrap();
    for path in paths {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
}

/// The `[service]` table of a test's service for `org` (its key in `keys`,
/// the devnet's password file `pw`), on `database` (SQLite in `data` when
/// empty); the caller appends its own lines.
pub fn service_table(
    org: &str,
    (keys, pw): (&Path, &Path),
    node: &str,
    listen: &str,
    data: &Path,
    database: &str,
) -> String {
    let db_line = if database.is_empty() {
        String::new()
    } else {
        format!("database_url = \"{database}\"\n")
    };
    format!(
        "[service]\norg = \"{org}\"\nkey_file = \"{}\"\npassword_file = \"{}\"\nnode = \"{node}\"\nlisten = \"{listen}\"\ndata_dir = \"{}\"\n{db_line}",
        keys.join(format!("{org}.key")).display(),
        pw.display(),
        data.display()
    )
}

/// The kinds of the transactions a service's outbox signed, each once
/// final and applied (else it panics, naming them all).
pub fn outbox_kinds(rt: &tokio::runtime::Runtime, db: &tranche_service::Db) -> Vec<String> {
    let sent: Vec<(String, String)> = rt
        .block_on(
            sqlx::query_as("SELECT kind, COALESCE(outcome, '') FROM kit_outbox ORDER BY nonce")
                .fetch_all(db.pool()),
        )
        .unwrap();
    assert!(sent.iter().all(|(_, o)| o == "applied"), "{sent:?}");
    sent.into_iter().map(|(kind, _)| kind).collect()
}

/// Every byte of every file below `dir` (a devnet's node data, say), to
/// search for what must not be there.
pub fn bytes_below(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}

/// A person's transaction as they make it (REC-5): `payload` built for
/// `key` (public key only, as offline) and signed with `dir/<name>.key`;
/// returns the signed transaction's file.
pub fn person_signs(
    dir: &Path,
    name: &str,
    key: &Keypair,
    chain_id: &str,
    nonce: u64,
    payload: &Value,
) -> PathBuf {
    let file = |what: &str| dir.join(format!("{name}.{nonce}.{what}.json"));
    std::fs::write(file("payload"), payload.to_string()).unwrap();
    let signer = key.public_key().to_hex();
    let steps: [Vec<std::ffi::OsString>; 2] = [
        vec![
            "tx".into(),
            "build".into(),
            "payload".into(),
            file("payload").into(),
            "--chain-id".into(),
            chain_id.into(),
            "--signer".into(),
            signer.into(),
            "--nonce".into(),
            nonce.to_string().into(),
            "--out".into(),
            file("unsigned").into(),
        ],
        vec![
            "tx".into(),
            "sign".into(),
            file("unsigned").into(),
            "--key-file".into(),
            dir.join(format!("{name}.key")).into(),
            "--password-file".into(),
            dir.join("person-pw").into(),
            "--out".into(),
            file("signed").into(),
        ],
    ];
    for args in steps {
        let o = tranche().args(&args).output().unwrap();
        assert!(o.status.success(), "tranche {args:?}: {}", text(&o));
    }
    file("signed")
}

/// [`person_signs`], then submitted to `node`; returns the submit
/// command's output.
pub fn person_submits(
    dir: &Path,
    name: &str,
    key: &Keypair,
    chain_id: &str,
    nonce: u64,
    payload: &Value,
    node: &str,
) -> String {
    let signed = person_signs(dir, name, key, chain_id, nonce, payload);
    let o = tranche()
        .arg("submit")
        .arg(&signed)
        .args(["--node", node])
        .output()
        .unwrap();
    assert!(o.status.success(), "tranche submit: {}", text(&o));
    text(&o)
}

/// A new operator `name` of the `role` service configured in `config`: a
/// key in `dir/<name>.key` and the staff credential `tranche <role> staff
/// add` issues in `dir/<name>.json`.
pub fn operator(dir: &Path, role: &str, config: &Path, name: &str) -> Keypair {
    let k = person(dir, name);
    let o = tranche()
        .args([role, "--config"])
        .arg(config)
        .args(["staff", "add", "--subject", &did_of(&k), "--out"])
        .arg(dir.join(format!("{name}.json")))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    k
}

/// Stops the devnet's own service for `role` once its audit log is
/// anchored and its outbox empty, so that a test may sign as the
/// organisation by hand (or run a service of its own for it) without
/// racing it for the organisation's nonces.
pub fn stop_devnet_service(
    rt: &tokio::runtime::Runtime,
    devnet: &tranche_devnet::DevnetFile,
    role: &str,
    migrations: &[tranche_service::Migration],
) {
    let s = devnet.services.iter().find(|s| s.role == role).unwrap();
    let db = Path::new(&s.config)
        .parent()
        .unwrap()
        .join("service/service.db");
    let url = format!("sqlite://{}?mode=rw", db.display());
    wait_for("the devnet service to settle", || {
        rt.block_on(async {
            let Ok(db) = tranche_service::Db::open(&url, migrations).await else {
                return false;
            };
            let settled: Result<(i64,), _> = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM kit_outbox WHERE state = 'pending') \
                 + (SELECT COUNT(*) FROM kit_audit) \
                 - (SELECT COALESCE(MAX(entries), 0) FROM kit_anchors)",
            )
            .fetch_one(db.pool())
            .await;
            matches!(settled, Ok((0,)))
        })
    });
    super::kill(s.pid);
}

/// Where run `run` of a test's own `role` service lives: its data dir,
/// listen address (base + 300 + run), API URL, config and log files.
pub struct ServiceRun {
    pub data: PathBuf,
    pub listen: String,
    pub api: String,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl ServiceRun {
    pub fn new(dir: &Path, role: &str, base: u16, run: usize) -> ServiceRun {
        let listen = format!("127.0.0.1:{}", base + 300 + run as u16);
        ServiceRun {
            data: dir.join(format!("{role}-{run}")),
            api: format!("http://{listen}"),
            listen,
            config: dir.join(format!("{role}-{run}.toml")),
            log: dir.join(format!("{role}-{run}.log")),
        }
    }
}

/// People `names`, suffixed with `run`: each a key of their own in `dir`
/// and a KYC credential from the devnet's KYC provider (its key in `keys`,
/// password file `pw`) in `dir/<name>.kyc.json`.
pub fn kyc_people(
    dir: &Path,
    (keys, pw): (&Path, &Path),
    names: &[&str],
    run: usize,
) -> Vec<(String, Keypair)> {
    names
        .iter()
        .map(|n| {
            let name = format!("{n}{run}");
            let k = person(dir, &name);
            issue_vc(
                keys,
                pw,
                "devnet-kyc",
                &did_of(&k),
                &["kyc", "--level", "high"],
                &dir.join(format!("{name}.kyc.json")),
            );
            (name, k)
        })
        .collect()
}

/// The databases a service test runs on: SQLite in the service's data dir
/// (an empty URL, as the devnet's services), then PostgreSQL when the test
/// command provides one.
pub fn test_databases(rt: &tokio::runtime::Runtime, dir: &Path) -> Vec<String> {
    let mut databases = rt.block_on(tranche_service::db::test_databases(dir));
    databases[0] = String::new();
    eprintln!("running on {} databases", databases.len());
    databases
}

/// What an HTTP receiver got: one header's value and the body of each
/// request it answered 200.
pub type Deliveries = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An HTTP receiver (a webhook, a regulator's inbox) on a free port that
/// answers the first `fail` requests 500 and the rest 200, keeping each
/// one's `header` (lowercase); returns its URL and what it kept.
pub fn http_receiver(fail: usize, header: &'static str) -> (String, Deliveries) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/inbox", listener.local_addr().unwrap());
    let got: Deliveries = Arc::default();
    let kept = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut seen = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut signature) = (0usize, String::new());
            // A connection closed before its headers ended is no request.
            let mut whole = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    whole = true;
                    break;
                }
                let lower = line.to_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with(&format!("{header}:")) {
                    signature = line[line.find(':').unwrap() + 1..].trim().to_string();
                }
            }
            let mut body = vec![0; length];
            if !whole || reader.read_exact(&mut body).is_err() {
                continue;
            }
            seen += 1;
            let status = if seen <= fail {
                "500 Internal Server Error"
            } else {
                kept.lock().unwrap().push((signature, body));
                "200 OK"
            };
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (url, got)
}

/// `tranche did <args>` with `name`'s key (in `dir`, password `person-pw`),
/// writing `dir/<out>`; the file's path.
pub fn did_command(dir: &Path, name: &str, out: &str, args: &[&str]) -> PathBuf {
    let file = dir.join(out);
    let o = tranche()
        .arg("did")
        .args(args)
        .arg("--key-file")
        .arg(dir.join(format!("{name}.key")))
        .arg("--password-file")
        .arg(dir.join("person-pw"))
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    file
}
