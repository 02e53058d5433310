//! A client given several nodes moves on from one that cannot be reached
//! to the next, at once, and keeps calling the one that answers.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use tranche_api::client::BlockingNodeClient;

/// A node stand-in that answers every request with the API's "not found".
fn answering_node() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = r#"{"code":"not_found","message":"no such block"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

/// A port nothing listens on.
fn dead_node() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

#[test]
fn a_dead_node_is_passed_over_for_the_next() {
    let (dead, live) = (dead_node(), answering_node());
    let client = BlockingNodeClient::new(&format!("{dead}, {live}/"), None).unwrap();
    assert_eq!(client.inner().bases(), [dead.clone(), live.clone()]);
    assert_eq!(client.inner().base(), dead);
    #[allow(clippy::disallowed_methods)] // a test timing the failover
    let started = std::time::Instant::now();
    // The live node answers: no such block.
    assert_eq!(client.run(|c| c.block(1)).unwrap(), None);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // It stays on the node that answered.
    assert_eq!(client.inner().base(), live);
    assert_eq!(client.run(|c| c.block(2)).unwrap(), None);
}

#[test]
fn with_every_node_dead_the_call_fails_naming_one() {
    let client =
        BlockingNodeClient::new(&format!("{},{}", dead_node(), dead_node()), None).unwrap();
    let e = client.run(|c| c.block(1)).unwrap_err();
    assert!(e.to_string().contains("cannot reach the node"), "{e}");
}

#[test]
fn a_list_with_a_bad_url_is_refused() {
    assert!(BlockingNodeClient::new("http://127.0.0.1:1,ftp://x", None).is_err());
    let many = vec!["http://127.0.0.1:1"; 17].join(",");
    assert!(BlockingNodeClient::new(&many, None).is_err());
}
