//! `cargo xtask features`: every product crate builds with each of its features alone.
//!
//! Workspace-wide builds merge features, which hides a feature that forgot to enable what it uses.
//! So each product crate is checked on its own, once with `--no-default-features` and once per feature
//! in its `[features]` table (`default` included), read from `cargo metadata`.
//! Crates without features are skipped: their only configuration is already built by clippy and test.

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::{cargo, output, run_cmd};

/// The crates users depend on, innermost first.
pub(crate) const PRODUCT: &[&str] = &[
    "mssql-entra-connstr",
    "mssql-entra-token",
    "mssql-entra-odbc",
    "mssql-entra",
    "mssql-entra-cli",
];

pub(crate) fn run_all() -> Result<()> {
    let metadata = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let metadata: Value = serde_json::from_str(&metadata).context("parsing `cargo metadata`")?;
    for (package, features) in feature_matrix(&metadata)? {
        if features.is_empty() {
            eprintln!("    {package}: no features, skipped");
            continue;
        }
        let check = |extra: &[&str]| {
            run_cmd(
                cargo()
                    .args(["check", "--quiet", "-p", package, "--no-default-features"])
                    .args(extra),
            )
        };
        eprintln!("    {package}: --no-default-features");
        check(&[])?;
        for feature in &features {
            eprintln!("    {package}: --no-default-features --features {feature}");
            check(&["--features", feature])?;
        }
    }
    Ok(())
}

/// Each product crate with its feature names, in `PRODUCT` order.
fn feature_matrix(metadata: &Value) -> Result<Vec<(&'static str, Vec<String>)>> {
    let packages = metadata["packages"]
        .as_array()
        .context("`cargo metadata` has no `packages`")?;
    PRODUCT
        .iter()
        .map(|&name| {
            let package = packages
                .iter()
                .find(|package| package["name"] == name)
                .with_context(|| format!("product crate `{name}` is not in the workspace"))?;
            let features = package["features"]
                .as_object()
                .map(|table| table.keys().cloned().collect())
                .unwrap_or_default();
            Ok((name, features))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_lists_each_product_crate_with_its_features() {
        let mut packages: Vec<Value> = PRODUCT
            .iter()
            .map(|name| serde_json::json!({ "name": name, "features": {} }))
            .collect();
        packages[3]["features"] = serde_json::json!({ "default": [], "auth-password": ["dep:x"] });
        let matrix = feature_matrix(&serde_json::json!({ "packages": packages })).unwrap();
        assert_eq!(matrix[0], ("mssql-entra-connstr", vec![]));
        assert_eq!(
            matrix[3],
            (
                "mssql-entra",
                vec!["auth-password".to_owned(), "default".to_owned()]
            )
        );
    }

    #[test]
    fn a_missing_product_crate_is_an_error() {
        let err = feature_matrix(&serde_json::json!({ "packages": [] })).unwrap_err();
        assert_eq!(
            err.to_string(),
            "product crate `mssql-entra-connstr` is not in the workspace"
        );
    }
}
