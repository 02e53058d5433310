//! The OpenAPI document the node serves describes every route it has.

use std::collections::BTreeSet;

#[test]
fn the_openapi_document_lists_exactly_the_routes() {
    let doc: serde_json::Value = serde_json::from_str(tranche_node::api::OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let served: BTreeSet<String> = tranche_node::api::ROUTES
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(documented, served);
}
