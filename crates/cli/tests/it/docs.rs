//! docs/troubleshooting.md has a section for every anchor the connector's diagnoses link to.

use std::collections::BTreeSet;

use mssql_entra::lower::odbc::DiagnosisKind;

/// Every kind the connector has.
const KINDS: [DiagnosisKind; DiagnosisKind::ALL.len()] = DiagnosisKind::ALL;

fn document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/troubleshooting.md");
    std::fs::read_to_string(path).expect("docs/troubleshooting.md exists")
}

/// The ids of `<a id="…"></a>` in the document.
fn anchors(doc: &str) -> BTreeSet<String> {
    doc.split("<a id=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_diagnosis_anchor_has_a_section_and_every_section_a_diagnosis() {
    let doc = document();
    let in_doc = anchors(&doc);
    let from_code: BTreeSet<String> = KINDS
        .iter()
        .map(|k| {
            k.anchor()
                .strip_prefix("troubleshooting.md#")
                .unwrap_or_else(|| {
                    panic!(
                        "{k:?}: anchor {} is not into troubleshooting.md",
                        k.anchor()
                    )
                })
                .to_owned()
        })
        .collect();
    assert_eq!(from_code.len(), KINDS.len(), "anchors are distinct");
    let missing: Vec<_> = from_code.difference(&in_doc).collect();
    assert!(missing.is_empty(), "no section for {missing:?}");
    let extra: Vec<_> = in_doc.difference(&from_code).collect();
    assert!(extra.is_empty(), "sections without a diagnosis: {extra:?}");
    // Each anchor is followed by a heading, and internal links point at existing anchors.
    for id in &in_doc {
        let after = doc
            .split(&format!("<a id=\"{id}\"></a>\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("{id}: the anchor is not on a line of its own"));
        assert!(
            after.starts_with("### "),
            "{id}: no heading after the anchor"
        );
    }
    for link in doc.split("](#").skip(1) {
        let target = link.split(')').next().unwrap_or_default();
        assert!(
            in_doc.contains(target),
            "link to a missing anchor #{target}"
        );
    }
}
