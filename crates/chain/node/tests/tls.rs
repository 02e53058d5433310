//! The node API over TLS: a client that trusts the certificate gets answers;
//! plain HTTP to the TLS port gets none; unusable files are refused clearly.

use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tranche_api::tls::{server_config, TlsListener};

fn identity(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    CertificateDer<'static>,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.join("api.crt");
    let key_path = dir.join("api.key");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.cert.der().clone())
}

async fn serve(config: Arc<tokio_rustls::rustls::ServerConfig>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = TlsListener::new(listener, config).unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let app = axum::Router::new().route("/status", axum::routing::get(|| async { "finalized" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn a_client_trusting_the_certificate_gets_answers_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = identity(dir.path());
    let addr = serve(server_config(&cert, &key).unwrap()).await;

    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("finalized"), "{answer}");

    // Plain HTTP to the TLS port: no HTTP answer comes back.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut buf),
    )
    .await;
    assert!(!String::from_utf8_lossy(&buf).contains("finalized"));
}

#[test]
fn unusable_tls_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = identity(dir.path());
    let missing = dir.path().join("missing.pem");
    let err = server_config(&missing, &key).unwrap_err();
    assert!(err.contains("cannot read the certificate"), "{err}");
    let err = server_config(&cert, &missing).unwrap_err();
    assert!(err.contains("cannot read the private key"), "{err}");
    // A certificate with another key's private key is no identity.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_key, _) = identity(&other);
    let err = server_config(&cert, &other_key).unwrap_err();
    assert!(err.contains("do not make a TLS identity"), "{err}");
}

#[tokio::test]
async fn the_typed_client_trusts_a_private_ca_and_nothing_else() {
    use tranche_api::client::{ClientError, NodeClient};
    use tranche_api::node::Status;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = identity(dir.path());
    let status = Status {
        chain_id: "tranche-tls".parse().unwrap(),
        org: None,
        key: tranche_types::PublicKey([3; 32]),
        finalized_height: 7,
        block_hash: tranche_types::Hash([1; 32]),
        block_time: tranche_types::Timestamp(1),
        state_root: tranche_types::Hash([2; 32]),
        epoch: 0,
        validating: false,
        validators: Vec::new(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = TlsListener::new(listener, server_config(&cert, &key).unwrap()).unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let answer = status.clone();
    let app = axum::Router::new().route(
        "/status",
        axum::routing::get(move || async move { axum::Json(answer) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let url = format!("https://localhost:{}", addr.port());
    let pem = std::fs::read(&cert).unwrap();
    let trusting = NodeClient::new(&url, Some(&pem)).unwrap();
    assert_eq!(trusting.status().await.unwrap(), status);
    let stranger = NodeClient::new(&url, None).unwrap();
    assert!(matches!(
        stranger.status().await,
        Err(ClientError::Unreachable { .. })
    ));
}
