//! Chapter 2's downloader: fetch the images listed in an `items.csv`, concurrently and politely,
//! into one folder, resumably.
//!
//! * Every response is identified by its bytes ([`sniff`]): PNG, JPEG, GIF, WebP or SVG are kept,
//!   anything else is refused with what it looked like.
//! * Files are named by the SHA-256 of their content (`<first 20 hex digits>.<ext>`). No URL,
//!   header or CSV cell ever becomes part of a path, so nothing can be written outside the
//!   output folder, and two URLs serving the same bytes give one file.
//! * `downloads.csv` in the output folder logs one row per URL as it finishes (flushed at once).
//!   A second run skips URLs already `ok`, `duplicate` or `refused`, and retries `failed` ones.
//! * Transient failures (timeouts, connection errors, 5xx, 429) are retried with exponential
//!   backoff (or the server's `Retry-After`), each wait at most [`MAX_ONE_WAIT`] and all the
//!   waits of one URL at most `max_wait`: a server asking for an hour is given up on at once,
//!   logged `failed` with what it asked, and retried by the next run. 404s and refusals are not
//!   retried. After `give_up_after` URLs of one host in a row fail, the rest of that host's URLs
//!   are not requested in this run (logged `failed`, so the next run tries them).

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use url::Url;

use super::format::sniff;
use super::http::{FetchError, HttpClient, RedirectPolicy, USER_AGENT};
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::{sha256_hex, write_atomic};

/// Settings of a download run.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadConfig {
    pub out_dir: PathBuf,
    /// Downloads in flight at once.
    pub jobs: usize,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Extra attempts after a transient failure.
    pub retries: u32,
    /// First backoff; doubled after each failed attempt.
    pub backoff: Duration,
    /// Larger bodies are refused.
    pub max_bytes: u64,
    /// Follow redirects to other hosts (off: such redirects are refused).
    pub cross_host_redirects: bool,
    pub user_agent: String,
    /// All the waiting one URL may do between its attempts.
    pub max_wait: Duration,
    /// Stop requesting a host after this many of its URLs in a row failed (0: never).
    pub give_up_after: usize,
}

/// The longest single wait between two attempts, whatever the backoff or `Retry-After` say.
pub const MAX_ONE_WAIT: Duration = Duration::from_secs(60);

impl DownloadConfig {
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            jobs: 4,
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_bytes: 10 << 20,
            cross_host_redirects: false,
            user_agent: USER_AGENT.to_string(),
            max_wait: Duration::from_secs(120),
            give_up_after: 5,
        }
    }

    fn validate(&self) -> Result<()> {
        let check = |ok: bool, flag: &str, rule: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(flag, rule.to_string()))
            }
        };
        check(
            (1..=64).contains(&self.jobs),
            "jobs",
            "must be 1 to 64 downloads at once",
        )?;
        check(
            !self.timeout.is_zero() && self.timeout <= Duration::from_secs(3600),
            "timeout_s",
            "must be more than 0 and at most 3600 seconds (0 would abandon every request at once)",
        )?;
        check(
            self.retries <= 10,
            "retries",
            "at most 10 extra attempts per URL",
        )?;
        check(
            (1..=1 << 30).contains(&self.max_bytes),
            "max_bytes",
            "must be 1 byte to 1 GiB per file",
        )?;
        check(
            self.backoff <= MAX_ONE_WAIT,
            "backoff",
            "at most 60 s before the first retry",
        )?;
        check(
            self.max_wait <= Duration::from_secs(3600),
            "max_wait_s",
            "at most 3600 seconds of waiting per URL",
        )
    }
}

/// Outcome of one URL, as logged in `downloads.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Saved as a new file.
    Ok,
    /// Same bytes as a file already saved.
    Duplicate,
    /// Will not work on retry: 404, too large, not an image, bad URL.
    Refused,
    /// Gave up after retries on a transient error; the next run tries again.
    Failed,
}

impl Status {
    /// Whether a later run should leave this URL alone.
    pub fn is_done(self) -> bool {
        !matches!(self, Status::Failed)
    }
}

/// One row of `downloads.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DownloadRecord {
    pub url: String,
    pub title: String,
    pub page: String,
    pub status: Status,
    /// File name inside the output folder (for `ok` and `duplicate`).
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub format: String,
    pub reason: String,
}

/// One row to fetch, read from `items.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// 1-based line number in the CSV, for messages.
    pub line: usize,
    pub url: String,
    pub title: String,
    pub page: String,
}

/// Read the rows of an items CSV. Accepts the spider's `image_url,title,page` and the original
/// project's tab-separated file; the URL column may be called `image_url`, `url`, `image_urls`
/// or `src`. Missing optional columns are left empty.
pub fn read_wanted(path: &Path) -> Result<Vec<Wanted>> {
    let size = std::fs::metadata(path).at(path)?.len();
    if size > MAX_ITEMS_BYTES {
        return Err(Error::bad_input(
            path,
            format!(
                "{size} bytes, over the {MAX_ITEMS_BYTES}-byte limit of a list of links (about \
                 a million rows): split it into several files and download each"
            ),
        ));
    }
    let text = std::fs::read_to_string(path).at(path)?;
    let first_line = text.lines().next().unwrap_or_default();
    let delimiter = if first_line.contains('\t') {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let column = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let url_col = column(&["image_url", "url", "image_urls", "src"]).ok_or_else(|| {
        Error::bad_input(
            path,
            format!("no URL column: the header is {headers:?}, expected one of image_url, url, image_urls, src"),
        )
    })?;
    let title_col = column(&["title", "name"]);
    let page_col = column(&["page", "page_url"]);
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| Error::bad_input(path, format!("line {line}: {e}")))?;
        let get = |c: Option<usize>| {
            c.and_then(|c| record.get(c))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        out.push(Wanted {
            line,
            url: get(Some(url_col)),
            title: get(title_col),
            page: get(page_col),
        });
    }
    Ok(out)
}

/// Largest list of links read at once (it is read whole).
pub const MAX_ITEMS_BYTES: u64 = 256 << 20;

/// The first line of `downloads.csv`.
const LOG_HEADER: &str = "url,title,page,status,file,sha256,bytes,format,reason";

/// The last byte of a file, `None` when it is empty.
fn last_byte(file: &mut std::fs::File) -> std::io::Result<Option<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(None);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut byte = [0u8];
    file.read_exact(&mut byte)?;
    Ok(Some(byte[0]))
}

/// Read `downloads.csv`; rows that cannot be parsed (a line cut short by a crash) are skipped.
/// The last row for a URL wins. A log that does not start with its header is refused (reading
/// it would silently find nothing done, and fetch everything again).
pub fn read_log(path: &Path) -> Result<HashMap<String, DownloadRecord>> {
    let mut map = HashMap::new();
    if !path.exists() || std::fs::metadata(path).at(path)?.len() == 0 {
        return Ok(map);
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| Error::bad_input(path, e.to_string()))?;
    let header = reader
        .headers()
        .map_err(|e| Error::bad_input(path, e.to_string()))?;
    if header.iter().collect::<Vec<_>>().join(",") != LOG_HEADER {
        return Err(Error::bad_input(
            path,
            format!(
                "the first line is not the download log's header `{LOG_HEADER}`; put that line \
                 back at the top (the rows below it are kept), or move the file aside to \
                 download everything again"
            ),
        ));
    }
    for record in reader.deserialize::<DownloadRecord>().flatten() {
        map.insert(record.url.clone(), record);
    }
    Ok(map)
}

/// Counts of a download run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadSummary {
    pub requested: usize,
    /// Already done by an earlier run, skipped.
    pub skipped: usize,
    pub counts: HashMap<Status, usize>,
    /// `"line N: url: reason"` for every refused or failed row of this run.
    pub problems: Vec<String>,
    /// Hosts this run stopped requesting after `give_up_after` failures in a row.
    pub hosts_given_up: Vec<String>,
}

impl DownloadSummary {
    pub fn count(&self, status: Status) -> usize {
        self.counts.get(&status).copied().unwrap_or(0)
    }
}

/// Failures in a row per host, and the hosts this run has given up on.
struct HostHealth {
    give_up_after: usize,
    failures_in_a_row: Mutex<HashMap<String, usize>>,
    /// Sites given up on: for the rest of the run, whatever answers arrive late.
    given_up: Mutex<HashSet<String>>,
}

impl HostHealth {
    fn new(give_up_after: usize) -> Self {
        Self {
            give_up_after,
            failures_in_a_row: Mutex::default(),
            given_up: Mutex::default(),
        }
    }

    /// Scheme, host and port: two servers on one machine are two sites.
    fn host(url: &Url) -> String {
        url.origin().ascii_serialization()
    }

    /// The host's name if this run no longer requests it.
    fn given_up(&self, url: &Url) -> Option<String> {
        let host = Self::host(url);
        self.given_up
            .lock()
            .expect("poisoned")
            .contains(&host)
            .then_some(host)
    }

    fn given_up_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .given_up
            .lock()
            .expect("poisoned")
            .iter()
            .cloned()
            .collect();
        hosts.sort();
        hosts
    }

    fn failed(&self, url: &Url) {
        let host = Self::host(url);
        let mut failures = self.failures_in_a_row.lock().expect("poisoned");
        let in_a_row = failures.entry(host.clone()).or_default();
        *in_a_row += 1;
        if self.give_up_after > 0 && *in_a_row >= self.give_up_after {
            self.given_up.lock().expect("poisoned").insert(host);
        }
    }

    fn succeeded(&self, url: &Url) {
        self.failures_in_a_row
            .lock()
            .expect("poisoned")
            .insert(Self::host(url), 0);
    }
}

/// Name of the log file in the output folder.
pub const LOG_FILE: &str = "downloads.csv";

/// Download every row of `items` into `cfg.out_dir`.
pub fn download_all(
    items: &[Wanted],
    cfg: &DownloadConfig,
    progress: &indicatif::ProgressBar,
) -> Result<DownloadSummary> {
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.out_dir).at(&cfg.out_dir)?;
    let log_path = cfg.out_dir.join(LOG_FILE);
    let previous = read_log(&log_path)?;
    // A file that an earlier `ok` row names but that has gone missing is fetched again.
    let is_done = |r: &DownloadRecord| {
        r.status.is_done() && (r.file.is_empty() || cfg.out_dir.join(&r.file).exists())
    };
    let known_hashes: HashMap<String, String> = previous
        .values()
        .filter(|r| r.status == Status::Ok && cfg.out_dir.join(&r.file).exists())
        .map(|r| (r.sha256.clone(), r.file.clone()))
        .collect();

    let mut summary = DownloadSummary {
        requested: items.len(),
        ..Default::default()
    };
    let mut todo = Vec::new();
    let mut queued = HashSet::new();
    for item in items {
        match previous.get(&item.url) {
            Some(r) if is_done(r) => summary.skipped += 1,
            _ if !queued.insert(item.url.clone()) => summary.skipped += 1,
            _ => todo.push(item),
        }
    }

    let mut log_file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&log_path)
        .at(&log_path)?;
    match last_byte(&mut log_file).at(&log_path)? {
        // New, or left empty by a crash (a full disk) before its header: start it.
        None => writeln!(log_file, "{LOG_HEADER}").at(&log_path)?,
        // A row cut short by a crash: end it, so the next row starts on a line of its own
        // (the torn row is skipped when read, and its URL is fetched again).
        Some(b) if b != b'\n' => writeln!(log_file).at(&log_path)?,
        Some(_) => {}
    }
    let log = Mutex::new(
        csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(log_file),
    );
    let hashes = Mutex::new(known_hashes);
    let hosts = HostHealth::new(cfg.give_up_after);
    let client = HttpClient::new(cfg.timeout, &cfg.user_agent);
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    progress.set_length(todo.len() as u64);

    std::thread::scope(|scope| {
        for _ in 0..cfg.jobs.min(todo.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = todo.get(i) else { break };
                let record = download_one(item, cfg, &client, &hashes, &hosts);
                let logged = {
                    let mut log = log.lock().expect("poisoned");
                    log.serialize(&record)
                        .and_then(|_| log.flush().map_err(csv::Error::from))
                };
                progress.inc(1);
                results
                    .lock()
                    .expect("poisoned")
                    .push((item.line, record, logged.err()));
            });
        }
    });
    progress.finish_and_clear();

    summary.hosts_given_up = hosts.given_up_hosts();
    let mut results = results.into_inner().expect("poisoned");
    results.sort_by_key(|(line, _, _)| *line);
    for (line, record, log_error) in results {
        if let Some(e) = log_error {
            return Err(Error::bad_input(
                &log_path,
                format!("could not log line {line}: {e}"),
            ));
        }
        *summary.counts.entry(record.status).or_default() += 1;
        if matches!(record.status, Status::Refused | Status::Failed) {
            summary
                .problems
                .push(format!("line {line}: {}: {}", record.url, record.reason));
        }
    }
    Ok(summary)
}

// ANCHOR: download_one
fn download_one(
    item: &Wanted,
    cfg: &DownloadConfig,
    client: &HttpClient,
    hashes: &Mutex<HashMap<String, String>>,
    hosts: &HostHealth,
) -> DownloadRecord {
    let mut record = DownloadRecord {
        url: item.url.clone(),
        title: item.title.clone(),
        page: item.page.clone(),
        status: Status::Refused,
        file: String::new(),
        sha256: String::new(),
        bytes: 0,
        format: String::new(),
        reason: String::new(),
    };
    let url = match Url::parse(&item.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(u) => {
            record.reason = format!("not an http(s) URL (scheme `{}`)", u.scheme());
            return record;
        }
        Err(e) => {
            record.reason = format!("not a valid URL: {e}");
            return record;
        }
    };
    let policy = if cfg.cross_host_redirects {
        RedirectPolicy::Any
    } else {
        RedirectPolicy::SameHost
    };
    if let Some(host) = hosts.given_up(&url) {
        record.status = Status::Failed;
        record.reason = format!(
            "not requested: {} URLs of {host} in a row failed, so this run gave up on the host; \
             the next run tries again",
            cfg.give_up_after
        );
        return record;
    }
    let mut attempt = 0;
    let mut waited = Duration::ZERO;
    let fetched = loop {
        let error = match client.get(&url, cfg.max_bytes, policy) {
            Ok(f) => break f,
            Err(e) => e,
        };
        let asked = match &error {
            FetchError::Status {
                retry_after: Some(s),
                ..
            } if *s > 0 => Some(Duration::from_secs(*s)),
            // `Retry-After: 0` (or none) gets the backoff: retrying at once helps no one.
            _ => None,
        };
        let wait = asked
            .unwrap_or_else(|| cfg.backoff.saturating_mul(2u32.saturating_pow(attempt)))
            .min(MAX_ONE_WAIT);
        let may_wait = waited + wait <= cfg.max_wait && asked.is_none_or(|a| a <= MAX_ONE_WAIT);
        if error.is_transient() && attempt < cfg.retries && may_wait {
            std::thread::sleep(wait);
            waited += wait;
            attempt += 1;
            continue;
        }
        record.status = if error.is_transient() {
            Status::Failed
        } else {
            Status::Refused
        };
        let mut reason = error.to_string();
        if attempt > 0 {
            reason += &format!(" (after {} attempts)", attempt + 1);
            if waited >= Duration::from_secs(1) {
                reason += &format!("; waited {} s in all", waited.as_secs());
            }
        }
        if error.is_transient() && attempt < cfg.retries {
            reason += &match asked {
                Some(a) => format!(
                    "; the server asked to wait {} s, over what one URL may wait (--max-wait-s \
                     {}, at most {} s at a time): the next run tries again",
                    a.as_secs(),
                    cfg.max_wait.as_secs(),
                    MAX_ONE_WAIT.as_secs()
                ),
                None => format!(
                    "; waiting longer would pass --max-wait-s {}: the next run tries again",
                    cfg.max_wait.as_secs()
                ),
            };
        }
        record.reason = reason;
        if error.is_transient() {
            hosts.failed(&url);
        }
        return record;
    };
    hosts.succeeded(&url);
    record.bytes = fetched.body.len() as u64;
    let format = match sniff(&fetched.body) {
        Ok(f) => f,
        Err(what) => {
            record.reason = format!("not an image: {what}");
            return record;
        }
    };
    record.format = format.to_string();
    let sha = sha256_hex(&fetched.body);
    let name = format!("{}.{}", &sha[..20], format.extension());
    record.sha256 = sha.clone();
    // Claim the hash first, so two threads fetching the same bytes write one file.
    let existing = {
        let mut hashes = hashes.lock().expect("poisoned");
        match hashes.get(&sha) {
            Some(file) => Some(file.clone()),
            None => {
                hashes.insert(sha.clone(), name.clone());
                None
            }
        }
    };
    if let Some(file) = existing {
        record.status = Status::Duplicate;
        record.file = file;
        record.reason = "same content as an earlier download".into();
        return record;
    }
    match write_atomic(&cfg.out_dir.join(&name), &fetched.body) {
        Ok(()) => {
            record.status = Status::Ok;
            record.file = name;
        }
        Err(e) => {
            hashes.lock().expect("poisoned").remove(&sha);
            record.status = Status::Failed;
            record.reason = e.to_string();
        }
    }
    record
}
// ANCHOR_END: download_one

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn impossible_download_settings_name_their_flag() {
        let base = DownloadConfig::new("out");
        assert!(base.validate().is_ok());
        for (edit, flag) in [
            (
                DownloadConfig {
                    jobs: 0,
                    ..base.clone()
                },
                "jobs",
            ),
            (
                DownloadConfig {
                    jobs: 1000,
                    ..base.clone()
                },
                "jobs",
            ),
            (
                DownloadConfig {
                    timeout: Duration::ZERO,
                    ..base.clone()
                },
                "timeout_s",
            ),
            (
                DownloadConfig {
                    retries: 1000,
                    ..base.clone()
                },
                "retries",
            ),
            (
                DownloadConfig {
                    max_bytes: 0,
                    ..base.clone()
                },
                "max_bytes",
            ),
            (
                DownloadConfig {
                    max_bytes: 1 << 40,
                    ..base.clone()
                },
                "max_bytes",
            ),
        ] {
            let err = edit.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{flag}`")), "{flag}: {err}");
        }
    }

    #[test]
    fn reads_spider_csv_and_tab_separated_seed_format() {
        let dir = tempfile::tempdir().unwrap();
        let spider = dir.path().join("items.csv");
        std::fs::write(
            &spider,
            "image_url,title,page\nhttp://h/a.png,\"A, Inc.\",http://h/list\n",
        )
        .unwrap();
        let rows = read_wanted(&spider).unwrap();
        assert_eq!(rows[0].url, "http://h/a.png");
        assert_eq!(rows[0].title, "A, Inc.");
        assert_eq!(rows[0].line, 2);

        let seed = dir.path().join("seed.csv");
        std::fs::write(&seed, "name\timage_urls\nAcme\thttp://h/b.svg\nShort\n").unwrap();
        let rows = read_wanted(&seed).unwrap();
        assert_eq!(
            (rows[0].title.as_str(), rows[0].url.as_str()),
            ("Acme", "http://h/b.svg")
        );
        assert_eq!(
            rows[1].url, "",
            "a short row gives an empty URL, refused later with its line"
        );

        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "link,title\nx,y\n").unwrap();
        let err = read_wanted(&bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.csv") && err.contains("no URL column"),
            "{err}"
        );
    }

    #[test]
    fn log_survives_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(LOG_FILE);
        std::fs::write(
            &log,
            "url,title,page,status,file,sha256,bytes,format,reason\n\
             http://h/a,A,,ok,a.png,ab,3,png,\n\
             http://h/b,B,,failed,,,0,,timed out\n\
             http://h/b,B,,ok,b.png,cd,3,png,\n\
             http://h/c,C,,ok,c.pn",
        )
        .unwrap();
        let map = read_log(&log).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["http://h/b"].status, Status::Ok, "the last row wins");
        assert!(!map.contains_key("http://h/c"));

        // The next run ends the torn line before it appends, so its own rows stay readable.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&log)
            .unwrap();
        assert_eq!(last_byte(&mut file).unwrap(), Some(b'n'));

        // A log without its header is refused with the way out, not read as "nothing done".
        std::fs::write(&log, "http://h/a,A,,ok,a.png,ab,3,png,\n").unwrap();
        let err = read_log(&log).unwrap_err().to_string();
        assert!(
            err.contains("downloads.csv") && err.contains("header"),
            "{err}"
        );
    }

    #[test]
    fn zero_jobs_is_refused() {
        let cfg = DownloadConfig {
            jobs: 0,
            ..DownloadConfig::new("x")
        };
        let err = download_all(&[], &cfg, &indicatif::ProgressBar::hidden()).unwrap_err();
        assert!(err.to_string().contains("`jobs`"));
    }
}
