//! The spider and the downloader against a real HTTP server on 127.0.0.1 serving fixtures:
//! robots.txt (good, garbage, failing), next-page links, off-site links and redirects, 404s,
//! slow and oversized responses, non-images, duplicates, hostile names, and resuming.
#![cfg(feature = "gather")]

mod common;

use std::time::{Duration, Instant};

use common::{png, FixtureServer, Reply};
use logogan::data::download::{download_all, read_log, read_wanted, DownloadConfig, Status};
use logogan::data::spider::{crawl, read_items, SpiderConfig};
use url::Url;

const SVG: &[u8] = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4" fill="#c00"/></svg>"##;

fn quiet() -> indicatif::ProgressBar {
    indicatif::ProgressBar::hidden()
}

fn listing_site(other_port: u16) -> FixtureServer {
    FixtureServer::start(move |path, _| match path {
        "/robots.txt" => Reply::ok("text/plain", "User-agent: *\nDisallow: /private\n"),
        "/list" => Reply::ok(
            "text/html",
            format!(
                r#"<html><body>
                <a href="/wiki/File:A.png" title="A logo"><img src="/img/a.png" width="120" height="120"></a>
                <img src="/img/b.svg" alt="B logo">
                <img src="/skin/bullet.png" width="8" height="8">
                <a href="/list?page=2">next page</a>
                <a href="/private/list">private sub-list</a>
                <a href="http://localhost:{other_port}/list">off-site list</a>
                </body></html>"#
            ),
        ),
        "/list?page=2" => Reply::ok(
            "text/html",
            r#"<img src="/img/c.png" alt="C logo"><img src="/img/a.png" alt="A again"><a href="/list?page=3">next page</a>"#,
        ),
        "/list?page=3" => Reply::ok(
            "text/html",
            r#"<img src="/img/d.png" alt="D"><a href="/list?page=4">next page</a>"#,
        ),
        "/slow-list" => Reply::Slow(Duration::from_secs(3), b"<html></html>".to_vec()),
        _ => Reply::status(404),
    })
}

#[test]
fn spider_obeys_robots_follows_next_pages_and_stays_on_site() {
    let other = FixtureServer::start(|_, _| Reply::ok("text/html", "<img src='/evil.png'>"));
    let site = listing_site(other.port);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("items.csv");
    let cfg = SpiderConfig {
        max_pages: 2,
        delay: Duration::from_millis(300),
        follow: vec!["list".into()],
        min_side: 16,
        ..SpiderConfig::new(Url::parse(&site.url("/list")).unwrap())
    };
    let start = Instant::now();
    let summary = crawl(&cfg, &out, &quiet()).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "waits between requests"
    );

    assert_eq!(summary.pages_fetched, 2);
    assert!(summary.budget_exhausted, "page 3 was left for later");
    assert_eq!(summary.disallowed, vec![site.url("/private/list")]);
    assert_eq!(site.hits("/private/list"), 0, "robots.txt is obeyed");
    assert_eq!(
        other.total_hits(),
        0,
        "the crawl never leaves the start site"
    );
    assert_eq!(site.hits("/list?page=3"), 0, "page budget is respected");

    let items = read_items(&out).unwrap();
    let urls: Vec<&str> = items.iter().map(|i| i.image_url.as_str()).collect();
    assert_eq!(
        urls,
        vec![
            site.url("/img/a.png"),
            site.url("/img/b.svg"),
            site.url("/img/c.png")
        ]
    );
    assert_eq!(items[0].title, "A logo");
    assert_eq!(items[1].title, "B logo");
    assert_eq!(items[2].page, site.url("/list?page=2"));
    assert!(!dir.path().join("items.csv.partial").exists());

    // A second crawl with a bigger budget extends the file and keeps what was there.
    let more = SpiderConfig {
        max_pages: 3,
        delay: Duration::ZERO,
        ..cfg
    };
    let summary = crawl(&more, &out, &quiet()).unwrap();
    assert_eq!(summary.new_items, 1);
    assert_eq!(read_items(&out).unwrap().len(), 4);
}

#[test]
fn spider_handles_bad_and_failing_robots_txt() {
    let garbage = FixtureServer::start(|path, _| match path {
        "/robots.txt" => Reply::ok(
            "text/plain",
            vec![0xff, 0xfe, 0x00, b'{', b'\n', b'?', 0x07],
        ),
        "/list" => Reply::ok("text/html", "<img src='/x.png' alt='X'>"),
        _ => Reply::status(404),
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = |s: &FixtureServer| SpiderConfig {
        delay: Duration::ZERO,
        ..SpiderConfig::new(Url::parse(&s.url("/list")).unwrap())
    };
    let summary = crawl(&cfg(&garbage), &dir.path().join("a.csv"), &quiet()).unwrap();
    assert_eq!(
        summary.total_items, 1,
        "unparseable robots.txt lines are ignored"
    );

    let failing = FixtureServer::start(|path, _| match path {
        "/robots.txt" => Reply::status(503),
        _ => Reply::ok("text/html", "<img src='/x.png'>"),
    });
    let err = crawl(&cfg(&failing), &dir.path().join("b.csv"), &quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("robots.txt") && err.contains("503"), "{err}");
    assert_eq!(
        failing.hits("/list"),
        0,
        "a 5xx robots.txt means nothing is crawled"
    );
}

#[test]
fn spider_reports_slow_pages_and_goes_on() {
    let site = FixtureServer::start(|path, _| match path {
        "/robots.txt" => Reply::status(404),
        "/list" => Reply::ok(
            "text/html",
            "<img src='/x.png' alt='X'><a href='/slow'>next page</a>",
        ),
        "/slow" => Reply::Slow(Duration::from_secs(3), b"<img src='/y.png'>".to_vec()),
        _ => Reply::status(404),
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpiderConfig {
        delay: Duration::ZERO,
        timeout: Duration::from_millis(500),
        ..SpiderConfig::new(Url::parse(&site.url("/list")).unwrap())
    };
    let summary = crawl(&cfg, &dir.path().join("items.csv"), &quiet()).unwrap();
    assert_eq!(summary.total_items, 1);
    assert_eq!(summary.failed.len(), 1);
    assert!(
        summary.failed[0].contains("/slow") && summary.failed[0].contains("timed out"),
        "{:?}",
        summary.failed
    );
}

#[test]
fn spider_skips_a_page_nested_a_million_deep_and_refuses_file_urls() {
    let deep = "<div>".repeat(1_000_000);
    let site = FixtureServer::start(move |path, _| match path {
        "/robots.txt" => Reply::status(404),
        "/list" => Reply::ok(
            "text/html",
            "<img src='/x.png' alt='X'><a href='/deep'>next page</a>",
        ),
        "/deep" => Reply::ok("text/html", format!("<img src='/y.png'>{deep}")),
        _ => Reply::status(404),
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpiderConfig {
        delay: Duration::ZERO,
        ..SpiderConfig::new(Url::parse(&site.url("/list")).unwrap())
    };
    let start = Instant::now();
    let summary = crawl(&cfg, &dir.path().join("items.csv"), &quiet()).unwrap();
    // html5ever on this page: minutes.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(summary.pages_fetched, 2);
    assert_eq!(summary.total_items, 1, "the deep page is not parsed");
    assert!(
        summary.failed[0].contains("/deep")
            && summary.failed[0].contains("nest more than 512 deep"),
        "{:?}",
        summary.failed
    );

    let file = SpiderConfig::new(Url::parse("file:///etc/").unwrap());
    let err = crawl(&file, &dir.path().join("items.csv"), &quiet()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("start_url")
            && message.contains("http or https")
            && message.contains("data/raw"),
        "{message}"
    );
}

#[test]
fn downloader_sniffs_dedupes_refuses_retries_and_resumes() {
    let other = FixtureServer::start(|_, _| Reply::ok("image/png", png([0, 0, 200], 16)));
    let other_port = other.port;
    let big = vec![0x89u8; 3000];
    let site = FixtureServer::start(move |path, n| match path {
        "/a.png" => Reply::Body {
            status: 200,
            content_type: "image/png",
            body: png([200, 0, 0], 16),
            headers: vec![(
                "Content-Disposition",
                "attachment; filename=\"../../evil.png\"".into(),
            )],
        },
        "/copy-of-a" => Reply::ok("application/octet-stream", png([200, 0, 0], 16)),
        "/b.svg" => Reply::ok("image/svg+xml", SVG),
        "/page.png" => Reply::ok(
            "image/png",
            "<!DOCTYPE html><html><body>Not found</body></html>",
        ),
        "/huge.png" => Reply::ok("image/png", big.clone()),
        "/huge-chunked.png" => Reply::Chunked(big.clone()),
        "/slow.png" => Reply::Slow(Duration::from_secs(3), png([1, 2, 3], 8)),
        "/moved" => Reply::Redirect("/c.png".into()),
        "/c.png" => Reply::ok("image/png", png([0, 150, 0], 16)),
        "/elsewhere" => Reply::Redirect(format!("http://localhost:{other_port}/x.png")),
        "/flaky.png" if n == 0 => Reply::status(503),
        "/flaky.png" => Reply::ok("image/png", png([9, 9, 9], 16)),
        _ => Reply::status(404),
    });
    let dir = tempfile::tempdir().unwrap();
    let items_csv = dir.path().join("items.csv");
    let rows = [
        ("/a.png", "../../etc/evil"),
        ("/copy-of-a", "/absolute/evil"),
        ("/b.svg", "B"),
        ("/missing.png", "Missing"),
        ("/page.png", "HTML"),
        ("/huge.png", "Huge"),
        ("/huge-chunked.png", "Huge, no length"),
        ("/slow.png", "Slow"),
        ("/moved", "Moved"),
        ("/elsewhere", "Elsewhere"),
        ("/flaky.png", "Flaky"),
    ];
    let mut csv = String::from("image_url,title,page\n");
    for (path, title) in rows {
        csv.push_str(&format!(
            "{},\"{title}\",{}\n",
            site.url(path),
            site.url("/list")
        ));
    }
    csv.push_str("ftp://127.0.0.1/x.png,FTP,\n../../etc/passwd,Relative,\n");
    std::fs::write(&items_csv, csv).unwrap();

    let out = dir.path().join("downloads");
    let cfg = DownloadConfig {
        jobs: 4,
        timeout: Duration::from_millis(700),
        retries: 1,
        backoff: Duration::from_millis(10),
        max_bytes: 2000,
        ..DownloadConfig::new(&out)
    };
    let wanted = read_wanted(&items_csv).unwrap();
    let summary = download_all(&wanted, &cfg, &quiet()).unwrap();
    let log = read_log(&out.join("downloads.csv")).unwrap();
    let status = |path: &str| log[&site.url(path)].status;
    let reason = |path: &str| log[&site.url(path)].reason.clone();

    assert_eq!(status("/b.svg"), Status::Ok);
    assert_eq!(log[&site.url("/b.svg")].format, "svg");
    assert_eq!(
        status("/moved"),
        Status::Ok,
        "same-host redirects are followed"
    );
    assert_eq!(status("/flaky.png"), Status::Ok, "a 503 is retried");
    assert_eq!(site.hits("/flaky.png"), 2);
    // Same bytes at two URLs: one file. Which URL wins depends on timing, the outcome does not.
    let (a, copy) = (&log[&site.url("/a.png")], &log[&site.url("/copy-of-a")]);
    let mut pair = [a.status, copy.status];
    pair.sort_by_key(|s| *s != Status::Ok);
    assert_eq!(pair, [Status::Ok, Status::Duplicate]);
    assert_eq!(a.file, copy.file);
    assert_eq!(status("/missing.png"), Status::Refused);
    assert!(reason("/missing.png").contains("404"));
    assert_eq!(status("/page.png"), Status::Refused);
    assert!(
        reason("/page.png").contains("HTML"),
        "{}",
        reason("/page.png")
    );
    for huge in ["/huge.png", "/huge-chunked.png"] {
        assert_eq!(status(huge), Status::Refused);
        assert!(reason(huge).contains("2000-byte limit"), "{}", reason(huge));
    }
    assert_eq!(status("/slow.png"), Status::Failed);
    assert!(
        reason("/slow.png").contains("timed out (after 2 attempts)"),
        "{}",
        reason("/slow.png")
    );
    assert_eq!(status("/elsewhere"), Status::Refused);
    assert!(reason("/elsewhere").contains("another host"));
    assert_eq!(
        other.total_hits(),
        0,
        "cross-host redirects are not followed"
    );
    assert_eq!(log["ftp://127.0.0.1/x.png"].status, Status::Refused);
    assert_eq!(log["../../etc/passwd"].status, Status::Refused);
    assert_eq!(
        summary.count(Status::Ok) + summary.count(Status::Duplicate),
        5
    );
    assert!(
        summary
            .problems
            .iter()
            .any(|p| p.starts_with("line 5: ") && p.contains("404")),
        "{:?}",
        summary.problems
    );

    // Nothing outside the output folder; inside, only content-named files and the log.
    let mut beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    beside.sort();
    assert_eq!(beside, ["downloads", "items.csv"]);
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let ok = name == "downloads.csv"
            || (name.len() > 21 && name[..20].chars().all(|c| c.is_ascii_hexdigit()));
        assert!(ok, "unexpected file {name}");
    }
    let saved = std::fs::read(out.join(&a.file)).unwrap();
    assert_eq!(logogan::fsutil::sha256_hex(&saved), a.sha256);

    // Second run: finished rows are skipped, only the failed one is tried again.
    let a_hits = site.hits("/a.png");
    let summary = download_all(&wanted, &cfg, &quiet()).unwrap();
    assert_eq!(summary.skipped, wanted.len() - 1);
    assert_eq!(summary.count(Status::Failed), 1);
    assert_eq!(site.hits("/a.png"), a_hits);
    assert_eq!(site.hits("/slow.png"), 4);
}

#[test]
fn downloader_caps_waiting_and_gives_up_on_a_failing_host() {
    // A server that asks for an hour, and one whose every URL fails.
    let patient = FixtureServer::start(|_, _| Reply::Body {
        status: 503,
        content_type: "text/plain",
        body: b"busy".to_vec(),
        headers: vec![("Retry-After", "3600".into())],
    });
    let broken = FixtureServer::start(|_, _| Reply::status(500));
    let dir = tempfile::tempdir().unwrap();
    let items_csv = dir.path().join("items.csv");
    let mut csv = format!("image_url\n{}\n", patient.url("/logo.png"));
    for i in 0..8 {
        csv += &format!("{}\n", broken.url(&format!("/logo-{i}.png")));
    }
    std::fs::write(&items_csv, csv).unwrap();
    let cfg = DownloadConfig {
        jobs: 1,
        retries: 10,
        backoff: Duration::from_millis(20),
        max_wait: Duration::from_secs(2),
        give_up_after: 3,
        ..DownloadConfig::new(dir.path().join("out"))
    };
    let wanted = read_wanted(&items_csv).unwrap();
    let start = Instant::now();
    let summary = download_all(&wanted, &cfg, &quiet()).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    // Without the caps: an hour for the first URL, then 10 retries with doubling backoff each.
    assert!(seconds < 10.0, "took {seconds:.1} s");
    let log = read_log(&dir.path().join("out/downloads.csv")).unwrap();

    let asked = &log[&patient.url("/logo.png")];
    assert_eq!(asked.status, Status::Failed, "retried by the next run");
    assert!(
        asked.reason.contains("asked to wait 3600 s") && asked.reason.contains("--max-wait-s 2"),
        "{}",
        asked.reason
    );
    assert_eq!(patient.hits("/logo.png"), 1, "an hour is not waited for");

    // The first three URLs of the broken host use their retries (20+40+…+640 ms fits in 2 s,
    // then the next backoff would not); the other five are never requested.
    let requested: Vec<usize> = (0..8)
        .map(|i| broken.hits(&format!("/logo-{i}.png")))
        .collect();
    assert!(requested[..3].iter().all(|&n| n > 1), "{requested:?}");
    assert_eq!(&requested[3..], &[0; 5], "{requested:?}");
    let skipped = &log[&broken.url("/logo-7.png")];
    assert_eq!(skipped.status, Status::Failed);
    assert!(
        skipped.reason.contains("gave up on the host"),
        "{}",
        skipped.reason
    );
    let host = broken.url("/").trim_end_matches('/').to_string();
    assert_eq!(summary.hosts_given_up, [host]);
    assert_eq!(summary.count(Status::Failed), 9);
}

#[test]
fn downloader_resumes_after_an_empty_or_torn_log() {
    let site = FixtureServer::start(|path, _| match path {
        "/a.png" => Reply::ok("image/png", png([200, 0, 0], 16)),
        "/b.png" => Reply::ok("image/png", png([0, 200, 0], 16)),
        "/c.png" => Reply::ok("image/png", png([0, 0, 200], 16)),
        _ => Reply::status(404),
    });
    let dir = tempfile::tempdir().unwrap();
    let items_csv = dir.path().join("items.csv");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let log = out.join("downloads.csv");
    // A disk that filled up at the first write leaves an empty log behind.
    std::fs::write(&log, "").unwrap();
    std::fs::write(
        &items_csv,
        format!(
            "image_url\n{}\n{}\n",
            site.url("/a.png"),
            site.url("/b.png")
        ),
    )
    .unwrap();
    let cfg = DownloadConfig::new(&out);
    let first = download_all(&read_wanted(&items_csv).unwrap(), &cfg, &quiet()).unwrap();
    assert_eq!(first.count(Status::Ok), 2);
    let again = download_all(&read_wanted(&items_csv).unwrap(), &cfg, &quiet()).unwrap();
    assert_eq!(
        again.skipped, 2,
        "an empty log no longer means 'download everything again'"
    );
    assert_eq!(site.hits("/a.png"), 1);

    // A crash in the middle of a row: the next run's rows must not be glued onto it.
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str(&format!("{},torn", site.url("/c.png")));
    std::fs::write(&log, text).unwrap();
    std::fs::write(
        &items_csv,
        format!(
            "image_url\n{}\n{}\n",
            site.url("/a.png"),
            site.url("/c.png")
        ),
    )
    .unwrap();
    let third = download_all(&read_wanted(&items_csv).unwrap(), &cfg, &quiet()).unwrap();
    assert_eq!((third.skipped, third.count(Status::Ok)), (1, 1));
    let logged = read_log(&log).unwrap();
    assert_eq!(logged[&site.url("/c.png")].status, Status::Ok);
    assert_eq!(logged.len(), 3);
}
