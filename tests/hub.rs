//! Chapter 2's hub path end to end, offline: the tests write small parquet files (an image column
//! in the Hub's convention, a struct of `bytes` and `path`, plus plain binary, number and text
//! columns), serve them from a fake Hub on 127.0.0.1 that answers the requests hf-hub makes for
//! `candle_datasets::hub::from_hub` (the data set's card, the `refs/convert/parquet` listing,
//! HEAD and GET of each file), and run the real `chapter-02 hub` binary against it through
//! `HF_ENDPOINT`, with its own `HF_HOME` (the Hub cache). Then: images written with the right
//! bytes, the manifest, a rerun that writes nothing, `--limit`, and each failure case ending in one
//! clear line.
#![cfg(feature = "hub")]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use logogan::data::hub::HubManifest;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

const ID: &str = "logo-lab/tiny-logos";
const FOLDER: &str = "hub-logo-lab--tiny-logos";
const PARQUET_SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const TRAIN_0: &str = "default/train/0000.parquet";
const TRAIN_1: &str = "default/train/0001.parquet";
const TEST_0: &str = "default/test/0000.parquet";

// ---------------------------------------------------------------------------------------------
// Fixtures: images and parquet files.

/// A parquet file of the conversion: its path and bytes.
type ParquetFixture = (String, Vec<u8>);
/// An image the fixture holds: parquet file, row, bytes.
type Expected = (&'static str, u64, Vec<u8>);

fn png(colour: [u8; 3]) -> Vec<u8> {
    encode(colour, image::ImageFormat::Png)
}

fn jpeg(colour: [u8; 3]) -> Vec<u8> {
    encode(colour, image::ImageFormat::Jpeg)
}

fn encode(colour: [u8; 3], format: image::ImageFormat) -> Vec<u8> {
    let mut image = image::RgbImage::from_pixel(24, 24, image::Rgb([255, 255, 255]));
    for y in 6..18 {
        for x in 6..18 {
            image.put_pixel(x, y, image::Rgb(colour));
        }
    }
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

/// A PNG cut short: the signature is right, the rest is missing.
fn corrupt_png() -> Vec<u8> {
    png([1, 2, 3])[..40].to_vec()
}

/// One row of a fixture file: the image (None: a null image), and what the other columns hold.
struct Row {
    image: Option<Vec<u8>>,
    /// Plain binary column: the same image, or other bytes.
    raw: Option<Vec<u8>>,
}

fn row(image: Option<Vec<u8>>) -> Row {
    Row {
        raw: image.clone(),
        image,
    }
}

/// A parquet file with the Hub's image feature (`image: {bytes, path}`), a plain binary column
/// (`raw`), a number (`label`), text (`caption`) and binary that is not images (`blob`), written
/// in row groups of `group` rows, compressed as the Hub's conversion is (snappy).
fn parquet_file(rows: &[Row], group: usize) -> Vec<u8> {
    let schema = parse_message_type(
        "message schema {
            optional group image {
                optional binary bytes;
                optional binary path (STRING);
            }
            optional int64 label;
            optional binary caption (STRING);
            optional binary raw;
            optional binary blob;
        }",
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer =
        SerializedFileWriter::new(&mut out, Arc::new(schema), Arc::new(props)).unwrap();
    for (g, chunk) in rows.chunks(group).enumerate() {
        let mut rg = writer.next_row_group().unwrap();
        let mut index = 0;
        while let Some(mut col) = rg.next_column().unwrap() {
            let first = g * group;
            match index {
                0 => {
                    // image.bytes: 2 = present, 1 = the struct is there but its bytes are null.
                    let values: Vec<ByteArray> = chunk
                        .iter()
                        .filter_map(|r| r.image.clone().map(ByteArray::from))
                        .collect();
                    let defs: Vec<i16> = chunk
                        .iter()
                        .map(|r| if r.image.is_some() { 2 } else { 1 })
                        .collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, Some(&defs), None)
                        .unwrap();
                }
                1 => {
                    let values: Vec<ByteArray> = (0..chunk.len())
                        .map(|i| ByteArray::from(format!("logo-{}.png", first + i).as_str()))
                        .collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, Some(&vec![2; chunk.len()]), None)
                        .unwrap();
                }
                2 => {
                    let values: Vec<i64> = (0..chunk.len()).map(|i| (first + i) as i64).collect();
                    col.typed::<Int64Type>()
                        .write_batch(&values, Some(&vec![1; chunk.len()]), None)
                        .unwrap();
                }
                3 | 5 => {
                    let values: Vec<ByteArray> = (0..chunk.len())
                        .map(|i| ByteArray::from(format!("a logo, row {}", first + i).as_str()))
                        .collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, Some(&vec![1; chunk.len()]), None)
                        .unwrap();
                }
                4 => {
                    let values: Vec<ByteArray> = chunk
                        .iter()
                        .filter_map(|r| r.raw.clone().map(ByteArray::from))
                        .collect();
                    let defs: Vec<i16> = chunk.iter().map(|r| r.raw.is_some() as i16).collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, Some(&defs), None)
                        .unwrap();
                }
                _ => unreachable!(),
            }
            col.close().unwrap();
            index += 1;
        }
        rg.close().unwrap();
    }
    writer.close().unwrap();
    out
}

/// The standard fixture: two train files (7 rows: 5 images, one corrupt, one null) and a test
/// file. Returns the files and the train images in order, by (file, row).
fn tiny_logos() -> (Vec<ParquetFixture>, Vec<Expected>) {
    let red = png([220, 0, 0]);
    let green = jpeg([0, 160, 0]);
    let blue = png([0, 0, 220]);
    let yellow = png([230, 200, 0]);
    let cyan = png([0, 200, 200]);
    let train_0 = parquet_file(
        &[
            row(Some(red.clone())),
            row(Some(green.clone())),
            row(Some(corrupt_png())),
            row(None),
            row(Some(blue.clone())),
        ],
        3,
    );
    let train_1 = parquet_file(&[row(Some(yellow.clone())), row(Some(cyan.clone()))], 8);
    let test_0 = parquet_file(&[row(Some(png([200, 0, 200])))], 8);
    (
        vec![
            (TRAIN_0.into(), train_0),
            (TRAIN_1.into(), train_1),
            (TEST_0.into(), test_0),
        ],
        vec![
            (TRAIN_0, 0, red),
            (TRAIN_0, 1, green),
            (TRAIN_0, 4, blue),
            (TRAIN_1, 0, yellow),
            (TRAIN_1, 1, cyan),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// The fake Hub.

/// One data set the fake Hub serves.
#[derive(Clone)]
struct Dataset {
    files: Vec<ParquetFixture>,
    card: serde_json::Value,
    /// `Authorization` value required for every request about it (a gated data set).
    token: Option<String>,
    /// The parquet conversion's commit.
    sha: String,
}

#[derive(Default)]
struct State {
    datasets: HashMap<String, Dataset>,
    /// Status forced for every request whose path contains the key.
    failing: Vec<(String, u16)>,
    /// (method, path) of every request, in order.
    log: Vec<(String, String)>,
}

struct FakeHub {
    endpoint: String,
    state: Arc<Mutex<State>>,
}

impl FakeHub {
    fn start() -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = server.server_addr().to_ip().expect("ip").port();
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let reply = answer(&shared, &request);
                let _ = request.respond(reply);
            }
        });
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    fn add(&self, id: &str, dataset: Dataset) {
        self.state
            .lock()
            .unwrap()
            .datasets
            .insert(id.into(), dataset);
    }

    fn fail(&self, path_part: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .failing
            .push((path_part.into(), status));
    }

    fn heal(&self) {
        self.state.lock().unwrap().failing.clear();
    }

    /// Requests so far, then forget them.
    fn take_log(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }
}

type Reply = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

fn status(code: u16, error_code: &str) -> Reply {
    tiny_http::Response::from_data(b"{\"error\":\"no\"}".to_vec())
        .with_status_code(code)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("X-Error-Code", error_code))
}

fn json(value: serde_json::Value) -> Reply {
    tiny_http::Response::from_data(value.to_string().into_bytes())
        .with_header(header("Content-Type", "application/json"))
}

/// The Hub's answers to hf-hub, as `candle_datasets::hub::from_hub` uses them:
/// `GET /api/datasets/<id>` and `GET /api/datasets/<id>/revision/refs%2Fconvert%2Fparquet`
/// (JSON with `sha` and `siblings`), `HEAD` and `GET /datasets/<id>/resolve/<rev>/<file>`
/// (`ETag`, `X-Repo-Commit` and `Content-Length`, then the bytes).
fn answer(state: &Mutex<State>, request: &tiny_http::Request) -> Reply {
    let mut state = state.lock().unwrap();
    let path = request.url().to_string();
    let method = request.method().to_string();
    state.log.push((method, path.clone()));
    if let Some((_, code)) = state
        .failing
        .iter()
        .find(|(p, _)| path.contains(p.as_str()))
    {
        return status(*code, "");
    }
    let (id, rest) = if let Some(rest) = path.strip_prefix("/api/datasets/") {
        let mut parts = rest.splitn(3, '/');
        let id = format!(
            "{}/{}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        );
        (id, parts.next().map(|r| format!("api:{r}")))
    } else if let Some(rest) = path.strip_prefix("/datasets/") {
        let mut parts = rest.splitn(3, '/');
        let id = format!(
            "{}/{}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        );
        (id, parts.next().map(|r| format!("file:{r}")))
    } else {
        return status(404, "");
    };
    let Some(dataset) = state.datasets.get(&id) else {
        return status(404, "RepoNotFound");
    };
    if let Some(token) = &dataset.token {
        let sent = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str().to_string());
        if sent.as_deref() != Some(format!("Bearer {token}").as_str()) {
            return status(401, "GatedRepo");
        }
    }
    match rest.as_deref() {
        None => json(serde_json::json!({
            "id": id, "sha": "f".repeat(40), "cardData": dataset.card,
            "siblings": [{"rfilename": "README.md"}],
        })),
        Some("api:revision/refs%2Fconvert%2Fparquet") => {
            let mut siblings = vec![serde_json::json!({"rfilename": ".gitattributes"})];
            siblings.extend(
                dataset
                    .files
                    .iter()
                    .map(|(name, _)| serde_json::json!({"rfilename": name})),
            );
            json(serde_json::json!({"id": id, "sha": dataset.sha, "siblings": siblings}))
        }
        Some(file) => {
            let Some(name) = file.strip_prefix("file:resolve/refs%2Fconvert%2Fparquet/") else {
                return status(404, "RevisionNotFound");
            };
            match dataset.files.iter().find(|(n, _)| n == name) {
                Some((_, bytes)) => {
                    let etag = logogan::fsutil::sha256_hex(bytes);
                    tiny_http::Response::from_data(bytes.clone())
                        .with_header(header("ETag", &format!("\"{etag}\"")))
                        .with_header(header("X-Repo-Commit", &dataset.sha))
                        .with_header(header("Content-Type", "application/octet-stream"))
                }
                None => status(404, "EntryNotFound"),
            }
        }
    }
}

fn tiny_logos_dataset() -> (Dataset, Vec<Expected>) {
    let (files, images) = tiny_logos();
    (
        Dataset {
            files,
            card: serde_json::json!({"license": "cc-by-4.0", "pretty_name": "tiny logos"}),
            token: None,
            sha: PARQUET_SHA.into(),
        },
        images,
    )
}

// ---------------------------------------------------------------------------------------------
// Running chapter-02.

/// A data folder and a Hub cache of its own, and the fake Hub to point at.
struct Scene {
    dir: tempfile::TempDir,
    hub: FakeHub,
}

impl Scene {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            hub: FakeHub::start(),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn folder(&self) -> PathBuf {
        self.data().join("raw").join(FOLDER)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// `chapter-02 --data-dir <tmp>/data hub ARGS` with HF_ENDPOINT at the fake Hub and HF_HOME
    /// in the temporary folder; nothing of the test process's environment is changed.
    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chapter-02"));
        cmd.arg("--data-dir").arg(self.data()).arg("hub").args(args);
        for var in [
            "HF_TOKEN",
            "HF_TOKEN_PATH",
            "HF_HUB_CACHE",
            "HUGGINGFACE_HUB_CACHE",
            "HF_HUB_DISABLE_IMPLICIT_TOKEN",
            "XDG_CACHE_HOME",
            "LOGOGAN_DATA_DIR",
            // A backtrace would follow the one-line message.
            "RUST_BACKTRACE",
            "RUST_LIB_BACKTRACE",
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HF_ENDPOINT", &self.hub.endpoint)
            .env("HF_HOME", self.dir.path().join("hf-home"))
            .env("NO_PROXY", "127.0.0.1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run(cmd.output().expect("run chapter-02"))
    }

    fn manifest(&self) -> HubManifest {
        HubManifest::load(&self.folder().join("manifest.json")).unwrap()
    }

    /// Whether a regular file of the Hub cache (under HF_HOME) holds exactly `bytes`.
    fn cache_holds(&self, bytes: &[u8]) -> bool {
        fn walk(dir: &std::path::Path, bytes: &[u8]) -> bool {
            std::fs::read_dir(dir).into_iter().flatten().any(|entry| {
                let entry = entry.unwrap();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    walk(&entry.path(), bytes)
                } else {
                    kind.is_file() && std::fs::read(entry.path()).unwrap() == bytes
                }
            })
        }
        walk(&self.dir.path().join("hf-home"), bytes)
    }

    /// Image files in the data set's folder, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.folder())
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "manifest.json")
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

struct Run(Output);

impl Run {
    fn ok(&self) -> bool {
        self.0.status.success()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// A failed run's message: exactly one line on stderr.
    fn one_error_line(&self) -> String {
        assert!(!self.ok(), "expected a failure; stdout: {}", self.stdout());
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.trim().lines().collect();
        assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
        lines[0].to_string()
    }
}

fn name_of(file: &str, row: u64, ext: &str) -> String {
    format!(
        "{}-{row:07}.{ext}",
        file.trim_end_matches(".parquet").replace('/', "_")
    )
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn fetches_the_split_skips_bad_rows_resumes_and_respects_limit() {
    let scene = Scene::new();
    let (dataset, images) = tiny_logos_dataset();
    scene.hub.add(ID, dataset);

    // --limit 2: the first two images only.
    let first = scene.run(&[ID, "--limit", "2"]);
    assert!(first.ok(), "{}", first.stderr());
    assert!(
        first.stdout().contains("stopped at --limit"),
        "{}",
        first.stdout()
    );
    assert_eq!(
        scene.files(),
        vec![name_of(TRAIN_0, 0, "png"), name_of(TRAIN_0, 1, "jpg")]
    );
    assert_eq!(scene.manifest().counts.images, 2);
    let log = scene.hub.take_log();
    assert!(
        log.iter().any(|(m, p)| m == "GET"
            && p.ends_with("/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet")),
        "the parquet files come through hf-hub's download: {log:?}"
    );

    // The whole split: three more images, the corrupt and the empty row reported by row.
    let full = scene.run(&[ID]);
    assert!(full.ok(), "{}", full.stderr());
    let expected: Vec<String> = images
        .iter()
        .map(|(file, row, bytes)| {
            let ext = if bytes.starts_with(&[0xFF, 0xD8]) {
                "jpg"
            } else {
                "png"
            };
            name_of(file, *row, ext)
        })
        .collect();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(
        scene.files(),
        sorted,
        "five images, the test split left out"
    );
    for ((_, _, bytes), name) in images.iter().zip(&expected) {
        assert_eq!(
            &std::fs::read(scene.folder().join(name)).unwrap(),
            bytes,
            "{name} is the published bytes, unchanged"
        );
    }
    let stderr = full.stderr();
    assert!(
        stderr.contains("default/train/0000.parquet row 2: corrupt or truncated png"),
        "{stderr}"
    );
    assert!(
        stderr.contains("default/train/0000.parquet row 3: no image"),
        "{stderr}"
    );
    assert!(
        full.stdout().contains("5 images in")
            && full
                .stdout()
                .contains("3 new, 2 already there, 2 rows skipped"),
        "{}",
        full.stdout()
    );
    assert!(full.stdout().contains("cc-by-4.0"), "{}", full.stdout());

    let manifest = scene.manifest();
    assert_eq!(manifest.id, ID);
    assert_eq!(manifest.revision, PARQUET_SHA);
    assert_eq!(manifest.parquet_revision, "refs/convert/parquet");
    assert_eq!(manifest.license, "cc-by-4.0");
    assert_eq!(manifest.split, "train");
    assert_eq!(manifest.counts.rows_read, 7);
    assert_eq!(manifest.counts.written, 3);
    assert_eq!(manifest.counts.already_there, 2);
    assert_eq!(manifest.counts.skipped, 2);
    assert_eq!(manifest.counts.images, 5);
    assert_eq!(
        manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.rows))
            .collect::<Vec<_>>(),
        vec![(TRAIN_0, 5), (TRAIN_1, 2)]
    );
    assert!(
        manifest
            .files
            .iter()
            .all(|f| f.commit.as_deref() == Some(PARQUET_SHA)),
        "{:?}",
        manifest.files
    );
    assert_eq!(manifest.skipped.len(), 2);
    for (file, row, bytes) in &images {
        let entry = manifest
            .images
            .iter()
            .find(|e| e.file == *file && e.row == *row)
            .unwrap_or_else(|| panic!("{file} row {row} in the manifest"));
        assert_eq!(entry.sha256, logogan::fsutil::sha256_hex(bytes));
        assert_eq!(entry.bytes, bytes.len() as u64);
        assert_eq!((entry.width, entry.height), (24, 24));
    }

    // Chapter 3 lists the folder with every other one under data/raw/ (the manifest is not an
    // image), and nothing half-written is left.
    let listed = logogan::data::clean::list_images(&scene.data().join("raw")).unwrap();
    let in_folder: Vec<_> = listed.iter().filter(|p| p.starts_with(FOLDER)).collect();
    assert_eq!(in_folder.len(), 5, "{listed:?}");
    assert!(std::fs::read_dir(scene.folder()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".tmp")));

    // A rerun writes nothing and downloads nothing (the Hub cache has the parquet files).
    scene.hub.take_log();
    let again = scene.run(&[ID]);
    assert!(again.ok(), "{}", again.stderr());
    assert!(
        again.stdout().contains("0 new, 5 already there"),
        "{}",
        again.stdout()
    );
    let log = scene.hub.take_log();
    assert!(
        !log.iter()
            .any(|(m, p)| m == "GET" && p.contains("/resolve/")),
        "no parquet file fetched again: {log:?}"
    );

    // A file damaged on disk is noticed by its sha256 and written again.
    let damaged = scene.folder().join(&expected[2]);
    std::fs::write(&damaged, b"not the image").unwrap();
    let repaired = scene.run(&[ID]);
    assert!(repaired.ok(), "{}", repaired.stderr());
    assert!(
        repaired.stdout().contains("1 new, 4 already there"),
        "{}",
        repaired.stdout()
    );
    assert_eq!(std::fs::read(&damaged).unwrap(), images[2].2);

    // Another split, and plain binary as the image column.
    let test = scene.run(&[ID, "--split", "test", "--image-column", "raw"]);
    assert!(test.ok(), "{}", test.stderr());
    assert!(scene.files().contains(&name_of(TEST_0, 0, "png")));
    assert_eq!(
        scene.manifest().counts.images,
        6,
        "both splits in one manifest"
    );
}

#[test]
fn unknown_data_set_bad_id_and_bad_settings_are_one_line_each() {
    let scene = Scene::new();
    let (dataset, _) = tiny_logos_dataset();
    scene.hub.add(ID, dataset);

    let line = scene.run(&["logo-lab/no-such-set"]).one_error_line();
    assert!(
        line.contains("`logo-lab/no-such-set` was not found") && line.contains(&scene.hub.endpoint),
        "{line}"
    );
    assert!(line.contains("check the id"), "{line}");
    assert!(!scene
        .data()
        .join("raw")
        .join("hub-logo-lab--no-such-set")
        .exists());

    scene.hub.take_log();
    for (args, expect) in [
        (vec!["../../etc/passwd"], "is not a data set id"),
        (vec!["logo-lab"], "is not a data set id"),
        (vec![ID, "--limit", "0"], "--limit"),
        (vec![ID, "--split", "../up"], "--split"),
    ] {
        let line = scene.run(&args).one_error_line();
        assert!(line.contains(expect), "{args:?}: {line}");
    }
    assert!(
        scene.hub.take_log().is_empty(),
        "refused before any request"
    );

    let line = scene.run(&[ID, "--split", "validation"]).one_error_line();
    assert!(
        line.contains("no split `validation`") && line.contains("test, train"),
        "{line}"
    );
}

#[test]
fn missing_and_non_image_columns_name_the_column_and_the_choices() {
    let scene = Scene::new();
    let (dataset, _) = tiny_logos_dataset();
    scene.hub.add(ID, dataset);

    let line = scene
        .run(&[ID, "--image-column", "picture"])
        .one_error_line();
    assert!(
        line.contains(ID)
            && line.contains("default/train/0000.parquet has no column `picture`")
            && line.contains("image, label, caption, raw, blob"),
        "{line}"
    );

    let line = scene.run(&[ID, "--image-column", "label"]).one_error_line();
    assert!(
        line.contains("column `label`")
            && line.contains("INT64 numbers")
            && line.contains("one of: image, raw, blob"),
        "{line}"
    );

    let line = scene
        .run(&[ID, "--image-column", "caption"])
        .one_error_line();
    assert!(
        line.contains("column `caption`") && line.contains("holds text"),
        "{line}"
    );

    // Binary, but not images: found out from the bytes.
    let line = scene.run(&[ID, "--image-column", "blob"]).one_error_line();
    assert!(
        line.contains("column `blob`")
            && line.contains("none of its first 7 non-empty rows is an image"),
        "{line}"
    );
    assert!(
        !scene.folder().exists(),
        "a run that wrote nothing leaves no folder behind"
    );
}

#[test]
fn truncated_parquet_file_is_named_and_fetched_afresh_next_time() {
    let scene = Scene::new();
    let (mut dataset, images) = tiny_logos_dataset();
    let whole = dataset.files[1].1.clone();
    let truncated = whole[..whole.len() / 2].to_vec();
    dataset.files[1].1 = truncated.clone();
    scene.hub.add(ID, dataset.clone());
    assert!(!scene.cache_holds(&truncated));

    let line = scene.run(&[ID]).one_error_line();
    assert!(
        line.contains(ID)
            && line.contains("parquet file default/train/0001.parquet is not readable")
            && line.contains("cached copy was removed"),
        "{line}"
    );
    assert!(
        scene.cache_holds(&dataset.files[0].1),
        "the good file stays cached"
    );
    assert!(
        !scene.cache_holds(&truncated),
        "the damaged blob is gone from the Hub cache"
    );

    // The server now has the whole file: the next run downloads it again and succeeds.
    dataset.files[1].1 = whole;
    scene.hub.add(ID, dataset);
    let fixed = scene.run(&[ID]);
    assert!(fixed.ok(), "{}", fixed.stderr());
    assert_eq!(scene.files().len(), images.len());
}

#[test]
fn server_errors_keep_what_was_written_and_say_to_run_again() {
    let scene = Scene::new();
    let (dataset, _) = tiny_logos_dataset();
    scene.hub.add(ID, dataset);
    assert!(scene.run(&[ID, "--limit", "2"]).ok());
    let before = scene.files();
    let manifest_before = std::fs::read(scene.folder().join("manifest.json")).unwrap();

    scene.hub.fail("/revision/", 500);
    let line = scene.run(&[ID]).one_error_line();
    assert!(
        line.contains(ID) && line.contains("500") && line.contains("run the same command again"),
        "{line}"
    );
    assert_eq!(scene.files(), before, "images already written are kept");
    assert_eq!(
        std::fs::read(scene.folder().join("manifest.json")).unwrap(),
        manifest_before
    );

    // A server error on one parquet file's download (an empty Hub cache) names that file.
    scene.hub.heal();
    scene.hub.fail("default/train/0001.parquet", 503);
    let other_home = scene.dir.path().join("other-home");
    let run = scene.run_with(&[ID], &[("HF_HOME", other_home.to_str().unwrap())]);
    let line = run.one_error_line();
    assert!(
        line.contains("503") && line.contains("default/train/0001.parquet"),
        "{line}"
    );
    assert_eq!(scene.files(), before);
}

#[test]
fn a_newer_conversion_than_the_cached_files_is_reported() {
    let scene = Scene::new();
    let (mut dataset, _) = tiny_logos_dataset();
    scene.hub.add(ID, dataset.clone());
    assert!(scene.run(&[ID]).ok());

    // The Hub converts the data set again; candle-datasets still reads its cached copies.
    let newer = "89abcdef".repeat(5);
    dataset.sha = newer.clone();
    scene.hub.add(ID, dataset);
    let run = scene.run(&[ID]);
    assert!(run.ok(), "{}", run.stderr());
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("now at revision {newer}"))
            && stderr.contains(&format!("cached copies of revision {PARQUET_SHA}"))
            && stderr.contains("datasets--logo-lab--tiny-logos"),
        "{stderr}"
    );
    let manifest = scene.manifest();
    assert_eq!(manifest.revision, newer);
    assert_eq!(manifest.files[0].commit.as_deref(), Some(PARQUET_SHA));
}

#[test]
fn a_gated_data_set_takes_the_token_from_hf_token() {
    let scene = Scene::new();
    let (mut dataset, images) = tiny_logos_dataset();
    dataset.token = Some("hf_fixture_token".into());
    dataset.card = serde_json::json!({});
    scene.hub.add(ID, dataset);

    let line = scene.run(&[ID]).one_error_line();
    assert!(
        line.contains("refused access") && line.contains("HF_TOKEN"),
        "{line}"
    );

    let run = scene.run_with(&[ID], &[("HF_TOKEN", "hf_fixture_token")]);
    assert!(run.ok(), "{}", run.stderr());
    assert_eq!(scene.files().len(), images.len());
    assert!(
        scene.manifest().license.starts_with("not published"),
        "{}",
        scene.manifest().license
    );
}
