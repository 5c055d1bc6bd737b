//! Modules of this crate import their siblings' items by module path (`crate::ids::UserId`),
//! never through the crate root's re-exports (`crate::UserId`), so what depends on what is
//! visible in each file and a cycle between modules cannot hide behind the root.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `use crate::Name` or `use crate::{...}`: an item of the root, not of a module.
fn imports_through_root(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix("use crate::") else {
        return false;
    };
    rest.starts_with('{') || rest.starts_with(|c: char| c.is_ascii_uppercase())
}

#[test]
fn no_module_imports_through_the_crate_root() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "found the sources: {files:?}");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        for (n, line) in text.lines().enumerate() {
            if imports_through_root(line) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "imports through the crate root:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_forbids() {
    assert!(imports_through_root("use crate::{Error, Result};"));
    assert!(imports_through_root("    use crate::UserId;"));
    assert!(!imports_through_root("use crate::ids::UserId;"));
    assert!(!imports_through_root("use crate::rules;"));
}
