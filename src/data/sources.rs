//! The offline default: thousands of real brand logos vendored in the repository.
//!
//! `data/vendor/manifest.json` lists each source (package, version, licence, archive, sha256,
//! file count). [`unpack_vendored`] checks each archive against its hash, then writes one SVG per
//! logo into `data/raw/<source id>/`. Simple Icons ships monochrome paths plus a brand colour per
//! icon in `simple-icons.json`; we bake that colour into each SVG so the raw folder is
//! self-contained. Font Awesome brand icons stay black, as in the original project.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::{safe_file_name, safe_relative_path, sha256_hex, write_atomic};

/// One vendored source of logos, as recorded in `manifest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VendoredSource {
    /// Folder name under `data/raw/`.
    pub id: String,
    /// Package it was taken from (in the npm package registry).
    pub package: String,
    pub version: String,
    /// SPDX identifier of the licence of the images.
    pub license: String,
    /// Licence texts, relative to the vendor folder.
    pub license_files: Vec<String>,
    /// What a user must know before re-using the images.
    pub notice: String,
    pub homepage: String,
    /// Archive file name, relative to the vendor folder.
    pub archive: String,
    pub sha256: String,
    /// Integrity string the package registry published for the package.
    pub npm_integrity: String,
    /// Folder inside the archive that holds the SVGs.
    pub svg_dir: String,
    /// JSON file inside the archive with `{slug, hex}` brand colours, if any.
    pub colours: Option<String>,
    /// Number of SVGs in `svg_dir`.
    pub file_count: usize,
}

/// `data/vendor/manifest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VendorManifest {
    pub sources: Vec<VendoredSource>,
}

impl VendorManifest {
    /// Read `manifest.json` from the vendor folder. Every file it names (archives, licence
    /// texts) must be a relative path inside that folder: the manifest is data, and data never
    /// decides to read `/etc/passwd` or `/dev/zero`.
    pub fn load(vendor_dir: &Path) -> Result<Self> {
        let path = vendor_dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).at(&path)?;
        let manifest: Self = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(&path, format!("not a valid vendor manifest: {e}")))?;
        for source in &manifest.sources {
            let named = std::iter::once(("archive", &source.archive))
                .chain(source.license_files.iter().map(|f| ("license_files", f)));
            for (field, file) in named {
                if safe_relative_path(Path::new(file)).is_none() {
                    return Err(Error::bad_input(
                        &path,
                        format!(
                            "source `{}`: {field} `{file}` is not a path inside the vendor \
                             folder (no `..`, no absolute path); restore the file with \
                             `git checkout -- data/vendor`",
                            source.id
                        ),
                    ));
                }
            }
        }
        Ok(manifest)
    }
}

/// What [`unpack_vendored`] did for one source.
#[derive(Debug, Clone, PartialEq)]
pub struct UnpackedSource {
    pub id: String,
    pub folder: PathBuf,
    /// SVG files written (0 when the folder was already complete).
    pub written: usize,
    /// SVG files present after the call.
    pub total: usize,
    /// SVG files that had been deleted from a complete folder and were restored.
    pub missing: usize,
    /// True when the folder was already complete and nothing was done.
    pub already_done: bool,
    /// Archive entries that were refused, each with the reason.
    pub refused: Vec<String>,
}

/// Marker written last into a complete source folder; holds the archive's sha256.
const COMPLETE_MARKER: &str = ".complete";

/// Unpack every vendored source into `raw_dir/<id>/`. A source whose folder is already complete
/// (same archive hash) is skipped, so the call is cheap to repeat.
pub fn unpack_vendored(vendor_dir: &Path, raw_dir: &Path) -> Result<Vec<UnpackedSource>> {
    let manifest = VendorManifest::load(vendor_dir)?;
    manifest
        .sources
        .iter()
        .map(|source| unpack_source(vendor_dir, source, raw_dir))
        .collect()
}

fn unpack_source(
    vendor_dir: &Path,
    source: &VendoredSource,
    raw_dir: &Path,
) -> Result<UnpackedSource> {
    let id = safe_file_name(&source.id, "source");
    let folder = raw_dir.join(&id);
    let marker = folder.join(COMPLETE_MARKER);
    let mut missing = 0;
    if std::fs::read_to_string(&marker).is_ok_and(|h| h.trim() == source.sha256) {
        let total = count_svgs(&folder)?;
        if total >= source.file_count {
            return Ok(UnpackedSource {
                total,
                id,
                folder,
                written: 0,
                missing: 0,
                already_done: true,
                refused: vec![],
            });
        }
        // Files were deleted from data/raw/ since: unpack again, and say so.
        missing = source.file_count - total;
    }

    let archive_path = vendor_dir.join(&source.archive);
    let bytes = read_bounded(&archive_path, MAX_ARCHIVE_BYTES)?;
    let actual = sha256_hex(&bytes);
    if actual != source.sha256 {
        return Err(Error::bad_input(
            &archive_path,
            format!(
                "sha256 is {actual}, manifest.json says {}: the archive is damaged or was replaced; \
                 restore it with `git checkout -- data/vendor` or re-create it with scripts/vendor-logos.sh",
                source.sha256
            ),
        ));
    }

    let archive = read_tar_gz(&bytes, &archive_path, 2 << 20)?;
    let colours = match &source.colours {
        Some(name) => {
            let entry = archive.files.get(Path::new(name)).ok_or_else(|| {
                Error::bad_input(&archive_path, format!("colour file {name} is missing"))
            })?;
            parse_brand_colours(entry, &archive_path)?
        }
        None => HashMap::new(),
    };

    let svg_dir = Path::new(&source.svg_dir);
    let mut written = 0;
    for (path, content) in &archive.files {
        let Ok(rest) = path.strip_prefix(svg_dir) else {
            continue;
        };
        if path.extension().and_then(|e| e.to_str()) != Some("svg")
            || rest.components().count() != 1
        {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let name = format!("{}.svg", safe_file_name(stem, "logo"));
        let svg = match colours.get(stem) {
            Some(hex) => with_fill_colour(content, hex),
            None => content.clone(),
        };
        write_atomic(&folder.join(name), &svg)?;
        written += 1;
    }
    // Licence texts travel with the images.
    for licence in &source.license_files {
        let from = vendor_dir.join(licence);
        if let Some(file_name) = from.file_name() {
            let text = read_bounded(&from, MAX_LICENCE_BYTES)?;
            write_atomic(&folder.join(file_name), &text)?;
        }
    }
    write_atomic(
        &folder.join("SOURCE.json"),
        &serde_json::to_vec_pretty(source)?,
    )?;
    write_atomic(&marker, source.sha256.as_bytes())?;
    Ok(UnpackedSource {
        total: count_svgs(&folder)?,
        id,
        folder,
        written,
        missing,
        already_done: false,
        refused: archive.refused,
    })
}

/// Largest vendored archive and licence text read (the course's archives are ~1 MB).
const MAX_ARCHIVE_BYTES: u64 = 256 << 20;
const MAX_LICENCE_BYTES: u64 = 1 << 20;

/// Read a regular file of at most `limit` bytes (not a device, pipe or folder).
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).at(path)?;
    if !meta.is_file() || meta.len() > limit {
        return Err(Error::bad_input(
            path,
            format!(
                "not a regular file of at most {limit} bytes; restore it with \
                 `git checkout -- data/vendor`"
            ),
        ));
    }
    std::fs::read(path).at(path)
}

fn count_svgs(folder: &Path) -> Result<usize> {
    Ok(std::fs::read_dir(folder)
        .at(folder)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .count())
}

/// The regular files of a tar.gz archive, read into memory, and the entries that were refused.
#[derive(Debug, Default)]
pub struct ArchiveFiles {
    pub files: std::collections::BTreeMap<PathBuf, Vec<u8>>,
    /// `"<entry>: <reason>"` for every entry that was not taken.
    pub refused: Vec<String>,
}

/// Read a tar.gz archive's regular files into memory. Entries whose path would leave the
/// extraction folder (`../`, absolute paths), links and device files, and entries over
/// `max_entry_bytes` are refused and listed, never written anywhere.
// ANCHOR: read_tar_gz
pub fn read_tar_gz(
    bytes: &[u8],
    archive_path: &Path,
    max_entry_bytes: u64,
) -> Result<ArchiveFiles> {
    let bad = |e: std::io::Error| Error::bad_input(archive_path, format!("unreadable tar.gz: {e}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = ArchiveFiles::default();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            out.refused
                .push(format!("{shown}: not a regular file ({kind:?})"));
            continue;
        }
        let Some(path) = std::str::from_utf8(&raw_path)
            .ok()
            .and_then(|p| safe_relative_path(Path::new(p)))
        else {
            out.refused
                .push(format!("{shown}: path leaves the extraction folder"));
            continue;
        };
        let size = entry.size();
        if size > max_entry_bytes {
            out.refused.push(format!(
                "{shown}: {size} bytes, over the {max_entry_bytes}-byte limit"
            ));
            continue;
        }
        let mut content = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut content).map_err(bad)?;
        out.files.insert(path, content);
    }
    Ok(out)
}
// ANCHOR_END: read_tar_gz

/// Parse Simple Icons' `simple-icons.json`: a list of `{ "slug": .., "hex": "RRGGBB" }`.
/// Slugs are the SVG file stems.
pub fn parse_brand_colours(json: &[u8], archive_path: &Path) -> Result<HashMap<String, String>> {
    #[derive(serde::Deserialize)]
    struct Icon {
        slug: String,
        hex: String,
    }
    let icons: Vec<Icon> = serde_json::from_slice(json).map_err(|e| {
        Error::bad_input(
            archive_path,
            format!("brand colour list is not valid JSON: {e}"),
        )
    })?;
    Ok(icons
        .into_iter()
        .filter(|i| i.hex.len() == 6 && i.hex.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|i| (i.slug, i.hex))
        .collect())
}

/// Give a monochrome SVG a fill colour by setting `fill` on its root `<svg>` element; the
/// paths inherit it. `hex` is `RRGGBB`. An SVG that already sets a root fill is left alone.
// ANCHOR: fill_colour
pub fn with_fill_colour(svg: &[u8], hex: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(svg);
    let Some(start) = text.find("<svg") else {
        return svg.to_vec();
    };
    let tag_end = text[start..]
        .find('>')
        .map(|i| start + i)
        .unwrap_or(text.len());
    if text[start..tag_end].contains(" fill=") {
        return svg.to_vec();
    }
    let insert_at = start + "<svg".len();
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..insert_at]);
    out.push_str(&format!(" fill=\"#{hex}\""));
    out.push_str(&text[insert_at..]);
    out.into_bytes()
}
// ANCHOR_END: fill_colour

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // Write the raw name so `../` survives (tar::Builder would refuse to append it).
            let name_field = &mut header.as_old_mut().name;
            name_field[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn archive_entries_that_escape_are_refused_and_listed() {
        let bytes = tar_gz(&[
            ("icons/ok.svg", b"<svg/>"),
            ("../evil.svg", b"<svg/>"),
            ("/etc/cron.d/evil", b"x"),
            ("icons/../../evil2.svg", b"<svg/>"),
        ]);
        let archive = read_tar_gz(&bytes, Path::new("test.tar.gz"), 1 << 20).unwrap();
        assert_eq!(
            archive.files.keys().collect::<Vec<_>>(),
            vec![Path::new("icons/ok.svg")]
        );
        assert_eq!(archive.refused.len(), 3, "{:?}", archive.refused);
        assert!(archive
            .refused
            .iter()
            .all(|r| r.contains("leaves the extraction folder")));
    }

    #[test]
    fn oversized_entries_are_refused() {
        let bytes = tar_gz(&[("big.svg", &[b'x'; 100])]);
        let archive = read_tar_gz(&bytes, Path::new("t.tar.gz"), 10).unwrap();
        assert!(archive.files.is_empty());
        assert!(archive.refused[0].contains("over the 10-byte limit"));
    }

    #[test]
    fn garbage_archive_names_the_file() {
        let err = read_tar_gz(b"not gzip at all", Path::new("broken.tar.gz"), 10).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("broken.tar.gz: unreadable tar.gz"),
            "{err}"
        );
    }

    #[test]
    fn fill_colour_is_set_on_the_root_only_once() {
        let svg = br#"<svg role="img" viewBox="0 0 24 24"><path d="M0 0h1"/></svg>"#;
        let coloured = String::from_utf8(with_fill_colour(svg, "FF0000")).unwrap();
        assert!(
            coloured.starts_with(r##"<svg fill="#FF0000" role="img""##),
            "{coloured}"
        );
        let again = with_fill_colour(coloured.as_bytes(), "00FF00");
        assert_eq!(String::from_utf8(again).unwrap(), coloured);
    }

    #[test]
    fn brand_colours_skip_malformed_hex() {
        let json =
            br#"[{"title":"A","slug":"a","hex":"ABCDEF"},{"title":"B","slug":"b","hex":"nope"}]"#;
        let colours = parse_brand_colours(json, Path::new("x")).unwrap();
        assert_eq!(colours.get("a").map(String::as_str), Some("ABCDEF"));
        assert!(!colours.contains_key("b"));
    }

    #[test]
    fn unpack_checks_hash_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let vendor = dir.path().join("vendor");
        std::fs::create_dir_all(vendor.join("licenses")).unwrap();
        let archive = tar_gz(&[
            (
                "pkg/icons/acme.svg",
                br#"<svg viewBox="0 0 2 2"><path d="M0 0h2v2H0z"/></svg>"#,
            ),
            (
                "pkg/icons/plain.svg",
                br#"<svg viewBox="0 0 2 2"><path d="M0 0h2v2H0z"/></svg>"#,
            ),
            ("pkg/colours.json", br#"[{"slug":"acme","hex":"123456"}]"#),
            ("../escape.svg", b"<svg/>"),
        ]);
        std::fs::write(vendor.join("pkg.tar.gz"), &archive).unwrap();
        std::fs::write(vendor.join("licenses/LICENSE.txt"), b"CC0").unwrap();
        let source = VendoredSource {
            id: "pkg".into(),
            package: "pkg".into(),
            version: "1".into(),
            license: "CC0-1.0".into(),
            license_files: vec!["licenses/LICENSE.txt".into()],
            notice: String::new(),
            homepage: String::new(),
            archive: "pkg.tar.gz".into(),
            sha256: sha256_hex(&archive),
            npm_integrity: String::new(),
            svg_dir: "pkg/icons".into(),
            colours: Some("pkg/colours.json".into()),
            file_count: 2,
        };
        let manifest = VendorManifest {
            sources: vec![source.clone()],
        };
        std::fs::write(
            vendor.join("manifest.json"),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();

        let raw = dir.path().join("raw");
        let first = unpack_vendored(&vendor, &raw).unwrap();
        assert_eq!(
            (first[0].written, first[0].total, first[0].already_done),
            (2, 2, false)
        );
        assert_eq!(first[0].refused.len(), 1);
        let acme = std::fs::read_to_string(raw.join("pkg/acme.svg")).unwrap();
        assert!(acme.contains(r##"fill="#123456""##));
        assert!(raw.join("pkg/LICENSE.txt").exists());
        assert!(!dir.path().join("escape.svg").exists());

        let second = unpack_vendored(&vendor, &raw).unwrap();
        assert!(second[0].already_done);
        assert_eq!(second[0].total, 2);

        // A logo deleted from data/raw/ is restored, and reported.
        std::fs::remove_file(raw.join("pkg/acme.svg")).unwrap();
        let third = unpack_vendored(&vendor, &raw).unwrap();
        assert_eq!(
            (third[0].missing, third[0].total, third[0].already_done),
            (1, 2, false)
        );
        assert_eq!(
            std::fs::read_to_string(raw.join("pkg/acme.svg")).unwrap(),
            acme
        );

        // Files the manifest names must stay inside the vendor folder.
        for (field, evil) in [
            ("archive", "../../etc/passwd"),
            ("license_files", "/dev/zero"),
        ] {
            let mut bad = source.clone();
            if field == "archive" {
                bad.archive = evil.into();
            } else {
                bad.license_files = vec![evil.into()];
            }
            let bad = VendorManifest { sources: vec![bad] };
            std::fs::write(
                vendor.join("manifest.json"),
                serde_json::to_vec(&bad).unwrap(),
            )
            .unwrap();
            let err = unpack_vendored(&vendor, &raw).unwrap_err().to_string();
            assert!(
                err.contains("manifest.json") && err.contains(field) && err.contains(evil),
                "{err}"
            );
        }
        std::fs::write(
            vendor.join("manifest.json"),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();

        // A damaged archive is refused with the file name and what to do.
        std::fs::remove_file(raw.join("pkg/.complete")).unwrap();
        std::fs::write(vendor.join("pkg.tar.gz"), b"damaged").unwrap();
        let err = unpack_vendored(&vendor, &raw).unwrap_err().to_string();
        assert!(
            err.contains("pkg.tar.gz") && err.contains("git checkout"),
            "{err}"
        );
    }

    #[test]
    fn committed_manifest_matches_committed_archives() {
        let layout = crate::paths::DataLayout::new(crate::paths::project_root().join("data"));
        let manifest = VendorManifest::load(&layout.vendor()).unwrap();
        assert_eq!(manifest.sources.len(), 2);
        let total: usize = manifest.sources.iter().map(|s| s.file_count).sum();
        assert!(total >= 4000, "{total}");
        for source in &manifest.sources {
            let bytes = std::fs::read(layout.vendor().join(&source.archive)).unwrap();
            assert_eq!(sha256_hex(&bytes), source.sha256, "{}", source.archive);
            for licence in &source.license_files {
                assert!(layout.vendor().join(licence).exists(), "{licence}");
            }
        }
    }
}
