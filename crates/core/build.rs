//! Bundles every `skills/*/SKILL.md` of the repository into the core crate, so both platforms ship the
//! same skills without reading a file system at run time.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let skills_dir = manifest.join("../../skills");
    println!("cargo:rerun-if-changed={}", skills_dir.display());

    let mut files: Vec<PathBuf> = fs::read_dir(&skills_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path().join("SKILL.md"))
                .filter(|path| path.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();

    let mut out = String::from(
        "/// Bundled skill files: (repository path, contents).\npub const BUNDLED: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let dir = file.parent().and_then(|p| p.file_name()).expect("skill folder has a name");
        let shown = format!("skills/{}/SKILL.md", dir.to_string_lossy());
        let absolute = file.canonicalize().expect("skill file path resolves");
        out.push_str(&format!("    ({shown:?}, include_str!({:?})),\n", absolute.display().to_string()));
    }
    out.push_str("];\n");

    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("bundled_skills.rs");
    fs::write(dest, out).expect("write bundled skills list");
}
