//! Paths inside the repository, for the workspace's own binaries (the CLI's
//! default weights, the trainer's data set and baseline scripts).

use std::path::{Path, PathBuf};

/// `relative` (a path from the repository root) in the checkout this crate
/// was built from. Binaries remember where they were built; when that
/// checkout is gone (a deleted CI clone, a binary copied elsewhere), the
/// same path under the current directory is used instead, rather than
/// pointing at, or creating, a directory that no longer exists.
pub fn repository_path(relative: impl AsRef<Path>) -> PathBuf {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"));
    if built_in.is_dir() {
        built_in.join(relative)
    } else {
        relative.as_ref().to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_in_the_checkout_this_crate_was_built_from() {
        let manifest = repository_path("Cargo.toml");
        assert!(manifest.is_absolute(), "{}", manifest.display());
        assert!(std::fs::read_to_string(&manifest).unwrap().contains("name = \"realdenoise\""));
        assert_eq!(repository_path("weights").parent(), manifest.parent());
    }
}
