//! Drives the `tranche` binary as a person would: keys, offline signing,
//! inspection, and the errors for wrong passwords, tampered files and
//! transactions moved to another chain.

use std::path::Path;

mod support;

use support::Env;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_new_key_signs_offline_and_inspect_verifies_it() {
    let env = Env::new();
    let unsigned = env.transfer_file();
    env.ok(&[
        "tx",
        "sign",
        s(&unsigned),
        "--key",
        "alice",
        "--password-file",
        "pw",
        "--out",
        "s.json",
    ]);
    let report = env.json(&["tx", "inspect", "s.json"]);
    assert_eq!(report["valid"], true);
    let alice = env.json(&["key", "show", "alice"]);
    assert_eq!(report["signer_address"], alice["address"]);
    assert_eq!(report["transaction"]["tx"]["payload"]["amount"], "10");
    let text = env.ok(&["tx", "inspect", "s.json", "--chain-id", "alpha"]);
    assert!(text.contains("verified     yes"), "{text}");
}

#[test]
fn hex_and_binary_forms_inspect_alike() {
    let env = Env::new();
    let unsigned = env.transfer_file();
    for (format, file) in [("hex", "s.hex"), ("binary", "s.bin"), ("json", "s.json")] {
        env.ok(&[
            "tx",
            "sign",
            s(&unsigned),
            "--key",
            "alice",
            "--password-file",
            "pw",
            "--format",
            format,
            "--out",
            file,
        ]);
    }
    let hashes: Vec<_> = ["s.hex", "s.bin", "s.json"]
        .iter()
        .map(|f| env.json(&["tx", "inspect", f])["hash"].clone())
        .collect();
    assert_eq!(hashes[0], hashes[1]);
    assert_eq!(hashes[1], hashes[2]);
}

#[test]
fn a_transaction_for_one_chain_fails_under_another() {
    let env = Env::new();
    let unsigned = env.transfer_file();
    env.ok(&[
        "tx",
        "sign",
        s(&unsigned),
        "--key",
        "alice",
        "--password-file",
        "pw",
        "--out",
        "s.json",
    ]);
    let out = env.fails(&["tx", "inspect", "s.json", "--chain-id", "beta"]);
    assert!(
        out.contains("is for chain \"alpha\", not \"beta\""),
        "{out}"
    );

    // Editing the chain id in the file breaks the signature.
    let text = std::fs::read_to_string(env.path("s.json")).unwrap();
    std::fs::write(
        env.path("moved.json"),
        text.replace("\"alpha\"", "\"beta\""),
    )
    .unwrap();
    let out = env.fails(&["tx", "inspect", "moved.json", "--chain-id", "beta"]);
    assert!(out.contains("signature does not verify"), "{out}");
}

#[test]
fn a_wrong_password_is_named_as_such() {
    let env = Env::new();
    let unsigned = env.transfer_file();
    let out = env.fails(&[
        "tx",
        "sign",
        s(&unsigned),
        "--key",
        "alice",
        "--password-file",
        "wrong-pw",
    ]);
    assert!(out.contains("wrong password"), "{out}");
    assert!(
        out.contains("alice.json"),
        "the error names the key file: {out}"
    );
}

#[test]
fn a_tampered_key_file_is_named_as_such() {
    let env = Env::new();
    let unsigned = env.transfer_file();
    let key_path = env.path("home/keys/alice.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    let ct = file["cipher"]["ciphertext"].as_str().unwrap().to_string();
    let flipped = if ct.starts_with('0') { "1" } else { "0" }.to_string() + &ct[1..];
    file["cipher"]["ciphertext"] = flipped.into();
    std::fs::write(&key_path, serde_json::to_string(&file).unwrap()).unwrap();
    let out = env.fails(&[
        "tx",
        "sign",
        s(&unsigned),
        "--key",
        "alice",
        "--password-file",
        "pw",
    ]);
    assert!(out.contains("altered or damaged"), "{out}");

    std::fs::write(&key_path, "{\"version\": 1}").unwrap();
    let out = env.fails(&[
        "tx",
        "sign",
        s(&unsigned),
        "--key",
        "alice",
        "--password-file",
        "pw",
    ]);
    assert!(
        out.contains("alice.json") && out.contains("missing field"),
        "{out}"
    );
}

#[test]
fn signing_with_someone_elses_key_is_refused() {
    let env = Env::new();
    let unsigned = env.transfer_file();
    let out = env.fails(&[
        "tx",
        "sign",
        s(&unsigned),
        "--key",
        "bob",
        "--password-file",
        "pw",
    ]);
    assert!(out.contains("use the signer's key"), "{out}");
}

#[test]
fn keys_are_never_overwritten_and_never_in_clear() {
    let env = Env::new();
    env.ok(&["key", "new", "alice", "--password-file", "pw"]);
    let before = std::fs::read(env.path("home/keys/alice.json")).unwrap();
    let out = env.fails(&["key", "new", "alice", "--password-file", "pw"]);
    assert!(out.contains("already exists"), "{out}");
    assert_eq!(
        std::fs::read(env.path("home/keys/alice.json")).unwrap(),
        before
    );
    let file: serde_json::Value = serde_json::from_slice(&before).unwrap();
    assert!(file.get("secret_key").is_none() && file.get("seed").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("home/keys/alice.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key files are private to their owner");
    }
}

#[test]
fn short_passwords_and_bad_names_are_refused() {
    let env = Env::new();
    std::fs::write(env.path("short"), "abc\n").unwrap();
    let out = env.fails(&["key", "new", "alice", "--password-file", "short"]);
    assert!(out.contains("shorter than 8"), "{out}");
    let out = env.fails(&["key", "new", "../evil", "--password-file", "pw"]);
    assert!(out.contains("invalid key name"), "{out}");
}

#[test]
fn list_and_export_public_show_no_secret() {
    let env = Env::new();
    env.ok(&["key", "new", "alice", "--password-file", "pw"]);
    let list = env.json(&["key", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    env.ok(&["key", "export-public", "alice", "--out", "alice.pub.json"]);
    let public: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("alice.pub.json")).unwrap())
            .unwrap();
    assert_eq!(public["address"], list[0]["address"]);
    assert!(public.get("cipher").is_none());
}

#[test]
fn bad_transaction_files_get_clear_errors() {
    let env = Env::new();
    env.ok(&["key", "new", "alice", "--password-file", "pw"]);
    std::fs::write(env.path("empty.json"), "{}").unwrap();
    let out = env.fails(&[
        "tx",
        "sign",
        "empty.json",
        "--key",
        "alice",
        "--password-file",
        "pw",
    ]);
    assert!(
        out.contains("empty.json") && out.contains("missing field"),
        "{out}"
    );

    std::fs::write(env.path("junk.bin"), [0xffu8; 40]).unwrap();
    let out = env.fails(&["tx", "inspect", "junk.bin"]);
    assert!(
        out.contains("junk.bin") && out.contains("not a signed transaction"),
        "{out}"
    );

    let out = env.fails(&["tx", "inspect", "missing.json"]);
    assert!(out.contains("cannot open missing.json"), "{out}");

    let out = env.fails(&[
        "tx",
        "build",
        "transfer",
        "--chain-id",
        "alpha",
        "--key",
        "alice",
        "--nonce",
        "1",
        "--token",
        "T",
        "--to",
        "tr1notanaddress",
        "--amount",
        "1",
    ]);
    assert!(out.contains("checksummed address"), "{out}");
}

#[test]
fn every_command_has_help_with_an_example() {
    let env = Env::new();
    for cmd in [
        &["did", "new"][..],
        &["did", "show"],
        &["vc", "issue"],
        &["vc", "verify"],
        &["vc", "status-list"],
        &["vp", "present"],
        &["vp", "verify"],
        &["bench", "matching"],
        &["bench", "ledger"],
        &["bench", "offering"],
        &["bench", "custody"],
        &["did", "authorize-transfer"],
        &["sim"],
        &["key", "new"],
        &["key", "list"],
        &["key", "show"],
        &["key", "export-public"],
        &["tx", "build", "transfer"],
        &["tx", "build", "payload"],
        &["tx", "sign"],
        &["tx", "inspect"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = env.ok(&args);
        assert!(
            help.contains("Example:"),
            "{cmd:?} --help lacks an example:\n{help}"
        );
    }
}

#[test]
fn bench_matching_ends_with_one_json_line() {
    let env = Env::new();
    let out = env.ok(&[
        "bench", "matching", "--sizes", "100,300", "--ops", "2000", "--rounds", "1",
    ]);
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["bench"], "matching");
    for key in [
        "ops_per_s",
        "baseline_ops_per_s",
        "p50_ns",
        "p99_ns",
        "p99_9_ns",
    ] {
        assert!(v[key].as_u64().is_some_and(|n| n > 0), "{key} in {last}");
    }
    assert!(v["ratio"].as_f64().is_some_and(|r| r > 0.0), "{last}");
    assert_eq!(
        out.lines().count(),
        3,
        "one line per size, then the summary:\n{out}"
    );
}

#[test]
fn bench_ledger_applies_every_transfer_and_ends_with_one_json_line() {
    let env = Env::new();
    let out = env.ok(&[
        "bench",
        "ledger",
        "--holders",
        "10",
        "--txs",
        "100",
        "--block",
        "25",
        "--rounds",
        "1",
    ]);
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["bench"], "ledger");
    assert!(v["tx_per_s"].as_u64().is_some_and(|n| n > 0), "{last}");
    assert!(
        v["verify_only_per_s"].as_u64().is_some_and(|n| n > 0),
        "{last}"
    );
    assert!(v["ratio"].as_f64().is_some_and(|r| r > 0.0), "{last}");
}

#[test]
fn bench_state_measures_blocks_and_a_restart_of_two_sizes_and_ends_with_one_json_line() {
    let env = Env::new();
    // Each size in processes of its own: the blocks (stored, then the
    // state's checkpoint written) and a restart that must read back the
    // last block's root, or the bench fails.
    let out = env.ok(&[
        "bench",
        "state",
        "--holders",
        "1000,2000",
        "--blocks",
        "2",
        "--block",
        "50",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "a line per size, then the summary:\n{out}");
    assert!(lines[1].contains("2000 holders,    2 tokens"), "{out}");
    assert!(lines[0].contains("checkpoint"), "{out}");
    let v: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(v["bench"], "state");
    assert_eq!(v["holders_max"], 2000);
    for field in [
        "block_ms_small",
        "block_ms_large",
        "ratio",
        "restart_ms_large",
    ] {
        assert!(v[field].as_f64().is_some_and(|x| x > 0.0), "{field}: {out}");
    }
}

#[test]
fn bench_offering_carries_an_offering_through_the_services_and_ends_with_one_json_line() {
    let env = Env::new();
    // Below the ephemeral ports (32768 and up), where a client socket could
    // hold one.
    let base = 17_600 + (std::process::id() % 200) as u16 * 10;
    let out = env.ok(&[
        "bench",
        "offering",
        "--investors",
        "12",
        "--clients",
        "4",
        "--window-secs",
        "20",
        "--base-port",
        &base.to_string(),
    ]);
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["bench"], "offering");
    assert_eq!(v["investors"], 12);
    for key in [
        "subscriptions_per_s",
        "transfer_per_s",
        "close_to_payout_ms",
    ] {
        assert!(v[key].as_u64().is_some_and(|n| n > 0), "{key} in {last}");
    }
    assert!(v["ratio"].as_f64().is_some_and(|r| r > 0.0), "{last}");
}

#[test]
fn bench_custody_moves_through_the_custodian_and_ends_with_one_json_line() {
    let env = Env::new();
    let base = 14_500 + (std::process::id() % 250) as u16 * 10;
    let out = env.ok(&[
        "bench",
        "custody",
        "--holders",
        "12",
        "--clients",
        "4",
        "--base-port",
        &base.to_string(),
    ]);
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["bench"], "custody");
    assert_eq!(v["holders"], 12);
    for key in ["cosigned_per_s", "plain_per_s"] {
        assert!(v[key].as_u64().is_some_and(|n| n > 0), "{key} in {last}");
    }
    for key in ["notice_p50_ms", "notice_p99_ms"] {
        assert!(v[key].as_u64().is_some(), "{key} in {last}");
    }
    assert!(v["notice_p50_ms"].as_u64() <= v["notice_p99_ms"].as_u64());
    assert!(v["ratio"].as_f64().is_some_and(|r| r > 0.0), "{last}");
}

#[test]
fn bench_reconcile_reconciles_every_transfer_clean_and_ends_with_one_json_line() {
    let env = Env::new();
    // Clear of the other benches' ports, which run beside it.
    let base = 20_000 + (std::process::id() % 900) as u16 * 10;
    let out = env.ok(&[
        "bench",
        "reconcile",
        "--transfers",
        "200",
        "--base-port",
        &base.to_string(),
    ]);
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["bench"], "reconcile", "{last}");
    // The issuance to the 200 wallets, then the transfers.
    assert_eq!(v["transfers"], 400, "{last}");
    for key in ["transfers_per_s", "read_only_per_s", "reports"] {
        assert!(v[key].as_u64().is_some_and(|n| n > 0), "{key} in {last}");
    }
    assert!(v["ratio"].as_f64().is_some_and(|r| r > 0.0), "{last}");
}

#[test]
fn bench_exchange_trades_over_websockets_settles_on_chain_and_ends_with_one_json_line() {
    let env = Env::new();
    // Clear of the other benches' ports, which run beside it.
    let base = 10_000 + (std::process::id() % 300) as u16 * 10;
    let out = env.ok(&[
        "bench",
        "exchange",
        "--traders",
        "4",
        "--orders",
        "60",
        "--base-port",
        &base.to_string(),
    ]);
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(
        (&v["bench"], &v["orders"]),
        (&serde_json::json!("exchange"), &serde_json::json!(60)),
        "{last}"
    );
    for key in ["orders_per_s", "engine_orders_per_s", "trades"] {
        assert!(v[key].as_u64().is_some_and(|n| n > 0), "{key} in {last}");
    }
    assert!(
        v["ack_p50_us"].as_u64() <= v["ack_p99_us"].as_u64(),
        "{last}"
    );
    assert!(
        v["settle_p50_ms"].as_u64() <= v["settle_p99_ms"].as_u64(),
        "{last}"
    );
}

// --- Identity: did, vc, vp (SR-5) -------------------------------------------

fn did_of(env: &Env, name: &str) -> String {
    env.json(&["did", "show", name])["did"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_w3c_credential_verifies_through_vc_verify() {
    let env = Env::new();
    let vector = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/identity/tests/data/signedJCS.json"
    );
    let out = env.ok(&["vc", "verify", vector]);
    assert!(out.starts_with("valid"), "{out}");
    // Trust is checked only when asked for: this issuer is not on the list.
    let out = env.fails(&[
        "vc",
        "verify",
        vector,
        "--trusted-issuer",
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
    ]);
    assert!(out.contains("not trusted"), "{out}");
}

#[test]
fn credentials_and_presentations_through_the_cli_and_every_tampering_fails_distinctly() {
    let env = Env::new();
    let kyc = env.json(&["did", "new", "kyc-co", "--password-file", "pw"])["did"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&["did", "new", "alice", "--password-file", "pw"]);
    let alice = did_of(&env, "alice");
    assert!(alice.starts_with("did:key:z6Mk"));
    let list_url = "https://kyc.example/status/1";
    env.ok(&[
        "vc",
        "status-list",
        "--key",
        "kyc-co",
        "--password-file",
        "pw",
        "--url",
        list_url,
        "--out",
        "list.json",
    ]);
    env.ok(&[
        "vc",
        "issue",
        "--key",
        "kyc-co",
        "--password-file",
        "pw",
        "--subject",
        &alice,
        "--kind",
        "kyc",
        "--level",
        "high",
        "--valid-until",
        "2099-01-01T00:00:00Z",
        "--status-list",
        list_url,
        "--status-index",
        "7",
        "--out",
        "kyc.json",
    ]);
    env.ok(&[
        "vc",
        "verify",
        "kyc.json",
        "--trusted-issuer",
        &kyc,
        "--status-list",
        "list.json",
    ]);
    env.ok(&[
        "vp",
        "present",
        "--key",
        "alice",
        "--password-file",
        "pw",
        "--challenge",
        "c-1",
        "--domain",
        "exchange.example",
        "kyc.json",
        "--out",
        "vp.json",
    ]);
    let verify = |file: &str, challenge: &str, extra: &[&str]| {
        let mut args = vec![
            "vp",
            "verify",
            file,
            "--challenge",
            challenge,
            "--domain",
            "exchange.example",
            "--status-list",
            "list.json",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&refs)
    };
    let ok = run(verify("vp.json", "c-1", &["--trusted-issuer", &kyc]));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let mut reasons = Vec::new();
    let mut fails = |args: Vec<String>| {
        let out = run(args);
        assert!(!out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("INVALID"), "{text}");
        reasons.push(text);
    };
    fails(verify("vp.json", "c-2", &[]));
    fails(verify("vp.json", "c-1", &["--trusted-issuer", &alice]));
    fails(verify("vp.json", "c-1", &["--at", "2100-01-01T00:00:00Z"]));
    let vp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("vp.json")).unwrap()).unwrap();
    let mut tampered = vp.clone();
    tampered["verifiableCredential"][0]["credentialSubject"]["kycAssuranceLevel"] = "low".into();
    std::fs::write(env.path("t1.json"), tampered.to_string()).unwrap();
    fails(verify("t1.json", "c-1", &[]));
    let mut tampered = vp.clone();
    tampered["proof"]["cryptosuite"] = "ecdsa-rdfc-2019".into();
    std::fs::write(env.path("t2.json"), tampered.to_string()).unwrap();
    fails(verify("t2.json", "c-1", &[]));
    let mut tampered = vp;
    tampered["proof"]["proofPurpose"] = "assertionMethod".into();
    std::fs::write(env.path("t3.json"), tampered.to_string()).unwrap();
    fails(verify("t3.json", "c-1", &[]));
    // Revoke entry 7: the same presentation now fails on status.
    env.ok(&[
        "vc",
        "status-list",
        "--key",
        "kyc-co",
        "--password-file",
        "pw",
        "--url",
        list_url,
        "--from",
        "list.json",
        "--revoke",
        "7",
        "--out",
        "list.json",
    ]);
    fails(verify("vp.json", "c-1", &[]));
    let distinct: std::collections::BTreeSet<_> = reasons.iter().collect();
    assert_eq!(
        distinct.len(),
        reasons.len(),
        "every failure says something different: {reasons:#?}"
    );
    assert!(reasons[0].contains("challenge"));
    assert!(reasons[1].contains("not trusted"));
    assert!(reasons[2].contains("expired"));
    assert!(reasons[3].contains("signature does not verify"));
    assert!(reasons[4].contains("unsupported cryptosuite"));
    assert!(reasons[5].contains("authentication"));
    assert!(reasons[6].contains("revoked"));
}

#[test]
fn vc_issue_explains_what_a_kind_needs() {
    let env = Env::new();
    env.ok(&["did", "new", "kyc-co", "--password-file", "pw"]);
    let out = env.fails(&[
        "vc",
        "issue",
        "--key",
        "kyc-co",
        "--password-file",
        "pw",
        "--subject",
        "did:key:z6Mkx",
        "--kind",
        "jurisdiction",
    ]);
    assert!(out.contains("needs --country"), "{out}");
    let out = env.fails(&[
        "vc",
        "issue",
        "--key",
        "kyc-co",
        "--password-file",
        "pw",
        "--subject",
        "alice",
        "--kind",
        "accredited-investor",
    ]);
    assert!(out.contains("must be a DID"), "{out}");
    std::fs::write(env.path("junk.json"), "{").unwrap();
    let out = env.fails(&["vc", "verify", "junk.json"]);
    assert!(
        out.contains("junk.json") && out.contains("not a credential"),
        "{out}"
    );
}

#[test]
fn a_payload_builds_signs_and_inspects_and_an_impossible_currency_is_refused() {
    let env = Env::new();
    env.ok(&["key", "new", "alice", "--password-file", "pw"]);
    let payload = r#"{"type": "register_asset", "asset": "A-17",
        "owner": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "kind": "to_be_created",
        "description": "0101010101010101010101010101010101010101010101010101010101010101",
        "price": {"minor": "10000000", "currency": {"code": "USD", "kind": "fiat", "decimals": 2}}}"#;
    env.build_payload(payload, "alice", "3", "t.json");
    env.ok(&[
        "tx",
        "sign",
        "t.json",
        "--key",
        "alice",
        "--password-file",
        "pw",
        "--out",
        "s.json",
    ]);
    let report = env.json(&["tx", "inspect", "s.json"]);
    assert_eq!(report["valid"], true);
    assert_eq!(
        report["transaction"]["tx"]["payload"]["type"],
        "register_asset"
    );
    // A currency with impossible decimals is refused before anything is signed.
    std::fs::write(
        env.path("bad.json"),
        payload.replace("\"decimals\": 2", "\"decimals\": 200"),
    )
    .unwrap();
    let out = env.fails(&[
        "tx",
        "build",
        "payload",
        "bad.json",
        "--chain-id",
        "alpha",
        "--key",
        "alice",
        "--nonce",
        "3",
    ]);
    assert!(
        out.contains("bad.json") && out.contains("decimals"),
        "{out}"
    );
}

#[test]
fn sim_runs_seeds_and_reports_them() {
    let env = Env::new();
    let out = env.ok(&["sim", "--seeds", "2", "--validators", "4", "--txs", "3"]);
    assert!(
        out.contains("seed 1: 4 validators agree on every block"),
        "{out}"
    );
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("2 passed, 0 failed in "), "{out}");
    let out = env.fails(&["sim", "--validators", "4", "--down", "2"]);
    assert!(out.contains("no BFT quorum"), "{out}");
}

#[test]
fn bench_chain_survives_a_validator_killed_twice() {
    let env = Env::new();
    // Below the ephemeral ports, clear of this binary's other devnets.
    let base = 13_250 + (std::process::id() % 40) as u16 * 25;
    let out = env.ok(&[
        "bench",
        "chain",
        "--senders",
        "50",
        "--per-sender",
        "20",
        "--clients",
        "4",
        "--batch",
        "20",
        "--rate",
        "400",
        "--kill",
        "--base-port",
        &base.to_string(),
    ]);
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["bench"], "chain");
    // Every transfer finalized, none twice, through two kills; the
    // restarted validator ends on the others' state root.
    assert_eq!(v["transfers"], 1000, "{out}");
    assert_eq!(v["kills"], 2, "{out}");
    assert_eq!(v["finalized_twice"], 0, "{out}");
    assert_eq!(v["same_state_root"], true, "{out}");
}
