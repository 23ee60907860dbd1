//! End-to-end tests of `paradox space ...`: a living collection with hashing encoders
//! (no model files), a second space, switching the default, removing a space, and the
//! refusals, each exit code 1 with a message naming the reason and nothing removed.

mod common;

use common::Workspace;

/// The `space list` table's first column: space names, `(default)` marked.
fn listed_spaces(list: &str) -> Vec<String> {
    list.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("adapter"))
        .filter_map(|l| l.split("  ").next())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && !s.starts_with('-'))
        .collect()
}

#[test]
fn spaces_added_switched_and_removed() {
    let ws = Workspace::new();
    ws.ok(&["collection", "create", "--name", "docs", "--dim", "32"]);
    ws.ok(&[
        "space",
        "init",
        "--collection",
        "docs",
        "--space",
        "hash@1",
        "--encoder",
        "hashing:32",
        "--text-field",
        "text",
    ]);
    let texts = ws.path("texts.txt");
    let lines: Vec<String> = (0..30)
        .map(|i| format!("the river number {i} near the old bridge {}", i % 7))
        .collect();
    std::fs::write(&texts, lines.join("\n")).unwrap();
    ws.ok(&[
        "space",
        "ingest",
        "--collection",
        "docs",
        "--file",
        texts.to_str().unwrap(),
    ]);
    for (space, encoder) in [("hash@2", "hashing:48"), ("hash@3", "hashing:16")] {
        ws.ok(&[
            "space",
            "add",
            "--collection",
            "docs",
            "--space",
            space,
            "--encoder",
            encoder,
        ]);
    }
    ws.ok(&[
        "space",
        "fit-adapter",
        "--collection",
        "docs",
        "--from",
        "hash@1",
        "--to",
        "hash@2",
        "--pairs",
        "20",
    ]);
    let list = ws.ok(&["space", "list", "--collection", "docs"]);
    assert_eq!(
        listed_spaces(&list),
        ["hash@1 (default)", "hash@2", "hash@3"],
        "{list}"
    );
    assert!(list.contains("hash@1 -> hash@2 v1"), "{list}");

    // The default moves; the old default can then go... unless it is the first space.
    let out = ws.ok(&["space", "default", "--collection", "docs", "hash@2"]);
    assert!(out.contains("space `hash@2` by default"), "{out}");
    let err = ws.fails(&["space", "remove", "--collection", "docs", "hash@2"], 1);
    assert!(
        err.contains("space `hash@2` is the default space of collection `docs`")
            && err.contains("make another space the default first"),
        "{err}"
    );
    let err = ws.fails(&["space", "remove", "--collection", "docs", "hash@1"], 1);
    assert!(
        err.contains("space `hash@1` is the first space of collection `docs`"),
        "{err}"
    );
    let err = ws.fails(&["space", "remove", "--collection", "docs", "nope@1"], 1);
    assert!(err.contains("unknown space `nope@1`"), "{err}");
    let err = ws.fails(&["space", "remove", "--collection", "ghost", "hash@2"], 1);
    assert!(err.contains("ghost"), "{err}");
    let err = ws.fails(&["space", "default", "--collection", "docs", "nope@1"], 1);
    assert!(err.contains("unknown space `nope@1`"), "{err}");
    // Nothing was removed by the refusals.
    let list = ws.ok(&["space", "list", "--collection", "docs"]);
    assert_eq!(
        listed_spaces(&list),
        ["hash@1", "hash@2 (default)", "hash@3"],
        "{list}"
    );

    // Back to hash@1, then hash@2 goes with its collection and its adapters.
    ws.ok(&["space", "default", "--collection", "docs", "hash@1"]);
    let out = ws.ok(&["space", "remove", "--collection", "docs", "hash@2"]);
    assert!(
        out.contains("space `hash@2` removed from collection `docs`")
            && out.contains("`docs--hash-v2`"),
        "{out}"
    );
    let list = ws.ok(&["space", "list", "--collection", "docs"]);
    assert_eq!(
        listed_spaces(&list),
        ["hash@1 (default)", "hash@3"],
        "{list}"
    );
    assert!(!list.contains("hash@1 -> hash@2"), "{list}");
    let info = ws.ok(&["info"]);
    assert!(!info.contains("docs--hash-v2"), "{info}");
    assert!(info.contains("docs--hash-v3"), "{info}");

    // A missing name is a usage error.
    ws.fails(&["space", "remove", "--collection", "docs"], 2);
}
