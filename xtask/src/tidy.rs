//! `cargo xtask tidy`: structural checks that no compiler enforces, also run by `cargo test -p xtask`.
//!
//! - Layering: dependencies run one way, connstr ← token ← odbc ← facade ← cli, and no product crate depends
//!   on the emulator, the test suites or xtask. Checked on the normal and build dependency graph of a full
//!   `cargo metadata --all-features` resolve, so an optional dependency behind any feature counts;
//!   dev-dependencies are excluded (tests may use anything).
//! - Docs: every library and binary root of every workspace crate opens with a `//!` comment saying what it does.

use std::{
    collections::{BTreeMap, VecDeque},
    fs,
};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::{cargo, output};

struct Rule {
    krate: &'static str,
    forbidden: &'static [&'static str],
    why: &'static str,
}

/// Never allowed in any product crate.
const NOT_IN_PRODUCT: &[&str] = &["mssql-entra-emulator", "mssql-entra-tests", "xtask"];

const RULES: &[Rule] = &[
    Rule {
        krate: "mssql-entra-connstr",
        forbidden: &[
            "mssql-entra-token",
            "mssql-entra-odbc",
            "mssql-entra",
            "mssql-entra-cli",
            "azure_*",
            "odbc-api",
            "odbc-sys",
            "tokio",
        ],
        why: "connection strings are pure text handling: no tokens, no ODBC, no I/O",
    },
    Rule {
        krate: "mssql-entra-token",
        forbidden: &[
            "mssql-entra-odbc",
            "mssql-entra",
            "mssql-entra-cli",
            "odbc-api",
            "odbc-sys",
        ],
        why: "token sources know nothing of ODBC",
    },
    Rule {
        krate: "mssql-entra-odbc",
        forbidden: &["mssql-entra", "mssql-entra-cli"],
        why: "the connector sits below the facade",
    },
    Rule {
        krate: "mssql-entra",
        forbidden: &["mssql-entra-cli"],
        why: "the facade sits below the command-line tool",
    },
    Rule {
        krate: "mssql-entra-cli",
        forbidden: &[],
        why: "the command-line tool is a product crate",
    },
];

pub(crate) fn run() -> Result<()> {
    let metadata = output(cargo().args(["metadata", "--format-version", "1", "--all-features"]))?;
    let metadata: Value = serde_json::from_str(&metadata).context("parsing `cargo metadata`")?;
    let mut problems = layering(&metadata)?;
    problems.extend(docs(&metadata)?);
    if !problems.is_empty() {
        bail!(
            "{} tidy problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// One line per forbidden dependency found, with the path that pulls it in.
fn layering(metadata: &Value) -> Result<Vec<String>> {
    let packages = metadata["packages"]
        .as_array()
        .context("`cargo metadata` has no `packages`")?;
    let name_of: BTreeMap<&str, &str> = packages
        .iter()
        .filter_map(|package| Some((package["id"].as_str()?, package["name"].as_str()?)))
        .collect();
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .context("`cargo metadata` has no `resolve` (ran with --no-deps?)")?;
    // id → ids of its normal and build dependencies.
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in nodes {
        let id = node["id"].as_str().context("resolve node without `id`")?;
        let deps = node["deps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let shipped = deps.iter().filter(|dep| {
            dep["dep_kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind["kind"] != "dev"))
        });
        edges.insert(id, shipped.filter_map(|dep| dep["pkg"].as_str()).collect());
    }

    let mut problems = Vec::new();
    for rule in RULES {
        let root = name_of
            .iter()
            .find(|(_, name)| **name == rule.krate)
            .map(|(id, _)| *id)
            .with_context(|| format!("product crate `{}` is not in the workspace", rule.krate))?;
        // Breadth-first, remembering how each crate was reached.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([root]);
        while let Some(id) = queue.pop_front() {
            for &dep in edges.get(id).map(Vec::as_slice).unwrap_or_default() {
                if dep != root && !parent.contains_key(dep) {
                    parent.insert(dep, id);
                    queue.push_back(dep);
                }
            }
        }
        for &id in parent.keys() {
            let name = name_of.get(id).copied().unwrap_or(id);
            let banned = rule
                .forbidden
                .iter()
                .chain(NOT_IN_PRODUCT)
                .any(|pattern| matches(pattern, name));
            if banned {
                let mut path = vec![name];
                let mut at = id;
                while let Some(&up) = parent.get(at) {
                    path.push(name_of.get(up).copied().unwrap_or(up));
                    at = up;
                }
                path.reverse();
                problems.push(format!(
                    "layering: `{}` depends on `{name}` ({}); {}",
                    rule.krate,
                    path.join(" -> "),
                    rule.why
                ));
            }
        }
    }
    Ok(problems)
}

/// One line per library or binary root that does not open with `//!`.
fn docs(metadata: &Value) -> Result<Vec<String>> {
    let members = metadata["workspace_members"]
        .as_array()
        .context("`cargo metadata` has no `workspace_members`")?;
    let packages = metadata["packages"]
        .as_array()
        .context("`cargo metadata` has no `packages`")?;
    let mut problems = Vec::new();
    for package in packages
        .iter()
        .filter(|package| members.contains(&package["id"]))
    {
        let targets = package["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for target in targets {
            let kinds = target["kind"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if !kinds.iter().any(|kind| {
                ["lib", "bin", "proc-macro", "rlib", "cdylib"]
                    .iter()
                    .any(|k| kind == k)
            }) {
                continue;
            }
            let path = target["src_path"]
                .as_str()
                .context("target without `src_path`")?;
            let text = fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            if !text.starts_with("//!") {
                problems.push(format!(
                    "docs: {path} must open with a `//!` paragraph saying what the crate does and does not do"
                ));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The real workspace passes: this is what makes `cargo test` enforce the invariants.
    #[test]
    fn tidy() {
        if let Err(err) = run() {
            panic!("{err:#}");
        }
    }

    fn workspace(extra_edges: &[(&str, &str, &str)]) -> Value {
        let names = [
            "mssql-entra-connstr",
            "mssql-entra-token",
            "mssql-entra-odbc",
            "mssql-entra",
            "mssql-entra-cli",
            "mssql-entra-emulator",
            "tokio",
            "mio",
        ];
        let packages: Vec<Value> = names
            .iter()
            .map(|name| json!({ "id": name, "name": name }))
            .collect();
        let nodes: Vec<Value> = names
            .iter()
            .map(|name| {
                let deps: Vec<Value> = extra_edges
                    .iter()
                    .filter(|(from, _, _)| from == name)
                    .map(|(_, to, kind)| {
                        let kind = if kind.is_empty() {
                            Value::Null
                        } else {
                            json!(kind)
                        };
                        json!({ "pkg": to, "dep_kinds": [{ "kind": kind }] })
                    })
                    .collect();
                json!({ "id": name, "deps": deps })
            })
            .collect();
        json!({ "packages": packages, "resolve": { "nodes": nodes } })
    }

    #[test]
    fn layering_allows_the_one_way_chain() {
        let metadata = workspace(&[
            ("mssql-entra-token", "mssql-entra-connstr", ""),
            ("mssql-entra-odbc", "mssql-entra-token", ""),
            ("mssql-entra-cli", "mssql-entra", ""),
            ("mssql-entra-token", "tokio", ""),
            ("mssql-entra-connstr", "mssql-entra-emulator", "dev"),
        ]);
        assert_eq!(layering(&metadata).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn layering_reports_transitive_and_build_dependencies_with_their_path() {
        let metadata = workspace(&[
            ("mssql-entra-connstr", "mio", "build"),
            ("mio", "tokio", ""),
            ("mssql-entra-cli", "mssql-entra-emulator", ""),
        ]);
        assert_eq!(
            layering(&metadata).unwrap(),
            [
                "layering: `mssql-entra-connstr` depends on `tokio` (mssql-entra-connstr -> mio -> tokio); \
                 connection strings are pure text handling: no tokens, no ODBC, no I/O",
                "layering: `mssql-entra-cli` depends on `mssql-entra-emulator` \
                 (mssql-entra-cli -> mssql-entra-emulator); the command-line tool is a product crate",
            ]
        );
    }

    #[test]
    fn azure_pattern_matches_every_azure_crate() {
        assert!(matches("azure_*", "azure_identity"));
        assert!(matches("azure_*", "azure_core"));
        assert!(!matches("azure_*", "tokio"));
        assert!(!matches("tokio", "tokio-rustls"));
    }
}
