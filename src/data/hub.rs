//! Chapter 2's hub path (the `hub` feature): an image data set published on the Hugging Face
//! Hub, read through `candle-datasets`.
//!
//! The Hub converts most public data sets to parquet on the `refs/convert/parquet` revision;
//! [`candle_datasets::hub::from_hub`] lists that revision, downloads each parquet file into the
//! Hub's local cache (once: a rerun reads the cached copies) and opens it. Before calling it, this
//! module asks for the same listing itself (one small request) to learn which reader is which
//! file, and so which belong to the chosen split (`from_hub` has no filter: it fetches every
//! split), and the data set's card for its licence. This module then reads
//! the image column of the chosen split row by row, checks each image's bytes with the project's
//! safe loader ([`crate::data::raster::load_image`]) and writes one file per image, under its own
//! format's extension, into `data/raw/hub-<owner>--<name>/` beside a `manifest.json` (data set,
//! revision, licence as published, counts, and each image's row and sha256). Chapter 3 then
//! cleans those files with every other folder under `data/raw/`.
//!
//! It is resumable: an image already written, whose file on disk still has the sha256 the
//! manifest records for its row, is not written again; every file is written atomically and the
//! manifest is saved as the run goes, so a crash loses at most the last few rows' bookkeeping.
//! Everything that can go wrong ends in one line naming the data set, the parquet file, the row
//! or the column, and what to do.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_datasets::hub::FileReader;
use hf_hub::{HFClientSync, HFError, HFRepositorySync, RepoTypeDataset};
use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::reader::SerializedFileReader;
use parquet::schema::types::SchemaDescriptor;

use crate::data::raster::{load_image, LoadError, LoadLimits};
use crate::fsutil::{safe_file_name, safe_relative_path, sha256_hex, write_atomic};

/// The revision where the Hub publishes its parquet conversion of a data set (the one
/// `candle_datasets::hub::from_hub` reads).
pub const PARQUET_REVISION: &str = "refs/convert/parquet";
/// Name of the manifest in the data set's folder (not an image: chapter 3 does not list it).
pub const MANIFEST: &str = "manifest.json";
/// Largest `--limit`: ten million images, over a hundred times the original project's 80 000.
pub const MAX_LIMIT: usize = 10_000_000;
/// Rows read from a parquet column at once: only these rows' bytes are in memory.
const BATCH_ROWS: usize = 16;
/// A column whose first this-many non-empty rows are all "not an image" is not an image column.
const NOT_IMAGE_PROBE: usize = 16;
/// The manifest is saved at most this often while images are written (and at the end): it lists
/// every image, so saving it after each one would write it tens of thousands of times.
const MANIFEST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Attempts per request (hf-hub backs off between them) before a server error is reported.
const HTTP_ATTEMPTS: usize = 3;
/// A column chunk declaring more uncompressed bytes than this is refused before it is read.
const MAX_COLUMN_CHUNK_BYTES: i64 = 4 << 30;

/// Why the hub path stopped. Each message is one line that names the data set and, where there
/// is one, the parquet file, row or column, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("`{id}` is not a data set id: {reason} (expected owner/name, as in the data set's page address, e.g. huggan/smithsonian_butterflies_subset)")]
    BadId { id: String, reason: String },
    #[error("invalid setting `{field}`: {reason}")]
    BadSetting { field: String, reason: String },
    #[error("data set `{id}` was not found on {endpoint}: check the id (owner/name, as in its page address); a private data set also needs HF_TOKEN")]
    NotFound { id: String, endpoint: String },
    #[error("data set `{id}` on {endpoint} refused access ({status}): accept its terms on its page if it is gated, and set HF_TOKEN to an access token of that account")]
    NeedsAccess {
        id: String,
        endpoint: String,
        status: String,
    },
    #[error("data set `{id}` has no parquet conversion ({PARQUET_REVISION}) on {endpoint}: the Hub converts most public data sets itself, but not all (very large ones, or ones built by a script); pick another data set")]
    NoParquet { id: String, endpoint: String },
    #[error("data set `{id}` has no split `{split}` in its parquet conversion: pass --split with one of: {available}")]
    NoSplit {
        id: String,
        split: String,
        available: String,
    },
    #[error("data set `{id}`: {what} failed: {detail}; this is the server's or the network's side: run the same command again later (images already written are kept and skipped)")]
    Server {
        id: String,
        what: String,
        detail: String,
    },
    #[error("data set `{id}`: parquet file {file} is not readable ({detail}); {remedy}")]
    BadParquet {
        id: String,
        file: String,
        detail: String,
        remedy: String,
    },
    #[error("data set `{id}`: parquet file {file} has no column `{column}`: pass --image-column with one of its columns: {available}")]
    MissingColumn {
        id: String,
        file: String,
        column: String,
        available: String,
    },
    #[error("data set `{id}`: column `{column}` of parquet file {file} holds {kind}, not image bytes: pass --image-column with {hint}")]
    NotImageColumn {
        id: String,
        file: String,
        column: String,
        kind: String,
        hint: String,
    },
    #[error(
        "data set `{id}`: {file} row {row}: {detail}; images written before it are kept: {remedy}"
    )]
    BadRow {
        id: String,
        file: String,
        row: u64,
        detail: String,
        remedy: String,
    },
    #[error("data set `{id}`: the Hub's list of parquet files changed while they were fetched ({listed} listed, {opened} opened): run the same command again")]
    ListingChanged {
        id: String,
        listed: usize,
        opened: usize,
    },
    #[error("data set `{id}`: {detail}")]
    Client { id: String, detail: String },
    #[error(transparent)]
    Files(#[from] crate::error::Error),
}

fn bad_setting(field: &str, reason: impl Into<String>) -> HubError {
    HubError::BadSetting {
        field: field.into(),
        reason: reason.into(),
    }
}

/// What to fetch and where to write it.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// `owner/name`, as in the data set's page address.
    pub dataset: String,
    /// Which split's parquet files to read (`train`, `test`, …).
    pub split: String,
    /// The column that holds the images: the Hub's image feature (a struct of `bytes` and
    /// `path`) or plain binary.
    pub image_column: String,
    /// Stop once this many images are in the folder (new or already there).
    pub limit: Option<usize>,
    /// The data set's folder, normally `data/raw/hub-<owner>--<name>` (see [`folder_name`]).
    pub out_dir: PathBuf,
    /// Bounds on one image's bytes and pixels (the project's defaults).
    pub load_limits: LoadLimits,
}

impl HubConfig {
    /// Defaults for `dataset` (the `train` split, the `image` column, no limit), written into
    /// its own folder under `raw_dir`. The id is checked by [`HubConfig::validate`].
    pub fn new(dataset: impl Into<String>, raw_dir: &Path) -> Self {
        let dataset = dataset.into();
        let out_dir = raw_dir.join(folder_name(&dataset).unwrap_or_else(|_| "hub-invalid".into()));
        Self {
            dataset,
            split: "train".into(),
            image_column: "image".into(),
            limit: None,
            out_dir,
            load_limits: LoadLimits::default(),
        }
    }

    /// Check every setting that came from the user before anything is fetched.
    pub fn validate(&self) -> Result<(), HubError> {
        validate_dataset_id(&self.dataset)?;
        let split_ok = !self.split.is_empty()
            && self.split.len() <= 64
            && self
                .split
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            && !self.split.starts_with('.');
        if !split_ok {
            return Err(bad_setting(
                "--split",
                format!(
                    "`{}` is not a split name (1-64 letters, digits, `_`, `-` or `.`, e.g. train)",
                    self.split
                ),
            ));
        }
        if self.image_column.is_empty()
            || self.image_column.len() > 128
            || self.image_column.chars().any(char::is_control)
        {
            return Err(bad_setting(
                "--image-column",
                "a column name has 1-128 characters and no control characters",
            ));
        }
        if let Some(limit) = self.limit {
            if limit == 0 || limit > MAX_LIMIT {
                return Err(bad_setting(
                    "--limit",
                    format!("{limit} is outside 1-{MAX_LIMIT}"),
                ));
            }
        }
        Ok(())
    }
}

/// Check a data set id (`owner/name`) and return its two parts. The Hub's own rules: letters,
/// digits, `-`, `_` and `.`, at most 96 characters a part, no `--` or `..`, and neither part
/// starting or ending with `-` or `.`.
pub fn validate_dataset_id(id: &str) -> Result<(&str, &str), HubError> {
    let bad = |reason: &str| HubError::BadId {
        id: id.chars().take(200).collect(),
        reason: reason.into(),
    };
    let (owner, name) = id
        .split_once('/')
        .ok_or_else(|| bad("it has no `/` between owner and name"))?;
    for part in [owner, name] {
        if part.is_empty() {
            return Err(bad("the owner or the name is empty"));
        }
        if part.len() > 96 {
            return Err(bad("a part is longer than 96 characters"));
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(bad(
                "only letters, digits, `-`, `_` and `.` may appear on each side of the `/`",
            ));
        }
        if part.contains("--") || part.contains("..") {
            return Err(bad("`--` and `..` are not allowed"));
        }
        if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
            return Err(bad("a part may not start or end with `-` or `.`"));
        }
    }
    Ok((owner, name))
}

/// The folder under `data/raw/` for a data set: `hub-<owner>--<name>` (`--` cannot occur in an
/// id, so two data sets never share a folder). Always a single plain folder name.
pub fn folder_name(id: &str) -> Result<String, HubError> {
    let (owner, name) = validate_dataset_id(id)?;
    let folder = safe_file_name(&format!("hub-{owner}--{name}"), "hub");
    debug_assert_eq!(
        safe_relative_path(Path::new(&folder)),
        Some(PathBuf::from(&folder))
    );
    Ok(folder)
}

/// The split a file of the parquet conversion belongs to, from its path:
/// `<config>/<split>/<n>.parquet` (today's layout, `partial-<split>` when only part of a large
/// split was converted) or `<config>/<name>-<split>[-<i>-of-<n>].parquet` (the older one).
pub fn split_of(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [_config, split, _file] => Some(split.strip_prefix("partial-").unwrap_or(split).into()),
        [_config, file] => {
            let stem = file.strip_suffix(".parquet")?;
            let mut pieces: Vec<&str> = stem.split('-').collect();
            // Drop a `-00000-of-00002` shard suffix.
            if pieces.len() >= 4 && pieces[pieces.len() - 2] == "of" {
                pieces.truncate(pieces.len() - 3);
            }
            (pieces.len() >= 2).then(|| pieces[pieces.len() - 1].to_string())
        }
        _ => None,
    }
}

/// One image in the folder, as the manifest records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageEntry {
    /// File name in the data set's folder.
    pub name: String,
    /// Parquet file (path in the conversion) and row (0-based, within that file) it came from.
    pub file: String,
    pub row: u64,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// Of the image's bytes, as published and as written (they are written unchanged).
    pub sha256: String,
}

/// A row that gave no image, with the reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SkippedRow {
    pub file: String,
    pub row: u64,
    pub reason: String,
}

/// A parquet file that was read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParquetFile {
    pub path: String,
    pub rows: u64,
    /// The commit of the copy that was read (from the Hub cache), when known.
    pub commit: Option<String>,
}

/// Counts of the last run, as the manifest records them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HubCounts {
    /// Rows of the split's parquet files read in this run.
    pub rows_read: u64,
    /// Images written in this run.
    pub written: u64,
    /// Images found already there (same sha256 in the manifest and on disk).
    pub already_there: u64,
    /// Rows that gave no image (empty, corrupt, too large, not an image), listed in `skipped`.
    pub skipped: u64,
    /// Images in the folder according to the manifest, all runs and splits together.
    pub images: u64,
}

/// `data/raw/hub-<owner>--<name>/manifest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HubManifest {
    /// `owner/name`.
    pub id: String,
    /// The Hub it came from (`HF_ENDPOINT`, or the Hub's own address).
    pub endpoint: String,
    /// The parquet conversion's revision name and the commit it pointed at.
    pub parquet_revision: String,
    pub revision: String,
    /// The licence as the data set's card publishes it (`license:` in its metadata), or a note
    /// that it publishes none. Check it before using the images.
    pub license: String,
    /// Split and column of the last run.
    pub split: String,
    pub image_column: String,
    pub files: Vec<ParquetFile>,
    pub counts: HubCounts,
    /// Rows of the last run that gave no image.
    pub skipped: Vec<SkippedRow>,
    /// Every image in the folder, sorted by file name.
    pub images: Vec<ImageEntry>,
}

impl HubManifest {
    /// Read a manifest written by [`fetch`].
    pub fn load(path: &Path) -> crate::error::Result<Self> {
        use crate::error::{Error, IoResultExt};
        let text = std::fs::read_to_string(path).at(path)?;
        serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(path, format!("not a hub manifest: {e}")))
    }
}

/// What [`fetch`] did.
#[derive(Debug, Clone)]
pub struct HubSummary {
    pub folder: PathBuf,
    pub revision: String,
    pub license: String,
    pub counts: HubCounts,
    /// Rows that gave no image, each as "file row N: reason".
    pub skipped: Vec<SkippedRow>,
    /// Whether `--limit` stopped the run before the split's end.
    pub limited: bool,
    /// Set when the files read are cached copies of an older revision than the Hub's current
    /// one: what happened and what to do.
    pub stale_cache: Option<String>,
}

/// Fetch the split's parquet files through `candle-datasets` and write its images into
/// `cfg.out_dir`. `HF_ENDPOINT`, `HF_TOKEN` (or the token file of `HF_HOME`) and the Hub cache
/// variables (`HF_HOME`, `HF_HUB_CACHE`) are honoured, as hf-hub reads them.
pub fn fetch(cfg: &HubConfig, progress: &indicatif::ProgressBar) -> Result<HubSummary, HubError> {
    cfg.validate()?;
    let id = cfg.dataset.as_str();
    let (owner, name) = validate_dataset_id(id)?;
    let client_error = |e: HFError| HubError::Client {
        id: id.into(),
        detail: format!("could not set up the Hub client: {e}"),
    };
    let client = hf_hub::HFClientBuilder::new()
        .retry_max_attempts(HTTP_ATTEMPTS)
        .build()
        .map_err(client_error)?;
    let endpoint = client.endpoint().to_string();
    let client = HFClientSync::from_inner(client).map_err(client_error)?;
    let repo = client.dataset(owner, name);
    let hub = Hub {
        id,
        endpoint: &endpoint,
    };

    progress.set_message("listing");
    // The data set's card (for its licence), then the parquet conversion's list of files.
    let card = repo
        .info()
        .send()
        .map_err(|e| hub.error(e, "reading its card"))?;
    let license = license_of(card.card_data.as_ref(), card.tags.as_deref());
    let listing = repo
        .info()
        .revision(PARQUET_REVISION)
        .send()
        .map_err(|e| hub.error(e, "listing its parquet files"))?;
    let revision = listing.sha.clone().unwrap_or_else(|| "unknown".into());
    // The same filter as `from_hub`, so that its readers line up with these names.
    let names: Vec<String> = listing
        .siblings
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.rfilename)
        .filter(|f| f.ends_with(".parquet"))
        .collect();
    if names.is_empty() {
        return Err(HubError::NoParquet {
            id: id.into(),
            endpoint,
        });
    }
    let wanted: Vec<bool> = names
        .iter()
        .map(|n| split_of(n).as_deref() == Some(cfg.split.as_str()))
        .collect();
    if !wanted.contains(&true) {
        let mut splits: Vec<String> = names.iter().filter_map(|n| split_of(n)).collect();
        splits.sort();
        splits.dedup();
        return Err(HubError::NoSplit {
            id: id.into(),
            split: cfg.split.clone(),
            available: if splits.is_empty() {
                "(none recognised)".into()
            } else {
                splits.join(", ")
            },
        });
    }

    // candle-datasets' loader: every parquet file of the conversion (all splits: it has no
    // filter), downloaded into the Hub cache once and opened. The split is chosen below.
    progress.set_message("fetching");
    // ANCHOR: from_hub
    let readers = match candle_datasets::hub::from_hub(&client, id.to_string()) {
        Ok(readers) => readers,
        Err(candle_datasets::hub::Error::HubError(e)) => {
            return Err(hub.error(e, "downloading its parquet files"))
        }
        // A file that does not open as parquet (truncated, damaged): find it and evict it.
        Err(e) => return Err(diagnose_unreadable(&hub, &repo, &names, &e.to_string())),
    };
    // ANCHOR_END: from_hub
    if readers.len() != names.len() {
        return Err(HubError::ListingChanged {
            id: id.into(),
            listed: names.len(),
            opened: readers.len(),
        });
    }
    let selected: Vec<(String, SerializedFileReader<File>)> = names
        .into_iter()
        .zip(readers)
        .zip(&wanted)
        .filter(|(_, want)| **want)
        .map(|(pair, _)| pair)
        .collect();

    let mut writer = FolderWriter::open(cfg, &endpoint, &revision, &license)?;
    let files: Vec<ParquetFile> = selected
        .iter()
        .map(|(path, reader)| ParquetFile {
            path: path.clone(),
            rows: reader.metadata().file_metadata().num_rows().max(0) as u64,
            commit: cached_commit(&repo, path),
        })
        .collect();
    // `from_hub` reads a file from the cache whenever the cache has it, even when the Hub has
    // converted the data set again since: say so rather than record a revision not read.
    let stale: Vec<&str> = files
        .iter()
        .filter_map(|f| f.commit.as_deref())
        .filter(|c| *c != revision)
        .collect();
    let stale_cache = stale.first().map(|old| {
        format!(
            "data set `{id}`: the Hub's parquet conversion is now at revision {revision}, but the files read are the cached copies of revision {old} (candle-datasets reads its cache first): to read the new revision, delete the data set's folder in the Hub cache ({}) and run the same command again",
            hf_hub::resolve_cache_dir()
                .join(format!("datasets--{owner}--{name}"))
                .display()
        )
    });
    let total_rows: u64 = files.iter().map(|f| f.rows).sum();
    writer.manifest.files = files;
    progress.set_length(match cfg.limit {
        Some(limit) => total_rows.min(limit as u64),
        None => total_rows,
    });
    progress.set_position(0);
    progress.set_message("images");

    let outcome = selected
        .iter()
        .try_for_each(|(path, reader)| read_file(&hub, cfg, path, reader, &mut writer, progress));
    // Whatever happened, what was written is recorded (the rows already written are kept).
    writer.save()?;
    let stopped_by_limit = match outcome {
        Ok(()) => false,
        Err(Stop::Limit) => true,
        Err(Stop::Failed(e)) => return Err(*e),
    };
    if writer.images_seen == 0 && writer.leading_non_images > 0 {
        return Err(not_image_content(&hub, cfg, &writer));
    }
    Ok(HubSummary {
        folder: cfg.out_dir.clone(),
        revision,
        license,
        counts: writer.manifest.counts.clone(),
        skipped: writer.manifest.skipped.clone(),
        limited: stopped_by_limit,
        stale_cache,
    })
}

/// The commit of the Hub cache's copy of a parquet file, from its path
/// (`…/snapshots/<commit>/<file>`), asking the cache only.
fn cached_commit(repo: &HFRepositorySync<RepoTypeDataset>, file: &str) -> Option<String> {
    let path = repo
        .download_file()
        .filename(file)
        .revision(PARQUET_REVISION)
        .local_files_only(true)
        .send()
        .ok()?;
    let mut snapshot = path.as_path();
    for _ in file.split('/') {
        snapshot = snapshot.parent()?;
    }
    snapshot.file_name()?.to_str().map(str::to_string)
}

/// The data set and the Hub it is on, for error messages.
struct Hub<'a> {
    id: &'a str,
    endpoint: &'a str,
}

impl Hub<'_> {
    /// One clear line for an hf-hub error met while doing `what`.
    fn error(&self, e: HFError, what: &str) -> HubError {
        let id = self.id.to_string();
        let endpoint = self.endpoint.to_string();
        match e {
            HFError::RepoNotFound { .. } => HubError::NotFound { id, endpoint },
            // The parquet revision is asked for by name: 404 means no conversion, unless the
            // data set itself is missing, which the card request before it reports.
            HFError::RevisionNotFound { .. } => HubError::NoParquet { id, endpoint },
            HFError::AuthRequired { ref context } | HFError::Forbidden { ref context } => {
                HubError::NeedsAccess {
                    id,
                    endpoint,
                    status: context.status.to_string(),
                }
            }
            HFError::EntryNotFound { ref path, .. } => HubError::Server {
                id,
                what: what.into(),
                detail: format!("{path} is listed but the Hub answered 404 for it"),
            },
            HFError::Http { ref context } | HFError::RateLimited { ref context, .. } => {
                HubError::Server {
                    id,
                    what: what.into(),
                    detail: format!("the Hub answered {} for {}", context.status, context.url),
                }
            }
            HFError::Request { .. } | HFError::MalformedResponse { .. } | HFError::Json(_) => {
                HubError::Server {
                    id,
                    what: format!("{what} from {endpoint}"),
                    detail: one_line(&e.to_string()),
                }
            }
            other => HubError::Client {
                id,
                detail: format!("{what}: {}", one_line(&other.to_string())),
            },
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The licence as the card publishes it: `license` in its metadata (a string or a list), else
/// the `license:` tags the Hub derives from it.
fn license_of(card: Option<&serde_json::Value>, tags: Option<&[String]>) -> String {
    let from_card = card.and_then(|c| c.get("license")).and_then(|l| match l {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => {
            let names: Vec<&str> = items.iter().filter_map(|i| i.as_str()).collect();
            (!names.is_empty()).then(|| names.join(", "))
        }
        _ => None,
    });
    let from_tags = || {
        let names: Vec<&str> = tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.strip_prefix("license:"))
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    };
    from_card.or_else(from_tags).unwrap_or_else(|| {
        "not published: check the data set's page before using its images".into()
    })
}

/// `from_hub` failed to open a file: find which one (the downloaded files are in the Hub cache,
/// so this asks the cache only), remove its cached copy so the next run downloads it afresh, and
/// say so.
fn diagnose_unreadable(
    hub: &Hub,
    repo: &HFRepositorySync<RepoTypeDataset>,
    names: &[String],
    detail: &str,
) -> HubError {
    for name in names {
        let cached = repo
            .download_file()
            .filename(name.as_str())
            .revision(PARQUET_REVISION)
            .local_files_only(true)
            .send();
        let Ok(path) = cached else { continue };
        let opened = File::open(&path).map_err(|e| e.to_string()).and_then(|f| {
            SerializedFileReader::new(f)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if let Err(reason) = opened {
            let remedy = match remove_cached(&path) {
                Ok(()) => "its cached copy was removed, so running the same command again downloads it afresh; if it fails again, the published file is damaged: tell the data set's authors or pick another split".to_string(),
                Err(e) => format!("delete its cached copy ({}: {e}) and run the same command again", path.display()),
            };
            return HubError::BadParquet {
                id: hub.id.into(),
                file: name.clone(),
                detail: one_line(&reason),
                remedy,
            };
        }
    }
    HubError::BadParquet {
        id: hub.id.into(),
        file: "(one of the split's files)".into(),
        detail: one_line(detail),
        remedy: format!(
            "clear the data set's folder in the Hub cache ({}) and run the same command again",
            hf_hub::resolve_cache_dir().display()
        ),
    }
}

/// Remove a file of the Hub cache: the snapshot's link and the blob it points to (hf-hub would
/// otherwise link the same blob again). Only a blob inside the same cached repository is removed.
fn remove_cached(snapshot: &Path) -> std::io::Result<()> {
    let blob = std::fs::canonicalize(snapshot)?;
    let repo_folder = snapshot
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "snapshots"))
        .and_then(Path::parent)
        .map(std::fs::canonicalize)
        .transpose()?;
    if let Some(repo_folder) = repo_folder {
        if blob != snapshot && blob.starts_with(repo_folder.join("blobs")) {
            std::fs::remove_file(&blob)?;
        }
    }
    std::fs::remove_file(snapshot)
}

/// Why reading stopped early.
enum Stop {
    Limit,
    Failed(Box<HubError>),
}

impl From<HubError> for Stop {
    fn from(e: HubError) -> Self {
        Stop::Failed(Box::new(e))
    }
}

impl From<crate::error::Error> for Stop {
    fn from(e: crate::error::Error) -> Self {
        Stop::Failed(Box::new(e.into()))
    }
}

/// Where the image bytes of a file are: the leaf column's index and its definition level when
/// a value is present.
struct ImageLeaf {
    index: usize,
    max_def_level: i16,
}

/// Find the image column's bytes: `<column>.bytes` (the Hub's image feature) or `<column>`
/// itself when it is plain binary.
fn find_image_leaf(
    hub: &Hub,
    schema: &SchemaDescriptor,
    column: &str,
    file: &str,
) -> Result<ImageLeaf, HubError> {
    let top: Vec<String> = schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    if !top.iter().any(|t| t == column) {
        return Err(HubError::MissingColumn {
            id: hub.id.into(),
            file: file.into(),
            column: column.into(),
            available: if top.is_empty() {
                "(none)".into()
            } else {
                top.join(", ")
            },
        });
    }
    let is_text = |leaf: &parquet::schema::types::ColumnDescriptor| {
        matches!(
            leaf.converted_type(),
            ConvertedType::UTF8 | ConvertedType::JSON | ConvertedType::ENUM
        ) || matches!(
            leaf.logical_type_ref(),
            Some(LogicalType::String | LogicalType::Json | LogicalType::Enum)
        )
    };
    // What a top-level column holds: an image leaf, or a description of what it is instead.
    let classify = |name: &str| -> Result<ImageLeaf, String> {
        let leaves: Vec<(usize, &parquet::schema::types::ColumnDescPtr)> = schema
            .columns()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.path().parts().first().map(String::as_str) == Some(name))
            .collect();
        if leaves.iter().any(|(_, c)| c.max_rep_level() > 0) {
            return Err("a list of values".into());
        }
        let leaf = leaves
            .iter()
            .find(|(_, c)| c.path().parts() == [name, "bytes"])
            .or_else(|| leaves.iter().find(|(_, c)| c.path().parts() == [name]));
        match leaf {
            Some((index, c)) if c.physical_type() == PhysicalType::BYTE_ARRAY && !is_text(c) => {
                Ok(ImageLeaf {
                    index: *index,
                    max_def_level: c.max_def_level(),
                })
            }
            Some((_, c)) if c.physical_type() == PhysicalType::BYTE_ARRAY => Err("text".into()),
            Some((_, c)) => Err(format!("{} numbers", c.physical_type())),
            None => Err("a nested record without a `bytes` field".into()),
        }
    };
    classify(column).map_err(|kind| {
        let candidates: Vec<&str> = top
            .iter()
            .filter(|t| t.as_str() != column && classify(t).is_ok())
            .map(String::as_str)
            .collect();
        HubError::NotImageColumn {
            id: hub.id.into(),
            file: file.into(),
            column: column.into(),
            kind,
            hint: if candidates.is_empty() {
                format!(
                    "a column of images; its columns are: {}; this data set may hold no images",
                    top.join(", ")
                )
            } else {
                format!("one of: {}", candidates.join(", "))
            },
        }
    })
}

/// Read one parquet file's image column, a few rows at a time, and hand each row to `writer`.
fn read_file(
    hub: &Hub,
    cfg: &HubConfig,
    file: &str,
    reader: &SerializedFileReader<File>,
    writer: &mut FolderWriter,
    progress: &indicatif::ProgressBar,
) -> Result<(), Stop> {
    let metadata = reader.metadata();
    let schema = metadata.file_metadata().schema_descr();
    let leaf = find_image_leaf(hub, schema, &cfg.image_column, file)?;
    let unreadable = |row: u64, detail: String| {
        HubError::BadRow {
        id: hub.id.into(),
        file: file.into(),
        row,
        detail,
        remedy: "clear the data set's folder in the Hub cache and run the same command again; if it fails again, the published file is damaged".into(),
    }
    };
    let mut row: u64 = 0;
    for group in 0..reader.num_row_groups() {
        let group_rows = metadata.row_group(group).num_rows().max(0) as u64;
        let declared = metadata
            .row_group(group)
            .column(leaf.index)
            .uncompressed_size();
        if declared > MAX_COLUMN_CHUNK_BYTES {
            return Err(unreadable(
                row,
                format!("row group {group} declares {declared} bytes of images, over the {MAX_COLUMN_CHUNK_BYTES}-byte limit"),
            )
            .into());
        }
        let group_reader = reader
            .get_row_group(group)
            .map_err(|e| unreadable(row, format!("row group {group}: {e}")))?;
        let ColumnReader::ByteArrayColumnReader(mut column) = group_reader
            .get_column_reader(leaf.index)
            .map_err(|e| unreadable(row, format!("row group {group}: {e}")))?
        else {
            return Err(unreadable(row, "the image column is not binary".into()).into());
        };
        let mut levels: Vec<i16> = Vec::with_capacity(BATCH_ROWS);
        let mut values: Vec<ByteArray> = Vec::with_capacity(BATCH_ROWS);
        let mut left = group_rows;
        while left > 0 {
            levels.clear();
            values.clear();
            let want = (left as usize).min(BATCH_ROWS);
            let (records, _, _) = column
                .read_records(want, Some(&mut levels), None, &mut values)
                .map_err(|e| unreadable(row, one_line(&e.to_string())))?;
            if records == 0 {
                return Err(
                    unreadable(row, format!("row group {group} ends {left} rows early")).into(),
                );
            }
            let mut next_value = values.iter();
            for r in 0..records {
                let present = leaf.max_def_level == 0 || levels.get(r) == Some(&leaf.max_def_level);
                let bytes = if present {
                    next_value.next().map(ByteArray::data)
                } else {
                    None
                };
                writer.row(hub, cfg, file, row, bytes)?;
                row += 1;
                progress.inc(1);
                if cfg.limit.is_some_and(|limit| writer.images_seen >= limit) {
                    return Err(Stop::Limit);
                }
            }
            left -= records as u64;
        }
    }
    Ok(())
}

/// The data set's folder and its manifest, updated row by row.
struct FolderWriter {
    dir: PathBuf,
    manifest: HubManifest,
    /// Known images by (parquet file, row).
    by_row: BTreeMap<(String, u64), ImageEntry>,
    /// Images in the folder after this run's rows so far (new or already there).
    images_seen: usize,
    /// Rows read before the first image that were not images at all.
    leading_non_images: usize,
    first_non_image: Option<String>,
    last_save: std::time::Instant,
}

impl FolderWriter {
    fn open(
        cfg: &HubConfig,
        endpoint: &str,
        revision: &str,
        license: &str,
    ) -> Result<Self, HubError> {
        let path = cfg.out_dir.join(MANIFEST);
        // A manifest of another data set, or one that does not parse, is started afresh: every
        // image is then checked again and rewritten only if its bytes differ.
        let previous = HubManifest::load(&path)
            .ok()
            .filter(|m| m.id == cfg.dataset);
        let by_row = previous
            .iter()
            .flat_map(|m| m.images.iter())
            .map(|e| ((e.file.clone(), e.row), e.clone()))
            .collect();
        Ok(Self {
            dir: cfg.out_dir.clone(),
            manifest: HubManifest {
                id: cfg.dataset.clone(),
                endpoint: endpoint.into(),
                parquet_revision: PARQUET_REVISION.into(),
                revision: revision.into(),
                license: license.into(),
                split: cfg.split.clone(),
                image_column: cfg.image_column.clone(),
                files: vec![],
                counts: HubCounts::default(),
                skipped: vec![],
                images: vec![],
            },
            by_row,
            images_seen: 0,
            leading_non_images: 0,
            first_non_image: None,
            last_save: std::time::Instant::now(),
        })
    }

    /// One row: already there, written, or skipped with its reason.
    fn row(
        &mut self,
        hub: &Hub,
        cfg: &HubConfig,
        file: &str,
        row: u64,
        bytes: Option<&[u8]>,
    ) -> Result<(), Stop> {
        self.manifest.counts.rows_read += 1;
        let Some(bytes) = bytes else {
            self.skip(file, row, "no image in this row (empty)".into());
            return Ok(());
        };
        let sha = sha256_hex(bytes);
        let key = (file.to_string(), row);
        if let Some(known) = self.by_row.get(&key) {
            if known.sha256 == sha && self.on_disk_sha(&known.name).as_deref() == Some(&sha) {
                self.manifest.counts.already_there += 1;
                self.images_seen += 1;
                return Ok(());
            }
        }
        let image = match load_image(bytes, &cfg.load_limits) {
            Ok(image) => image,
            Err(e) => {
                if matches!(e, LoadError::NotAnImage(_)) && self.images_seen == 0 {
                    self.leading_non_images += 1;
                    self.first_non_image.get_or_insert_with(|| e.to_string());
                    if self.leading_non_images >= NOT_IMAGE_PROBE {
                        return Err(not_image_content(hub, cfg, self).into());
                    }
                }
                self.skip(file, row, e.to_string());
                return Ok(());
            }
        };
        let name = format!("{}-{row:07}.{}", file_stem(file), image.format.extension());
        if let Some(old) = self.by_row.get(&key) {
            // The old file of this row, under another extension (names read back from the
            // manifest are used only if they are plain file names).
            if old.name != name && is_plain_name(&old.name) {
                let _ = std::fs::remove_file(self.dir.join(&old.name));
            }
        }
        write_atomic(&self.dir.join(&name), bytes)?;
        let entry = ImageEntry {
            name,
            file: file.into(),
            row,
            format: image.format.extension().into(),
            width: image.pixels.width(),
            height: image.pixels.height(),
            bytes: bytes.len() as u64,
            sha256: sha,
        };
        self.by_row.insert(key, entry);
        self.manifest.counts.written += 1;
        self.images_seen += 1;
        if self.last_save.elapsed() >= MANIFEST_EVERY {
            self.save()?;
        }
        Ok(())
    }

    fn skip(&mut self, file: &str, row: u64, reason: String) {
        self.manifest.counts.skipped += 1;
        self.manifest.skipped.push(SkippedRow {
            file: file.into(),
            row,
            reason,
        });
    }

    /// The sha256 of a file in the folder, if it is there (read whole: images are bounded).
    fn on_disk_sha(&self, name: &str) -> Option<String> {
        if !is_plain_name(name) {
            return None;
        }
        std::fs::read(self.dir.join(name))
            .ok()
            .map(|b| sha256_hex(&b))
    }

    /// Write the manifest (not when nothing was ever written: a failed first run leaves no
    /// folder behind).
    fn save(&mut self) -> Result<(), HubError> {
        let path = self.dir.join(MANIFEST);
        if self.by_row.is_empty() && !path.exists() {
            return Ok(());
        }
        let mut images: Vec<ImageEntry> = self.by_row.values().cloned().collect();
        images.sort_by(|a, b| a.name.cmp(&b.name));
        self.manifest.counts.images = images.len() as u64;
        self.manifest.images = images;
        let json = serde_json::to_vec_pretty(&self.manifest).map_err(crate::error::Error::from)?;
        write_atomic(&path, &json)?;
        self.manifest.images.clear(); // kept in `by_row`; the copy was for writing
        self.last_save = std::time::Instant::now();
        Ok(())
    }
}

/// The part of an image's file name that names its parquet file: the path with `/` as `_`
/// (`default_train_0000`), or, when that is not a plain name of at most 64 characters, a plain
/// prefix and a hash of the path, so that two parquet files never share a stem.
fn file_stem(file: &str) -> String {
    let plain = file.trim_end_matches(".parquet").replace('/', "_");
    let safe = safe_file_name(&plain, "part");
    if safe == plain && plain.len() <= 64 {
        plain
    } else {
        let prefix: String = safe.chars().take(40).collect();
        format!("{prefix}-{}", &sha256_hex(file.as_bytes())[..12])
    }
}

/// A name read back from the manifest is used as a path only if it is one plain file name.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && safe_file_name(name, "") == name
}

fn not_image_content(hub: &Hub, cfg: &HubConfig, writer: &FolderWriter) -> HubError {
    HubError::NotImageColumn {
        id: hub.id.into(),
        file: writer
            .manifest
            .skipped
            .first()
            .map(|s| s.file.clone())
            .unwrap_or_default(),
        column: cfg.image_column.clone(),
        kind: format!(
            "other bytes (none of its first {} non-empty rows is an image; the first: {})",
            writer.leading_non_images,
            writer.first_non_image.as_deref().unwrap_or("not an image")
        ),
        hint: "the column that holds the data set's images".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_owner_slash_name_with_safe_characters() {
        assert_eq!(
            validate_dataset_id("huggan/smithsonian_butterflies_subset").unwrap(),
            ("huggan", "smithsonian_butterflies_subset")
        );
        assert!(validate_dataset_id("A.b_c/x-1.2").is_ok());
        for bad in [
            "noslash",
            "/name",
            "owner/",
            "a/b/c",
            "../etc",
            "owner/..",
            "owner/na..me",
            "own--er/name",
            "owner/.hidden",
            "owner/name-",
            "owner/name with space",
            "owner/名前",
            "owner\\name",
        ] {
            assert!(validate_dataset_id(bad).is_err(), "{bad} accepted");
        }
        assert!(validate_dataset_id(&format!("o/{}", "n".repeat(97))).is_err());
    }

    #[test]
    fn folder_is_one_safe_name_per_data_set() {
        assert_eq!(
            folder_name("huggan/smithsonian_butterflies_subset").unwrap(),
            "hub-huggan--smithsonian_butterflies_subset"
        );
        assert_ne!(folder_name("a/b-c").unwrap(), folder_name("a-b/c").unwrap());
        let folder = folder_name("Some.Org/Data_Set").unwrap();
        assert!(!folder.contains('/') && !folder.contains(".."));
        assert!(folder_name("../x").is_err());
    }

    #[test]
    fn split_from_both_layouts_of_the_conversion() {
        assert_eq!(
            split_of("default/train/0000.parquet").as_deref(),
            Some("train")
        );
        assert_eq!(
            split_of("default/partial-train/0003.parquet").as_deref(),
            Some("train")
        );
        assert_eq!(
            split_of("plain_text/imdb-test.parquet").as_deref(),
            Some("test")
        );
        assert_eq!(
            split_of("default/my-set-train-00001-of-00004.parquet").as_deref(),
            Some("train")
        );
        assert_eq!(split_of("README.md"), None);
    }

    #[test]
    fn settings_are_bounded() {
        let dir = Path::new("raw");
        let ok = HubConfig::new("owner/name", dir);
        assert!(ok.validate().is_ok());
        assert_eq!(ok.out_dir, dir.join("hub-owner--name"));
        for (field, cfg) in [
            (
                "--limit",
                HubConfig {
                    limit: Some(0),
                    ..ok.clone()
                },
            ),
            (
                "--limit",
                HubConfig {
                    limit: Some(MAX_LIMIT + 1),
                    ..ok.clone()
                },
            ),
            (
                "--split",
                HubConfig {
                    split: "../x".into(),
                    ..ok.clone()
                },
            ),
            (
                "--split",
                HubConfig {
                    split: String::new(),
                    ..ok.clone()
                },
            ),
            (
                "--image-column",
                HubConfig {
                    image_column: String::new(),
                    ..ok.clone()
                },
            ),
            (
                "--image-column",
                HubConfig {
                    image_column: "a\nb".into(),
                    ..ok.clone()
                },
            ),
        ] {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn image_names_are_plain_and_distinct_per_parquet_file() {
        assert_eq!(
            file_stem("default/train/0000.parquet"),
            "default_train_0000"
        );
        let long_a = format!("{}/train/0000.parquet", "c".repeat(80));
        let long_b = format!("{}/train/0001.parquet", "c".repeat(80));
        assert_ne!(file_stem(&long_a), file_stem(&long_b));
        assert_ne!(
            file_stem("a b/train/0.parquet"),
            file_stem("a_b/train/0.parquet")
        );
        for stem in [file_stem(&long_a), file_stem("a b/../x.parquet")] {
            assert!(is_plain_name(&stem) && stem.len() <= 64, "{stem}");
        }
        assert!(!is_plain_name("../escape.png"));
        assert!(!is_plain_name("sub/dir.png"));
        assert!(!is_plain_name(""));
    }

    #[test]
    fn licence_from_card_then_tags() {
        let card = serde_json::json!({"license": "cc-by-4.0"});
        assert_eq!(license_of(Some(&card), None), "cc-by-4.0");
        let list = serde_json::json!({"license": ["mit", "apache-2.0"]});
        assert_eq!(license_of(Some(&list), None), "mit, apache-2.0");
        let tags = vec!["task:x".to_string(), "license:cc0-1.0".to_string()];
        assert_eq!(license_of(None, Some(&tags)), "cc0-1.0");
        assert!(license_of(None, None).starts_with("not published"));
    }
}
