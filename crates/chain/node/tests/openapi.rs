//! The OpenAPI document the node serves is generated from its handlers and
//! describes exactly the routes its router serves.

use std::collections::BTreeSet;

/// The paths a router really serves, read from its own description of its
/// route table (axum lists each route's path there; the fallback router's
/// table, after it, holds only the fallback).
fn served_paths<S>(router: &axum::Router<S>) -> BTreeSet<String> {
    let text = format!("{router:?}");
    let table = text
        .split("fallback_router")
        .next()
        .expect("split yields at least one part");
    let mut paths = BTreeSet::new();
    let mut rest = table;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at..];
        let Some(open) = rest.find(": \"") else { break };
        let after = &rest[open + 3..];
        let close = after.find('"').expect("a quoted path");
        paths.insert(after[..close].to_string());
        rest = &after[close..];
    }
    paths
}

fn documented_paths(doc: &utoipa::openapi::OpenApi) -> BTreeSet<String> {
    doc.paths.paths.keys().cloned().collect()
}

#[test]
fn the_openapi_document_describes_exactly_the_routes_served() {
    let (router, doc) = tranche_node::api::service();
    let served = served_paths(&router);
    assert!(served.len() >= 17, "the route table was read: {served:?}");
    assert_eq!(documented_paths(&doc), served);
    // The document is OpenAPI 3.1 and names its schemas.
    let json: serde_json::Value = serde_json::from_str(&doc.to_json().unwrap()).unwrap();
    assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    for schema in [
        "Status",
        "TransactionRecord",
        "WalletView",
        "TokenView",
        "ErrorBody",
    ] {
        assert!(
            json["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
}

#[test]
fn a_route_added_without_documentation_is_caught() {
    let (router, doc) = tranche_node::api::service();
    let router = router.route("/undocumented", axum::routing::get(|| async { "x" }));
    let served = served_paths(&router);
    assert!(served.contains("/undocumented"));
    assert_ne!(documented_paths(&doc), served);
}
