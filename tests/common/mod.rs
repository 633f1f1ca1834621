//! A tiny HTTP server on 127.0.0.1 for the gathering tests: each test describes its routes as a
//! function from path to [`Reply`]; every request is served on its own thread (so a slow route
//! does not block the others) and counted.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server answers for a path.
#[derive(Clone, Debug)]
pub enum Reply {
    Body {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        headers: Vec<(&'static str, String)>,
    },
    /// No Content-Length: the body is sent chunked, so only reading it reveals its size.
    Chunked(Vec<u8>),
    Redirect(String),
    Slow(Duration, Vec<u8>),
}

impl Reply {
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Reply::Body {
            status: 200,
            content_type,
            body: body.into(),
            headers: vec![],
        }
    }
    pub fn status(status: u16) -> Self {
        Reply::Body {
            status,
            content_type: "text/plain",
            body: b"no".to_vec(),
            headers: vec![],
        }
    }
}

pub type Routes = dyn Fn(&str, usize) -> Reply + Send + Sync;

pub struct FixtureServer {
    pub base: String,
    pub port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    server: Arc<tiny_http::Server>,
}

impl FixtureServer {
    /// Start a server; `routes(path, n)` gets the path (with query) and how many times it was
    /// requested before (0 on the first request).
    pub fn start(routes: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let routes: Arc<Routes> = Arc::new(routes);
        {
            let server = server.clone();
            let hits = hits.clone();
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let path = request.url().to_string();
                    let n = {
                        let mut hits = hits.lock().unwrap();
                        let n = hits.entry(path.clone()).or_insert(0);
                        *n += 1;
                        *n - 1
                    };
                    let reply = routes(&path, n);
                    std::thread::spawn(move || respond(request, reply));
                }
            });
        }
        Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            hits,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// How many times `path` was requested.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn respond(request: tiny_http::Request, reply: Reply) {
    use tiny_http::{Header, Response};
    let header = |k: &str, v: &str| Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap();
    let _ = match reply {
        Reply::Body {
            status,
            content_type,
            body,
            headers,
        } => {
            let mut response = Response::from_data(body)
                .with_status_code(status)
                .with_header(header("Content-Type", content_type));
            for (k, v) in headers {
                response = response.with_header(header(k, &v));
            }
            request.respond(response)
        }
        Reply::Chunked(body) => {
            let len = None;
            request.respond(Response::new(
                200.into(),
                vec![header("Content-Type", "image/png")],
                std::io::Cursor::new(body),
                len,
                None,
            ))
        }
        Reply::Redirect(location) => {
            request.respond(Response::empty(302).with_header(header("Location", &location)))
        }
        Reply::Slow(delay, body) => {
            std::thread::sleep(delay);
            request.respond(Response::from_data(body))
        }
    };
}

/// A small valid PNG of one colour.
pub fn png(colour: [u8; 3], size: u32) -> Vec<u8> {
    let mut image = image::RgbImage::from_pixel(size, size, image::Rgb([255, 255, 255]));
    for y in size / 4..3 * size / 4 {
        for x in size / 4..3 * size / 4 {
            image.put_pixel(x, y, image::Rgb(colour));
        }
    }
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}
