//! Reading a store's records directly, as a test checks what berth wrote.

use super::TestRoot;

/// The store's `repositories.json`.
pub fn repositories(root: &TestRoot) -> serde_json::Value {
    let bytes = std::fs::read(root.path.join("repositories.json")).expect("repositories.json");
    serde_json::from_slice(&bytes).unwrap()
}

/// The image ID `canonical` (a full reference) is tagged to.
pub fn image_id(root: &TestRoot, canonical: &str) -> String {
    repositories(root)["tags"][canonical]
        .as_str()
        .unwrap_or_else(|| panic!("{canonical} is not tagged"))
        .to_string()
}
