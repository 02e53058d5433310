//! A devnet of four `tranche node` processes, driven as a user would: the
//! paper's investment scenario through the CLI, then kill -9 of one
//! validator while the others keep finalizing, and its restart catching up
//! to the same state root.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tranche_devnet::DevnetFile;

mod support;

fn tranche() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tranche"))
}

fn devnet(dir: &Path) -> DevnetFile {
    DevnetFile::read(dir).unwrap()
}

fn pids(dir: &Path) -> Vec<u32> {
    let d = devnet(dir);
    d.nodes
        .iter()
        .map(|n| n.pid)
        .chain(d.services.iter().map(|s| s.pid))
        .collect()
}

fn status(api: &str) -> Option<Value> {
    let out = tranche()
        .args(["query", "status", "--node", api])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// `tranche query ARGS`, which must succeed, as JSON.
fn query(args: &[&str]) -> Value {
    let out = tranche().arg("query").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn height(api: &str) -> u64 {
    status(api).map_or(0, |s| s["finalized_height"].as_u64().unwrap())
}

fn root_at(api: &str, h: u64) -> String {
    let v = query(&["block", &h.to_string(), "--node", api]);
    v["state_root"].as_str().unwrap().to_string()
}

/// A devnet of nodes only (no role services) in `dir`, on ports from `base`.
fn nodes_only(dir: &Path, base: u16) -> tranche_devnet::Devnet {
    tranche_devnet::Devnet::start(
        Path::new(env!("CARGO_BIN_EXE_tranche")),
        &tranche_devnet::Options {
            data_dir: dir.to_path_buf(),
            base_port: base,
            services: false,
        },
    )
    .unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    // Generous: CI machines are small and busy.
    for _ in 0..1800 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn devnet_runs_the_investment_scenario_and_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    // Below Linux's ephemeral range (32768 and up), so no outgoing
    // connection can be holding a port a node is about to listen on.
    let base = 20_000 + (std::process::id() % 1_100) as u16 * 10;
    let mut nodes = support::devnet_up(&dir, base);
    assert!(devnet(&dir).ready, "devnet.json says the nodes finalize");
    let apis: Vec<String> = devnet(&dir).nodes.iter().map(|n| n.api.clone()).collect();
    // Four validators, then the custodian's node, which follows.
    assert_eq!(apis.len(), 5);
    // The issuer's service runs beside its node, with two operators, the
    // escrow bank's, the TSP's, the custodian's, the exchange's and the
    // regulator's with one each.
    let services = devnet(&dir).services;
    let roles: Vec<(&str, &str, usize)> = services
        .iter()
        .map(|s| (s.role.as_str(), s.org.as_str(), s.staff.len()))
        .collect();
    assert_eq!(
        roles,
        [
            ("issuer", "devnet-issuer", 2),
            ("bank", "devnet-bank", 1),
            ("tsp", "devnet-tsp", 1),
            ("custodian", "devnet-custodian", 1),
            ("exchange", "devnet-exchange", 1),
            ("regulator", "devnet-regulator", 1)
        ]
    );
    assert_eq!(status(&apis[4]).unwrap()["validating"], false);

    // A regulator follows every finalized transfer live.
    let watch_out = dir.join("watch.jsonl");
    nodes.children.push(
        tranche()
            .args(["watch", "--node", &apis[3]])
            .stdout(std::fs::File::create(&watch_out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/investment.sh");
    let scenario = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .env("TRANCHE", env!("CARGO_BIN_EXE_tranche"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&scenario.stdout);
    assert!(
        scenario.status.success(),
        "the investment scenario runs through the CLI:\n{stdout}\n{}",
        String::from_utf8_lossy(&scenario.stderr)
    );
    assert!(stdout.contains("investment scenario complete"));

    // The live stream saw every movement of the scenario's token, in
    // order: three issuances, the agent's seizing and returning of one unit
    // (one transaction), the entrusting, the custodial move, two
    // holder transfers, two settlement legs, the deposit at the exchange and
    // the trade's settlement, and five revocations (the deposit token's moves
    // are streamed too, and left aside here).
    let scenario_token = |e: &Value| {
        e["transfer"]["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("T-"))
    };
    let streamed = || -> Vec<Value> {
        std::fs::read_to_string(&watch_out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(scenario_token)
            .collect()
    };
    wait_for(
        "the watcher to see the scenario's eighteen transfers",
        || streamed().len() >= 18,
    );
    let streamed = streamed();
    let kinds: Vec<&str> = streamed
        .iter()
        .map(|e| e["transfer"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "issuance",
            "issuance",
            "issuance",
            "forced",
            "forced",
            "holder",
            "custodial",
            "holder",
            "holder",
            "settlement",
            "settlement",
            "holder",
            "settlement",
            "revocation",
            "revocation",
            "revocation",
            "revocation",
            "revocation"
        ]
    );
    assert!(streamed.iter().all(
        |e| e["transfer"]["token"] == streamed[0]["transfer"]["token"]
            && e["state_root"].is_string()
    ));
    let revocation = &streamed[17]["transfer"];
    assert_eq!(revocation["amount"], "1", "carol's one token, revoked last");
    // A follower's binary read of a block (what `query block` and the
    // services use) is the block the node's JSON gives.
    let revoked_at = revocation["height"].as_u64().unwrap();
    let read = query(&["block", &revoked_at.to_string(), "--node", &apis[1]]);
    let url = format!("{}/blocks/{revoked_at}", apis[1]);
    let (code, json) = support::services::raw("GET", &url, &[], "");
    assert_eq!(code, 200, "{json}");
    assert!(json["transfers"].as_array().unwrap().len() >= 5, "{json}");
    assert_eq!(read, json);
    // The names, address and asset description the scenario gave the
    // services are in no chain data, no service log and no database but
    // as the vaults' ciphertext.
    let stored = support::services::bytes_below(&dir);
    assert!(stored.len() > 100_000, "the devnet's files are read");
    for seeded in [
        "Seo Yeon-woo",
        "Alice Park",
        "77 Sejong-daero",
        "9 Teheran-ro",
    ] {
        assert!(
            !support::services::contains(&stored, seeded.as_bytes()),
            "{seeded:?} is stored in clear under {}",
            dir.display()
        );
    }
    // History by time: everything so far, and nothing from the future.
    let transfers = |since: u64| -> usize {
        let out = tranche()
            .args([
                "query",
                "transfers",
                "--since",
                &since.to_string(),
                "--node",
                &apis[1],
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["data"]["transfers"].as_array().unwrap().len()
    };
    // This node may be a block behind the one that applied the last step.
    wait_for("the issuance, transfer and revocation in history", || {
        transfers(0) >= 4
    });
    let block_time = status(&apis[1]).unwrap()["block_time"].as_u64().unwrap();
    assert_eq!(transfers(block_time + 3_600_000), 0);

    // A proof from one organisation's node, checked against the state root
    // of another's (SR-2, REC-2): the revocation wallet holds the 1,000
    // revoked units. Altered, it does not hold.
    let token = revocation["token"].as_str().unwrap();
    let vault = revocation["to"].as_str().unwrap();
    let proof = query(&["proof", "balance", token, vault, "--node", &apis[0]]);
    let proof_file = dir.join("proof.json");
    std::fs::write(&proof_file, serde_json::to_vec(&proof).unwrap()).unwrap();
    assert_eq!(proof["data"]["value_text"], "Units(1000)");
    let proof_height = proof["height"].as_u64().unwrap();
    wait_for("the other node to reach the proof's height", || {
        height(&apis[2]) >= proof_height
    });
    let verify = |file: &Path| {
        tranche()
            .arg("verify")
            .arg(file)
            .args(["--node", &apis[2]])
            .output()
            .unwrap()
    };
    let verified = verify(&proof_file);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("= Units(1000)"));
    let mut bent = proof.clone();
    let value = bent["data"]["value"].as_str().unwrap().to_string();
    let last = if value.ends_with('0') { "1" } else { "0" };
    bent["data"]["value"] = Value::String(format!("{}{last}", &value[..value.len() - 1]));
    let bent_file = dir.join("bent-proof.json");
    std::fs::write(&bent_file, serde_json::to_vec(&bent).unwrap()).unwrap();
    let refused = verify(&bent_file);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not hold"));

    // Exit codes a script can act on: 4 for what the node does not have,
    // 3 for a transaction the ledger rejects.
    let missing = tranche()
        .args(["query", "tx", &"0".repeat(64), "--node", &apis[0]])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(4), "not found");
    let rejected_payload = dir.join("rejected.json");
    std::fs::write(
        &rejected_payload,
        r#"{"type":"record_appraisal","asset":"A-NONE","value":{"minor":"1","currency":{"code":"USD","kind":"fiat","decimals":2}}}"#,
    )
    .unwrap();
    let rejected = tranche()
        .arg("send")
        .arg(&rejected_payload)
        .arg("--key-file")
        .arg(dir.join("keys/devnet-appraiser.key"))
        .arg("--password-file")
        .arg(dir.join("password"))
        .args(["--node", &apis[0]])
        .output()
        .unwrap();
    assert_eq!(rejected.status.code(), Some(3), "rejected");
    assert!(String::from_utf8_lossy(&rejected.stdout).contains("UNKNOWN_ASSET"));

    // The committee is the genesis election (C-2): four bonded validators,
    // one vote each, nobody caught equivocating.
    let out = tranche()
        .args(["query", "validators", "--node", &apis[2]])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data"]["committee"].as_array().unwrap().len(), 4);
    let validators = v["data"]["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 4);
    assert!(validators
        .iter()
        .all(|x| x["elected"] == true && x["bonded"] == "1000" && x["tombstoned"] == false));
    assert!(v["data"]["equivocations"].as_array().unwrap().is_empty());

    // kill -9 the regulator's validator: the other three keep finalizing.
    let regulator = pids(&dir)[3];
    assert!(Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s KILL {regulator}"))
        .status()
        .unwrap()
        .success());
    let before = height(&apis[0]);
    wait_for("three validators to finalize without the fourth", || {
        height(&apis[0]) >= before + 5
    });
    assert!(status(&apis[3]).is_none(), "the killed node is down");

    // Restarted from its own storage, it catches up to the same state.
    let config = dir.join("devnet-regulator").join("node.toml");
    let log = std::fs::File::create(dir.join("restart.log")).unwrap();
    nodes.children.push(
        tranche()
            .arg("node")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let target = height(&apis[0]);
    wait_for("the restarted validator to catch up", || {
        height(&apis[3]) >= target
    });
    wait_for("the follower to keep up", || height(&apis[4]) >= target);
    for api in [&apis[0], &apis[1], &apis[2], &apis[4]] {
        assert_eq!(
            root_at(api, target),
            root_at(&apis[3], target),
            "same state root at height {target}"
        );
    }
    // Epochs are 100 blocks: the committee is elected again, and every
    // validator, the restarted one too, carries on into the new epoch; the
    // follower follows into it.
    wait_for("an epoch change", || {
        apis.iter().enumerate().all(|(i, api)| {
            status(api)
                .is_some_and(|s| s["epoch"].as_u64().unwrap() >= 1 && s["validating"] == (i < 4))
        })
    });
    drop(nodes);
}

/// The p2p network admits the peers the chain admits (C-1): a key no
/// organisation holds cannot connect even where a validator's configuration
/// lists it, and a node whose organisation governance removes (its roles
/// revoked) is dropped and stops following.
#[test]
fn only_peers_the_chain_admits_connect_and_a_removed_one_is_dropped() {
    use tranche_crypto::rand_core::OsRng;
    use tranche_crypto::{sign_transaction, KdfParams, KeyFile};
    use tranche_node::{NodeConfig, Peer};
    use tranche_types::{
        Govern, GovernanceAction, Payload, Role, RoleChange, Timestamp, Transaction,
    };

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    // Apart from the ports of the other tests of this file.
    let base = 10_000 + (std::process::id() % 900) as u16 * 10;
    let exe = Path::new(env!("CARGO_BIN_EXE_tranche"));
    let mut devnet = nodes_only(&dir, base);
    let file = devnet.file().clone();
    let apis: Vec<String> = file.nodes.iter().map(|n| n.api.clone()).collect();
    let validators: Vec<Peer> = file
        .nodes
        .iter()
        .filter(|n| n.validator)
        .map(|n| Peer {
            key: devnet.open_key(&n.org).unwrap().public_key(),
            address: n.p2p.parse().unwrap(),
        })
        .collect();

    // A stranger's node, its key held by no organisation, configured with
    // every validator; the TSP's validator lists it too (restarted to
    // read it).
    let stranger = tranche_testkit::key(0x5a);
    let password = std::fs::read_to_string(dir.join("password")).unwrap();
    let sealed = KeyFile::seal(
        &stranger,
        password.as_bytes(),
        KdfParams::DEFAULT,
        &mut OsRng,
    )
    .unwrap();
    let stranger_dir = dir.join("stranger");
    std::fs::create_dir_all(&stranger_dir).unwrap();
    std::fs::write(stranger_dir.join("node.key"), sealed.to_json()).unwrap();
    let stranger_p2p: std::net::SocketAddr = ([127, 0, 0, 1], base + 9).into();
    let stranger_api = format!("http://127.0.0.1:{}", base + 109);
    let config = NodeConfig {
        genesis: dir.join("genesis.json"),
        key: stranger_dir.join("node.key"),
        password_file: Some(dir.join("password")),
        data_dir: stranger_dir.join("data"),
        p2p_listen: stranger_p2p,
        api_listen: ([127, 0, 0, 1], base + 109).into(),
        peers: validators,
        tls: None,
        min_free_disk_mb: None,
    };
    std::fs::write(stranger_dir.join("node.toml"), config.to_toml()).unwrap();
    let tsp_config = Path::new(&file.nodes[0].config);
    let mut tsp = NodeConfig::load(tsp_config).unwrap();
    tsp.peers.push(Peer {
        key: stranger.public_key(),
        address: stranger_p2p,
    });
    std::fs::write(tsp_config, tsp.to_toml()).unwrap();
    devnet.kill_node(0).unwrap();
    devnet.restart_node(0).unwrap();
    let mut stranger_node = Command::new(exe)
        .args(["node", "--config"])
        .arg(stranger_dir.join("node.toml"))
        .stdout(std::fs::File::create(stranger_dir.join("node.log")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    wait_for("the stranger's node API", || {
        status(&stranger_api).is_some()
    });
    wait_for("the TSP's validator to catch up", || {
        height(&apis[0]) + 2 >= height(&apis[1])
    });
    let from = height(&apis[1]);
    wait_for("twenty more blocks", || height(&apis[1]) >= from + 20);
    assert_eq!(
        height(&stranger_api),
        0,
        "a key not admitted follows nothing"
    );
    let tsp_log = std::fs::read_to_string(&file.nodes[0].log).unwrap();
    assert!(
        tsp_log.contains("not admitted by the chain"),
        "the validator says why it refuses the configured stranger"
    );
    // The custodian's node, admitted, follows.
    wait_for("the custodian's node to follow", || {
        height(&apis[4]) + 2 >= height(&apis[1])
    });

    // Governance (three of the four governors) revokes the custodian's
    // only role.
    let client = tranche_api::client::BlockingNodeClient::new(&apis[1], None).unwrap();
    let action = GovernanceAction::Revoke(RoleChange {
        org: "devnet-custodian".parse().unwrap(),
        role: Role::Custodian,
    });
    #[allow(clippy::disallowed_methods)] // a test's wall clock
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut last = None;
    for org in ["devnet-tsp", "devnet-issuer", "devnet-exchange"] {
        let key = devnet.open_key(org).unwrap();
        let signer = key.public_key();
        let nonce = client.run(|c| c.next_nonce(&signer)).unwrap();
        let stx = sign_transaction(
            &key,
            Transaction {
                chain_id: tranche_devnet::CHAIN_ID.parse().unwrap(),
                signer: key.public_key(),
                nonce,
                valid_until: Timestamp(now).plus_ms(600_000),
                payload: Payload::Govern(Govern {
                    action: action.clone(),
                }),
            },
        )
        .unwrap();
        last = Some(client.run(|c| c.submit(&stx)).unwrap().hash);
    }
    let last = last.unwrap();
    let record = client
        .run(|c| c.wait(&last, Duration::from_secs(60)))
        .unwrap()
        .expect("the third vote is final");
    let revoked_at = record.height;
    // Dropped: the custodian's node gets nothing past the revocation (a
    // block or two in flight at most) while the validators go on.
    wait_for("twenty blocks after the revocation", || {
        height(&apis[1]) >= revoked_at + 20
    });
    let stuck = height(&apis[4]);
    assert!(
        stuck <= revoked_at + 2,
        "the removed organisation's node stopped at {stuck}, the revocation was final at {revoked_at}"
    );
    let from = height(&apis[1]);
    wait_for("ten more blocks", || height(&apis[1]) >= from + 10);
    assert_eq!(height(&apis[4]), stuck, "and it stays cut off");
    assert_eq!(height(&stranger_api), 0);
    let _ = stranger_node.kill();
    let _ = stranger_node.wait();
    devnet.stop();
}

/// A validator whose disk runs short of space stops, saying why, before a
/// write can fail; the others go on; once space is freed it starts again
/// from the last block it stored, loses nothing it reported final, and
/// catches up to the same state root.
#[test]
fn a_validator_short_of_disk_stops_cleanly_and_resumes_once_space_is_freed() {
    use std::io::Write as _;
    use tranche_node::disk::free_mb;
    use tranche_node::NodeConfig;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    // Apart from the ports of the other tests of this file.
    let base = 10_000 + ((std::process::id() + 450) % 900) as u16 * 10;
    let mut devnet = nodes_only(&dir, base);
    let file = devnet.file().clone();
    let apis: Vec<String> = file.nodes.iter().map(|n| n.api.clone()).collect();

    // The regulator's validator keeps all but 200 MiB of what is free now.
    let config_path = Path::new(&file.nodes[3].config);
    let mut config = NodeConfig::load(config_path).unwrap();
    let free = free_mb(&config.data_dir).unwrap();
    assert!(free > 1_000, "the test needs 1 GiB free; {free} MiB are");
    config.min_free_disk_mb = Some(free - 200);
    std::fs::write(config_path, config.to_toml()).unwrap();
    // Stopped as an operator would: it writes down the state after its
    // last block, so its start executes no block again.
    assert!(devnet.stop_node(3).unwrap().success());
    devnet.restart_node(3).unwrap();
    wait_for("the restarted validator to read its state back", || {
        let log = std::fs::read_to_string(&file.nodes[3].log).unwrap();
        log.contains("state read back")
    });
    let log = std::fs::read_to_string(&file.nodes[3].log).unwrap();
    assert!(log.contains("state checkpoint written"), "{log}");
    let read_back = log.lines().find(|l| l.contains("state read back")).unwrap();
    assert!(read_back.contains("executed_again=0"), "{read_back}");
    wait_for("the regulator's validator to catch up", || {
        height(&apis[3]) > 0 && height(&apis[3]) + 2 >= height(&apis[0])
    });
    let reported = height(&apis[3]);

    // Another program fills the disk: 400 MiB.
    let ballast_path = dir.join("ballast");
    let mut ballast = std::fs::File::create(&ballast_path).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    for _ in 0..400 {
        ballast.write_all(&chunk).unwrap();
    }
    ballast.sync_all().unwrap();
    drop(ballast);
    let mut exited = Vec::new();
    wait_for("the validator short of space to stop", || {
        exited.extend(devnet.newly_exited());
        !exited.is_empty()
    });
    let (org, exit, _) = &exited[0];
    assert_eq!(org, "devnet-regulator");
    assert!(!exit.success(), "it stops with an error status");
    let log = std::fs::read_to_string(&file.nodes[3].log).unwrap();
    assert!(
        log.contains("MiB free, under the") && log.contains("min_free_disk_mb"),
        "it says why in its log"
    );
    // The other three go on without it.
    let from = height(&apis[0]);
    wait_for("the others to go on", || height(&apis[0]) >= from + 10);

    // Space freed, it starts again where it left off and catches up.
    std::fs::remove_file(&ballast_path).unwrap();
    devnet.restart_node(3).unwrap();
    wait_for("the restarted validator's API", || {
        status(&apis[3]).is_some()
    });
    assert!(
        height(&apis[3]) >= reported,
        "nothing it reported final before stopping is lost"
    );
    wait_for("the restarted validator to catch up", || {
        height(&apis[3]) + 2 >= height(&apis[0])
    });
    let common = height(&apis[3]).min(height(&apis[0]));
    assert_eq!(root_at(&apis[3], common), root_at(&apis[0], common));
    devnet.stop();
}
