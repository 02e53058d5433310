//! One module per command group.

pub mod bench;
pub mod bench_ledger;
pub mod key;
pub mod tx;

/// Prints `value` as pretty JSON on standard output.
pub fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("output values always serialize")
    );
}
