//! Where `bootstrap` may be built from: a checkout of wishctl itself, identified precisely.
//!
//! A checkout is the Cargo workspace whose root `Cargo.toml` has a `[workspace]` whose members
//! include `handler` and `deploy`, where `handler/Cargo.toml` is the package `handler` and
//! `deploy/Cargo.toml` the package `deploy`. A folder that merely has a `handler/` is not one, and
//! neither is another Cargo project nested inside a checkout: `wishctl` must never build (and
//! then deploy) someone else's code because of where it was run.

use std::fs;
use std::path::{Path, PathBuf};

/// What the folder a command runs in is, as far as building the handler goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Inside a wishctl checkout rooted here.
    Checkout(PathBuf),
    /// Inside another Cargo project (this manifest is the nearest one): never built.
    OtherProject(PathBuf),
    /// In no Cargo project at all.
    Elsewhere,
}

/// Classifies `dir` by the nearest `Cargo.toml` at or above it: a wishctl checkout's root, one of
/// its members' manifests, or anything else.
pub fn locate(dir: &Path) -> Location {
    let Some(nearest) = dir
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
    else {
        return Location::Elsewhere;
    };
    if is_wishctl_root(&nearest) {
        return Location::Checkout(nearest);
    }
    // A member's own manifest (deploy/Cargo.toml, crates/stack/Cargo.toml, ...) belongs to the
    // checkout above it, but only when that checkout lists it as a member.
    for root in nearest.ancestors().skip(1) {
        if !root.join("Cargo.toml").is_file() {
            continue;
        }
        if is_wishctl_root(root) {
            let listed = nearest
                .strip_prefix(root)
                .ok()
                .and_then(|rel| rel.to_str())
                .is_some_and(|rel| workspace_members(root).iter().any(|m| m == rel));
            if listed {
                return Location::Checkout(root.to_path_buf());
            }
        }
        break;
    }
    Location::OtherProject(nearest.join("Cargo.toml"))
}

/// True when `dir` is the root of a wishctl checkout (see the module doc).
pub fn is_wishctl_root(dir: &Path) -> bool {
    let members = workspace_members(dir);
    members.iter().any(|m| m == "handler")
        && members.iter().any(|m| m == "deploy")
        && package_name(&dir.join("handler/Cargo.toml")).as_deref() == Some("handler")
        && package_name(&dir.join("deploy/Cargo.toml")).as_deref() == Some("deploy")
}

/// The `members` of the `[workspace]` of `dir/Cargo.toml` (empty when it has none).
fn workspace_members(dir: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(dir.join("Cargo.toml")) else {
        return Vec::new();
    };
    let mut section = String::new();
    let mut collecting = false;
    let mut list = String::new();
    for line in text.lines() {
        let line = strip_comment(line).trim();
        if collecting {
            list.push_str(line);
            if line.contains(']') {
                break;
            }
            continue;
        }
        if line.starts_with('[') && !line.contains('=') {
            section = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string();
            continue;
        }
        if section != "workspace" {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "members" {
                list.push_str(value.trim());
                if value.contains(']') {
                    break;
                }
                collecting = true;
            }
        }
    }
    quoted_strings(&list)
}

/// The `name` of the `[package]` of a manifest.
fn package_name(manifest: &Path) -> Option<String> {
    let text = fs::read_to_string(manifest).ok()?;
    let mut in_package = false;
    for line in text.lines() {
        let line = strip_comment(line).trim();
        if line.starts_with('[') && !line.contains('=') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "name" {
                return quoted_strings(value).into_iter().next();
            }
        }
    }
    None
}

fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

fn quoted_strings(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A minimal wishctl checkout (manifests only).
    fn checkout(root: &Path) {
        write(
            &root.join("Cargo.toml"),
            "[workspace]\nresolver = \"2\"\nmembers = [\n    \"crates/stack\", # the description\n    \"handler\",\n    \"deploy\",\n]\n",
        );
        write(
            &root.join("handler/Cargo.toml"),
            "[package]\nname = \"handler\"\n",
        );
        write(
            &root.join("deploy/Cargo.toml"),
            "[package]\nname = \"deploy\" # wishctl\n",
        );
        write(
            &root.join("crates/stack/Cargo.toml"),
            "[package]\nname = \"stack\"\n",
        );
    }

    #[test]
    fn the_root_its_members_and_plain_subfolders_are_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("wishctl");
        checkout(&root);
        fs::create_dir_all(root.join("deploy/src/cmd")).unwrap();
        fs::create_dir_all(root.join("examples/ci")).unwrap();
        for sub in [
            "",
            "deploy/src/cmd",
            "crates/stack",
            "examples/ci",
            "handler",
        ] {
            assert_eq!(
                locate(&root.join(sub)),
                Location::Checkout(root.clone()),
                "{sub}"
            );
        }
    }

    #[test]
    fn a_look_alike_with_a_handler_folder_is_another_project() {
        let dir = tempfile::tempdir().unwrap();
        // A workspace with a `handler` member but no `deploy` package.
        write(
            &dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"handler\", \"app\"]\n",
        );
        write(
            &dir.path().join("handler/Cargo.toml"),
            "[package]\nname = \"handler\"\n",
        );
        assert_eq!(
            locate(dir.path()),
            Location::OtherProject(dir.path().join("Cargo.toml"))
        );
        // Members named right, but `deploy` is some other package.
        write(
            &dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"handler\", \"deploy\"]\n",
        );
        write(
            &dir.path().join("deploy/Cargo.toml"),
            "[package]\nname = \"their-deployer\"\n",
        );
        assert!(matches!(
            locate(&dir.path().join("handler")),
            Location::OtherProject(_)
        ));
        // `handler` only mentioned outside [workspace].
        write(
            &dir.path().join("Cargo.toml"),
            "[package]\nname = \"app\"\n[dependencies]\nhandler = { path = \"handler\" }\n",
        );
        assert!(matches!(locate(dir.path()), Location::OtherProject(_)));
    }

    #[test]
    fn a_project_nested_inside_a_checkout_is_not_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        checkout(dir.path());
        let nested = dir.path().join("target/tmp/their-app");
        write(
            &nested.join("Cargo.toml"),
            "[package]\nname = \"their-app\"\n",
        );
        assert_eq!(
            locate(&nested),
            Location::OtherProject(nested.join("Cargo.toml"))
        );
    }

    #[test]
    fn a_folder_outside_any_project_is_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(locate(dir.path()), Location::Elsewhere);
    }
}
