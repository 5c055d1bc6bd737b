//! Modules of `ticketing-core` use their siblings by module path (`crate::ids::SeatId`), never
//! through the crate root's re-exports (`crate::SeatId`), which hide the dependency and made a
//! `money` ↔ `error` loop invisible. Doc links may name the public path.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::` followed by an upper-case name: an item reached through the root.
fn through_root(line: &str) -> bool {
    line.match_indices("crate::").any(|(i, m)| {
        line[i + m.len()..]
            .chars()
            .next()
            .is_some_and(char::is_uppercase)
    })
}

#[test]
fn no_module_reaches_a_sibling_through_the_crate_root() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "the sources were found");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("lib.rs")) {
        let text = std::fs::read_to_string(file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if through_root(code) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, code));
            }
        }
    }
    assert!(
        found.is_empty(),
        "through the crate root:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_path_through_the_root() {
    assert!(through_root("let x = crate::SeatId(1);"));
    assert!(!through_root("let x = crate::ids::SeatId(1);"));
}
