//! Chapter 2's spider: crawl listing pages of logos (a Wikimedia Commons category, say) and write
//! `items.csv` with one row per image link: `image_url,title,page`.
//!
//! It is polite: it reads `robots.txt` first and obeys it (and its `Crawl-delay`), waits between
//! requests, fetches at most a page budget, and never leaves the start site (scheme, host and
//! port); image links may point elsewhere, since they are only written down, not fetched. It
//! follows "next page" links (`rel="next"`, or link text "next page"/"next") and, on request,
//! links whose URL contains one of the `follow` patterns (sub-categories, for instance).
//!
//! Rows are flushed to `items.csv.partial` after every page and the file is renamed to
//! `items.csv` at the end; an existing `items.csv` is kept and extended, never truncated.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scraper::{Html, Selector};
use url::Url;

use super::format::ImageFormat;
use super::http::{same_origin, FetchError, HttpClient, RedirectPolicy, USER_AGENT};
use crate::error::{Error, IoResultExt, Result};

/// One image link found by the spider: a row of `items.csv`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    pub image_url: String,
    pub title: String,
    /// The listing page it was found on.
    pub page: String,
}

/// Settings of a crawl.
#[derive(Debug, Clone, PartialEq)]
pub struct SpiderConfig {
    pub start_url: Url,
    /// Most pages fetched (robots.txt not counted).
    pub max_pages: usize,
    /// Wait between two requests; a larger `Crawl-delay` in robots.txt wins.
    pub delay: Duration,
    /// Follow links whose URL contains one of these strings, besides "next page" links.
    pub follow: Vec<String>,
    /// Skip images whose `width` or `height` attribute says they are smaller (page decorations).
    pub min_side: u32,
    /// Rewrite Wikimedia thumbnail URLs (`…/thumb/a/ab/Logo.svg/120px-Logo.svg.png`) to the
    /// original file (`…/a/ab/Logo.svg`).
    pub original_images: bool,
    pub timeout: Duration,
    pub max_page_bytes: u64,
    pub user_agent: String,
}

impl SpiderConfig {
    pub fn new(start_url: Url) -> Self {
        Self {
            start_url,
            max_pages: 50,
            delay: Duration::from_secs(1),
            follow: vec![],
            min_side: 0,
            original_images: true,
            timeout: Duration::from_secs(30),
            max_page_bytes: 5 << 20,
            user_agent: USER_AGENT.to_string(),
        }
    }
}

/// What a crawl did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrawlSummary {
    pub pages_fetched: usize,
    /// New rows added to `items.csv` by this crawl.
    pub new_items: usize,
    /// Rows in `items.csv` afterwards.
    pub total_items: usize,
    /// Pages robots.txt did not allow.
    pub disallowed: Vec<String>,
    /// Pages that failed, with the reason.
    pub failed: Vec<String>,
    /// The crawl stopped because the page budget was used up while links were left.
    pub budget_exhausted: bool,
}

/// What robots.txt says for our user agent.
pub enum RobotsRules {
    AllowAll,
    DisallowAll(String),
    Rules(Box<texting_robots::Robot>),
}

// ANCHOR: robots
impl RobotsRules {
    /// Interpret a robots.txt fetch following RFC 9309: a 4xx means no rules; a 5xx or a network
    /// failure means "assume everything is disallowed"; unparseable lines are ignored.
    pub fn from_fetch(result: std::result::Result<Vec<u8>, FetchError>, user_agent: &str) -> Self {
        match result {
            Ok(body) => match texting_robots::Robot::new(user_agent, &body) {
                Ok(robot) => RobotsRules::Rules(Box::new(robot)),
                // The parser is lenient; if it still fails the file is garbage: no usable rules.
                Err(_) => RobotsRules::AllowAll,
            },
            Err(FetchError::Status { code, .. }) if (400..500).contains(&code) => {
                RobotsRules::AllowAll
            }
            Err(e) => RobotsRules::DisallowAll(format!("robots.txt could not be read ({e})")),
        }
    }

    pub fn allowed(&self, url: &Url) -> bool {
        match self {
            RobotsRules::AllowAll => true,
            RobotsRules::DisallowAll(_) => false,
            RobotsRules::Rules(robot) => robot.allowed(url.as_str()),
        }
    }

    /// `Crawl-delay`, if robots.txt sets one.
    pub fn crawl_delay(&self) -> Option<Duration> {
        match self {
            RobotsRules::Rules(robot) => robot
                .delay
                .map(|s| Duration::from_secs_f32(s.clamp(0.0, 60.0))),
            _ => None,
        }
    }
}
// ANCHOR_END: robots

/// What one listing page holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedPage {
    pub items: Vec<Item>,
    /// "Next page" links.
    pub next: Vec<Url>,
    /// Every other link on the page.
    pub links: Vec<Url>,
}

/// Extract image links, "next page" links and other links from an HTML page at `page_url`.
// ANCHOR: parse_listing
pub fn parse_listing(html: &str, page_url: &Url, cfg: &SpiderConfig) -> ParsedPage {
    let doc = Html::parse_document(html);
    let sel = |s: &str| Selector::parse(s).expect("valid selector");
    let mut out = ParsedPage::default();
    let mut seen = HashSet::new();
    let mut push_item = |url: Url, title: String, out: &mut ParsedPage| {
        let url = if cfg.original_images {
            wikimedia_original(&url)
        } else {
            url
        };
        if seen.insert(url.to_string()) {
            out.items.push(Item {
                image_url: url.to_string(),
                title,
                page: page_url.to_string(),
            });
        }
    };
    let resolve = |href: &str| {
        page_url
            .join(href.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
    };

    for img in doc.select(&sel("img[src]")) {
        let el = img.value();
        let too_small = ["width", "height"].iter().any(|a| {
            el.attr(a)
                .and_then(|v| v.trim_end_matches("px").parse::<u32>().ok())
                .is_some_and(|v| v < cfg.min_side)
        });
        let Some(url) = el.attr("src").and_then(resolve) else {
            continue;
        };
        if too_small {
            continue;
        }
        let parent_title = img
            .ancestors()
            .filter_map(scraper::ElementRef::wrap)
            .find(|a| a.value().name() == "a")
            .and_then(|a| a.value().attr("title").map(str::to_string));
        let title = [
            el.attr("alt").map(str::to_string),
            el.attr("title").map(str::to_string),
            parent_title,
        ]
        .into_iter()
        .flatten()
        .map(|t| t.trim().to_string())
        .find(|t| !t.is_empty())
        .unwrap_or_else(|| file_stem_of(&url));
        push_item(url, title, &mut out);
    }

    let img_sel = sel("img");
    for a in doc.select(&sel("a[href], link[href]")) {
        let el = a.value();
        let Some(url) = el.attr("href").and_then(resolve) else {
            continue;
        };
        let text = a.text().collect::<String>().trim().to_lowercase();
        let rel_next = el
            .attr("rel")
            .is_some_and(|r| r.split_whitespace().any(|t| t == "next"));
        if rel_next || text == "next page" || text == "next" || text.starts_with("next page") {
            out.next.push(url);
        } else if el.name() == "a" && points_to_image(&url) && a.select(&img_sel).next().is_none() {
            // A link straight to an image file. (A link *around* a thumbnail usually leads to a
            // description page, as on Wikimedia's `File:Name.png`; the thumbnail is the item.)
            let title = el
                .attr("title")
                .map(str::to_string)
                .filter(|t| !t.is_empty())
                .unwrap_or(text);
            let title = if title.is_empty() {
                file_stem_of(&url)
            } else {
                title
            };
            push_item(url, title, &mut out);
        } else if el.name() == "a" {
            out.links.push(url);
        }
    }
    out
}
// ANCHOR_END: parse_listing

fn points_to_image(url: &Url) -> bool {
    url.path()
        .rsplit('.')
        .next()
        .and_then(ImageFormat::from_extension)
        .is_some()
}

fn file_stem_of(url: &Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    let decoded = percent_decode(last);
    decoded
        .rsplit_once('.')
        .map_or(decoded.clone(), |(s, _)| s.to_string())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Wikimedia serves thumbnails as `/<project>/thumb/a/ab/Name.svg/120px-Name.svg.png`; the
/// original is `/<project>/a/ab/Name.svg`. Other URLs are returned unchanged.
pub fn wikimedia_original(url: &Url) -> Url {
    let Some(segments) = url.path_segments().map(|s| s.collect::<Vec<_>>()) else {
        return url.clone();
    };
    let Some(thumb) = segments.iter().position(|s| *s == "thumb") else {
        return url.clone();
    };
    // …/thumb/<a>/<ab>/<Name>/<size>px-<Name>[.png]
    if segments.len() != thumb + 5 || !segments[thumb + 4].contains("px-") {
        return url.clone();
    }
    let mut kept: Vec<&str> = segments[..thumb].to_vec();
    kept.extend_from_slice(&segments[thumb + 1..thumb + 4]);
    let mut original = url.clone();
    original.set_path(&kept.join("/"));
    original.set_query(None);
    original
}

/// Pages whose elements nest deeper than this are not parsed. An HTML parser's work grows with
/// the depth of the open elements at every tag: a 5 MB page of a million nested `<div>`s kept
/// the parser busy for minutes. Real listing pages nest a few dozen levels.
pub const MAX_HTML_DEPTH: usize = 512;

/// How deep the elements of `html` nest, by a quick scan of its tags (no tree is built), as an
/// HTML parser keeps them open: an end tag closes the innermost open element of its name (and
/// what is inside it) and is ignored when none is open; `/>` closes only inside `<svg>` and
/// `<math>`; void elements, elements whose end tag may be left out (`<p>`, `<li>`, `<td>`…),
/// comments and the text of `<script>`/`<style>` do not count. The count stops a little past
/// [`MAX_HTML_DEPTH`] (the stack is bounded, so the scan is linear).
pub fn html_nesting_depth(html: &str) -> usize {
    const VOID: [&str; 14] = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "!doctype",
    ];
    const OPTIONAL_END: [&str; 13] = [
        "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "tbody", "thead", "tfoot",
        "colgroup",
    ];
    let bytes = html.as_bytes();
    let mut open: Vec<String> = Vec::new();
    let (mut deepest, mut i) = (0usize, 0usize);
    while let Some(offset) = html[i..].find('<') {
        i += offset + 1;
        let rest = &html[i..];
        if rest.starts_with("!--") {
            i += rest.find("-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        let closing = rest.starts_with('/');
        let name_start = i + usize::from(closing);
        let name_len = html[name_start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'!' || *b == b'-')
            .count();
        if name_len == 0 {
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let tag_end = html[i..].find('>').map_or(html.len(), |end| i + end);
        let self_closing = tag_end > 0 && bytes.get(tag_end - 1) == Some(&b'/');
        i = tag_end.min(html.len());
        if VOID.contains(&name.as_str()) || OPTIONAL_END.contains(&name.as_str()) {
            continue;
        }
        if closing {
            if let Some(at) = open.iter().rposition(|n| *n == name) {
                open.truncate(at);
            }
            continue;
        }
        let foreign =
            open.iter().any(|n| n == "svg" || n == "math") || name == "svg" || name == "math";
        if self_closing && foreign {
            continue;
        }
        open.push(name.clone());
        deepest = deepest.max(open.len());
        if open.len() > MAX_HTML_DEPTH {
            return deepest; // deep enough to refuse; the stack stays bounded
        }
        if name == "script" || name == "style" {
            // Raw text up to the end tag: a `<` inside a script opens nothing.
            let end_tag = format!("</{name}");
            let mut at = i;
            i = html.len();
            while let Some(offset) = html[at..].find("</") {
                at += offset;
                let candidate = &bytes[at..(at + end_tag.len()).min(bytes.len())];
                if candidate.eq_ignore_ascii_case(end_tag.as_bytes()) {
                    i = at;
                    break;
                }
                at += 2;
            }
        }
    }
    deepest
}

/// Read the image URLs already in an `items.csv` (to extend it rather than start over).
pub fn read_items(path: &Path) -> Result<Vec<Item>> {
    crate::fsutil::read_csv(path)
}

/// Crawl from `cfg.start_url` and write `items.csv` to `out`.
pub fn crawl(
    cfg: &SpiderConfig,
    out: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<CrawlSummary> {
    if cfg.max_pages == 0 {
        return Err(Error::config("max_pages", "must be at least 1"));
    }
    let start = &cfg.start_url;
    if !matches!(start.scheme(), "http" | "https") {
        return Err(Error::config(
            "start_url",
            format!(
                "`{start}` is a {}: URL; the spider crawls web sites (http or https) and reads \
                 their robots.txt. For images already on disk, put them under data/raw/<name>/ \
                 and run chapter-03",
                start.scheme()
            ),
        ));
    }
    let client = HttpClient::new(cfg.timeout, &cfg.user_agent);
    let mut robots_url = start.clone();
    robots_url.set_path("/robots.txt");
    robots_url.set_query(None);
    let robots = RobotsRules::from_fetch(
        client
            .get(&robots_url, 512 << 10, RedirectPolicy::SameHost)
            .map(|f| f.body),
        &cfg.user_agent,
    );
    if let RobotsRules::DisallowAll(why) = &robots {
        return Err(Error::Network {
            url: robots_url.to_string(),
            reason: format!("{why}; by the robots.txt standard nothing may be crawled, try later"),
        });
    }
    let delay = cfg.delay.max(robots.crawl_delay().unwrap_or_default());

    // Keep what an earlier crawl gathered.
    let mut items_seen = HashSet::new();
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    let file = std::fs::File::create(&partial).at(&partial)?;
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(file);
    writer.write_record(["image_url", "title", "page"])?;
    let mut total = 0;
    if out.exists() {
        for item in read_items(out)? {
            if items_seen.insert(item.image_url.clone()) {
                writer
                    .serialize(&item)
                    .map_err(|e| Error::bad_input(&partial, e.to_string()))?;
                total += 1;
            }
        }
    }
    writer.flush().at(&partial)?;

    let mut summary = CrawlSummary::default();
    let mut queue = VecDeque::from([start.clone()]);
    let mut queued: HashSet<String> = HashSet::from([start.to_string()]);
    let mut last_request: Option<Instant> = None;
    progress.set_length(cfg.max_pages as u64);
    while let Some(page) = queue.pop_front() {
        // Pages robots.txt forbids are noted without spending the budget.
        if !robots.allowed(&page) {
            summary.disallowed.push(page.to_string());
            continue;
        }
        if summary.pages_fetched >= cfg.max_pages {
            summary.budget_exhausted = true;
            break;
        }
        if let Some(t) = last_request {
            std::thread::sleep(delay.saturating_sub(t.elapsed()));
        }
        last_request = Some(Instant::now());
        summary.pages_fetched += 1;
        progress.inc(1);
        let fetched = match client.get(&page, cfg.max_page_bytes, RedirectPolicy::SameHost) {
            Ok(f) => f,
            Err(e) => {
                summary.failed.push(format!("{page}: {e}"));
                continue;
            }
        };
        let html = String::from_utf8_lossy(&fetched.body);
        let depth = html_nesting_depth(&html);
        if depth > MAX_HTML_DEPTH {
            summary.failed.push(format!(
                "{page}: elements nest more than {MAX_HTML_DEPTH} deep: not parsed, a listing \
                 page is never that deep"
            ));
            continue;
        }
        let parsed = parse_listing(&html, &fetched.url, cfg);
        for item in parsed.items {
            if items_seen.insert(item.image_url.clone()) {
                writer
                    .serialize(&item)
                    .map_err(|e| Error::bad_input(&partial, e.to_string()))?;
                summary.new_items += 1;
                total += 1;
            }
        }
        writer.flush().at(&partial)?;
        let follow = |u: &Url| cfg.follow.iter().any(|p| u.as_str().contains(p.as_str()));
        let links = parsed
            .next
            .into_iter()
            .chain(parsed.links.into_iter().filter(|u| follow(u)));
        for mut link in links {
            link.set_fragment(None);
            if same_origin(start, &link) && queued.insert(link.to_string()) {
                queue.push_back(link);
            }
        }
    }
    progress.finish_and_clear();
    let mut file = writer
        .into_inner()
        .map_err(|e| Error::bad_input(&partial, e.to_string()))?;
    file.flush().at(&partial)?;
    file.sync_all().at(&partial)?;
    std::fs::rename(&partial, out).at(out)?;
    summary.total_items = total;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SpiderConfig {
        SpiderConfig::new(Url::parse("https://commons.example/wiki/Category:Logos").unwrap())
    }

    #[test]
    fn listing_yields_images_next_pages_and_links() {
        let html = r#"<html><body>
            <a href="/wiki/File:Acme.svg" title="File:Acme.svg"><img src="//upload.example/wikipedia/commons/thumb/a/ab/Acme.svg/120px-Acme.svg.png" alt="Acme logo" width="120"></a>
            <img src="/static/icon.png" width="16" height="16">
            <img src="data:image/png;base64,AAAA">
            <a href="/files/Plain%20Logo.png">Plain logo</a>
            <a href="/wiki/Category:Logos?from=B">next page</a>
            <a href="/wiki/Category:Sub_logos">Sub logos</a>
            <a href="javascript:alert(1)">x</a>
        </body></html>"#;
        let page = cfg().start_url.clone();
        let parsed = parse_listing(
            html,
            &page,
            &SpiderConfig {
                min_side: 32,
                ..cfg()
            },
        );
        assert_eq!(parsed.items.len(), 2, "{:?}", parsed.items);
        assert_eq!(
            parsed.items[0].image_url,
            "https://upload.example/wikipedia/commons/a/ab/Acme.svg"
        );
        assert_eq!(parsed.items[0].title, "Acme logo");
        assert_eq!(
            parsed.items[1].image_url,
            "https://commons.example/files/Plain%20Logo.png"
        );
        assert_eq!(parsed.items[1].title, "plain logo");
        assert_eq!(
            parsed.next,
            vec![Url::parse("https://commons.example/wiki/Category:Logos?from=B").unwrap()]
        );
        assert!(parsed
            .links
            .iter()
            .any(|l| l.path() == "/wiki/Category:Sub_logos"));
        assert!(parsed.links.iter().all(|l| l.scheme() != "javascript"));
    }

    #[test]
    fn rel_next_is_a_next_page_link() {
        let html =
            r#"<link rel="next" href="?page=2"><a rel="nofollow next" href="?page=3">more</a>"#;
        let parsed = parse_listing(html, &Url::parse("http://h.example/list").unwrap(), &cfg());
        assert_eq!(parsed.next.len(), 2);
    }

    #[test]
    fn thumbnails_are_rewritten_to_originals_only_when_they_match() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            wikimedia_original(&u(
                "https://up.example/wikipedia/en/thumb/1/1a/X_Y.svg/250px-X_Y.svg.png"
            )),
            u("https://up.example/wikipedia/en/1/1a/X_Y.svg")
        );
        let plain = u("https://up.example/wikipedia/en/1/1a/X.png");
        assert_eq!(wikimedia_original(&plain), plain);
        let odd = u("https://up.example/thumb/only");
        assert_eq!(wikimedia_original(&odd), odd);
    }

    #[test]
    fn robots_rules_follow_the_standard() {
        let ua = "LogoGAN-course";
        let rules = RobotsRules::from_fetch(
            Ok(b"User-agent: *\nDisallow: /private\nCrawl-delay: 2\n".to_vec()),
            ua,
        );
        assert!(rules.allowed(&Url::parse("http://h/list").unwrap()));
        assert!(!rules.allowed(&Url::parse("http://h/private/x").unwrap()));
        assert_eq!(rules.crawl_delay(), Some(Duration::from_secs(2)));
        let missing = RobotsRules::from_fetch(
            Err(FetchError::Status {
                code: 404,
                retry_after: None,
            }),
            ua,
        );
        assert!(missing.allowed(&Url::parse("http://h/x").unwrap()));
        let down = RobotsRules::from_fetch(
            Err(FetchError::Status {
                code: 503,
                retry_after: None,
            }),
            ua,
        );
        assert!(!down.allowed(&Url::parse("http://h/x").unwrap()));
        let garbage = RobotsRules::from_fetch(Ok(vec![0xff, 0xfe, b'{', b'\n', 0, 7]), ua);
        assert!(garbage.allowed(&Url::parse("http://h/x").unwrap()));
    }

    #[test]
    fn nesting_depth_counts_what_a_parser_keeps_open() {
        assert_eq!(
            html_nesting_depth("<html><body><div><p>a<p>b<br><img src=x></div></body></html>"),
            3
        );
        assert_eq!(
            html_nesting_depth("<ul><li>a<li>b<li>c</ul><!-- <div><div> -->"),
            1
        );
        assert_eq!(
            html_nesting_depth("<script>if (a<b && c<d) { x = '<div>'; }</script>"),
            1
        );
        assert_eq!(html_nesting_depth("<svg><path/><path/></svg>"), 1);
        assert_eq!(
            html_nesting_depth("<div><span></x></span></div><svg><g/><g/></svg>"),
            2
        );
        let start = std::time::Instant::now();
        // Ways to nest a parser deep: plain, with `/>` it ignores, with end tags of nothing.
        for hostile in ["<div>", "<div/>", "<span></x>", "<rt>"] {
            let depth = html_nesting_depth(&hostile.repeat(1_000_000));
            assert_eq!(depth, MAX_HTML_DEPTH + 1, "{hostile}");
        }
        assert!(start.elapsed().as_secs_f64() < 5.0, "the scan is linear");
    }
}
