//! Small file-system helpers shared by every step: atomic writes, safe names, folder swaps.
//!
//! Two rules hold everywhere in the project:
//! * a file is written to a temporary name in its destination folder and renamed into place,
//!   so a killed process never leaves a half-written PNG, CSV or checkpoint behind;
//! * no name that comes from outside (a URL, an HTTP header, a CSV cell, an archive entry) is
//!   ever used as a path without going through [`safe_file_name`] or [`safe_relative_path`].

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::error::{IoResultExt, Result};

/// Write `bytes` to `path` atomically (temporary file in the same folder, then rename).
/// Parent folders are created.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Like [`write_atomic`], but the content is produced by `write` into the temporary file.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let parent = parent_or_dot(path);
    std::fs::create_dir_all(parent).at(parent)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)
        .at(parent)?;
    write(temp.as_file_mut()).at(path)?;
    temp.as_file_mut().flush().at(path)?;
    // Temporary files are created private (0600); the result is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .at(path)?;
    }
    temp.persist(path).map_err(|e| e.error).at(path)?;
    Ok(())
}

/// Refuse `path` if something other than a regular file is in its place (a folder, a device),
/// which a reader would otherwise take for an empty or endless file. A missing path passes.
pub fn check_not_special(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(crate::error::Error::bad_input(
            path,
            "is not a regular file (a folder or a device is in its place): move it aside",
        )),
        _ => Ok(()),
    }
}

/// Create the folder `dir` (and its parents) for output, with a message that says so when a
/// file is in its place.
pub fn create_output_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(crate::error::Error::bad_input(
            dir,
            "is a file, not a folder: name a folder for the output (it is created if missing)",
        ));
    }
    std::fs::create_dir_all(dir).at(dir)
}

/// Save an image as PNG atomically.
pub fn save_png(path: &Path, image: &image::RgbImage) -> Result<()> {
    let mut bytes = Vec::new();
    image.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    write_atomic(path, &bytes)
}

fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Turn an arbitrary label (a brand name, a URL's last segment) into a plain file name:
/// ASCII letters, digits, `-`, `_` and `.` only, no leading dot, at most 80 characters.
/// Returns `fallback` when nothing usable is left.
pub fn safe_file_name(label: &str, fallback: &str) -> String {
    let mut name: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while name.starts_with('.') {
        name.remove(0);
    }
    name.truncate(80);
    if name.trim_matches(['_', '.']).is_empty() {
        fallback.to_string()
    } else {
        name
    }
}

/// Accept a relative path from an untrusted source (an archive entry) only if it stays inside
/// the folder it is joined to: no root, no drive prefix, no `..`. `.` components are dropped.
pub fn safe_relative_path(raw: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for part in raw.components() {
        match part {
            Component::Normal(p) => clean.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!clean.as_os_str().is_empty()).then_some(clean)
}

/// Replace the folder `dest` with the fully written folder `staged` in two renames, so readers
/// see either the old complete folder or the new complete one.
pub fn replace_dir(staged: &Path, dest: &Path) -> Result<()> {
    let old = dest.with_extension("old");
    if old.exists() {
        std::fs::remove_dir_all(&old).at(&old)?;
    }
    if dest.exists() {
        std::fs::rename(dest, &old).at(dest)?;
    }
    std::fs::rename(staged, dest).at(staged)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).at(&old)?;
    }
    Ok(())
}

/// A fresh, empty staging folder beside `dest` (`<dest>.staging`), for [`replace_dir`].
pub fn staging_dir(dest: &Path) -> Result<PathBuf> {
    let staged = dest.with_extension("staging");
    if staged.exists() {
        std::fs::remove_dir_all(&staged).at(&staged)?;
    }
    std::fs::create_dir_all(&staged).at(&staged)?;
    Ok(staged)
}

/// Serialise rows to CSV (with a header) and write the file atomically.
pub fn write_csv<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .serialize(row)
            .map_err(|e| crate::error::Error::bad_input(path, e.to_string()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| crate::error::Error::bad_input(path, e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Read a CSV file with a header into rows; a bad row is reported with its line number.
pub fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    use crate::error::Error;
    check_not_special(path)?;
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| Error::bad_input(path, e.to_string()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|e| {
                Error::bad_input(
                    path,
                    format!(
                        "row {} cannot be read ({e}); fix or delete that line (a line cut \
                         short by a crash can simply be deleted) and run again",
                        i + 2
                    ),
                )
            })
        })
        .collect()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_file_name_strips_separators_and_dots() {
        assert_eq!(safe_file_name("../../etc/passwd", "x"), "_.._etc_passwd");
        assert_eq!(safe_file_name("Café Logo.svg", "x"), "Caf__Logo.svg");
        assert_eq!(safe_file_name("...", "fallback"), "fallback");
        assert_eq!(safe_file_name("", "fallback"), "fallback");
        assert!(!safe_file_name("/abs/path", "x").contains('/'));
        assert_eq!(safe_file_name(&"a".repeat(200), "x").len(), 80);
    }

    #[test]
    fn safe_relative_path_rejects_escapes() {
        assert_eq!(
            safe_relative_path(Path::new("a/./b.svg")),
            Some(PathBuf::from("a/b.svg"))
        );
        assert_eq!(safe_relative_path(Path::new("../evil.svg")), None);
        assert_eq!(safe_relative_path(Path::new("a/../../evil.svg")), None);
        assert_eq!(safe_relative_path(Path::new("/etc/passwd")), None);
        assert_eq!(safe_relative_path(Path::new(".")), None);
    }

    #[test]
    fn write_atomic_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        write_atomic(&path, b"first version, long").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "readable like any other file");
        }
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
    }

    #[test]
    fn replace_dir_swaps_contents() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("clean");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("stale.png"), b"old").unwrap();
        let staged = staging_dir(&dest).unwrap();
        std::fs::write(staged.join("fresh.png"), b"new").unwrap();
        replace_dir(&staged, &dest).unwrap();
        assert!(dest.join("fresh.png").exists());
        assert!(!dest.join("stale.png").exists());
        assert!(!staged.exists());
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
