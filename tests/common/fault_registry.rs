//! A tiny in-process Docker registry (HTTP/1.1, std only) serving in-memory images, with
//! programmable faults, plus helpers to build images and (deliberately malformed) layer tars.
//!
//! Every connection gets its own thread and `Connection: close`. The server records each request
//! (method, path, `Authorization`, `Range`, the status it answered) so tests can assert on what
//! the client did.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `bytes` with the byte at `index` changed (same length, different digest).
pub fn flip_byte(bytes: &[u8], index: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[index] ^= 0x5a;
    out
}

/// Deterministic, incompressible bytes (xorshift), so a gzipped layer keeps its size.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Faults and requests
// ---------------------------------------------------------------------------------------------

/// What to do wrong when a given path is requested. The default does nothing wrong.
#[derive(Clone, Debug, Default)]
pub struct Fault {
    /// Serve these bytes instead of the stored ones (headers, digest header included, unchanged).
    pub replace_body: Option<Vec<u8>>,
    /// Stop sending at this offset of the blob, then close the connection.
    pub truncate_at: Option<usize>,
    /// Truncate only the first this-many responses (None: always).
    pub truncate_times: Option<usize>,
    /// Stop every response after this many bytes of body, then close the connection: each
    /// resumed download makes that much progress.
    pub truncate_each: Option<usize>,
    /// Answer every Range request with 200 and the whole body.
    pub ignore_range: bool,
    /// Advertise a Content-Length this much larger than the body, send the body, then close.
    pub extra_length: u64,
    /// Answer with this status (429, 500, …) the first `fail_times` requests.
    pub fail_status: Option<u16>,
    pub fail_times: usize,
    /// `Retry-After` seconds sent with `fail_status`.
    pub retry_after: Option<u32>,
    /// Answer 307 with `Location: <redirect><path>` (e.g. `http://localhost:PORT`).
    pub redirect: Option<String>,
    /// Send the body in chunks of this size with a pause after each.
    pub slow: Option<(usize, Duration)>,
    /// Send no Content-Length: the body ends when the connection closes.
    pub no_content_length: bool,
    /// Content-Type to send instead of the stored one.
    pub content_type: Option<String>,
    /// Read the request, then answer nothing, keeping the connection open until the client
    /// closes it (recorded with status 0).
    pub hang: bool,
    /// Hang only the first this-many requests (None: always).
    pub hang_times: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    /// The status this server answered.
    pub status: u16,
    pub at: Instant,
}

struct Object {
    media_type: String,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct State {
    /// Manifests by request path (`/v2/<name>/manifests/<ref>`).
    manifests: HashMap<String, Object>,
    /// Blobs by digest, whatever repository they are asked for under.
    blobs: HashMap<String, Vec<u8>>,
    faults: HashMap<String, Fault>,
    /// Requests seen per path.
    counts: HashMap<String, usize>,
    /// Truncated responses per path.
    truncations: HashMap<String, usize>,
    /// Body bytes written per path (all responses together), updated as they go out.
    sent: HashMap<String, usize>,
    requests: Vec<Request>,
    /// When set, every `/v2/` request must carry exactly this `Authorization`.
    required_auth: Option<String>,
    /// When set, `(realm, token)`: every `/v2/` request must carry `Bearer <token>`, else it
    /// is answered 401 with a Bearer challenge naming `realm`; `GET /token` hands the token out.
    bearer: Option<(String, String)>,
}

/// What to send back, decided under the lock and written outside it.
struct Plan {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Content-Length to advertise (None: none, body ends at close).
    content_length: Option<u64>,
    slow: Option<(usize, Duration)>,
    send_body: bool,
    hang: bool,
}

impl Plan {
    fn simple(status: u16, body: &str) -> Plan {
        Plan {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            content_length: Some(body.len() as u64),
            slow: None,
            send_body: true,
            hang: false,
        }
    }
}

fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

pub struct FaultRegistry {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultRegistry {
    /// An anonymous registry on `127.0.0.1:<random port>`.
    pub fn start() -> FaultRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind registry");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &state);
                });
            }
        });
        FaultRegistry { port, state }
    }

    /// A registry that answers 401 + `WWW-Authenticate: Basic realm="x"` unless the request
    /// carries these credentials.
    pub fn start_with_basic_auth(user: &str, password: &str) -> FaultRegistry {
        let registry = FaultRegistry::start();
        registry.lock().required_auth = Some(basic_header(user, password));
        registry
    }

    /// A registry using the token flow: 401 with `WWW-Authenticate: Bearer realm="<realm>"`
    /// unless a request carries `Bearer <token>`; its own `GET /token` answers
    /// `{"token": "<token>"}` (faults set on `/token` apply). `realm` defaults to that endpoint.
    pub fn start_with_bearer(token: &str, realm: Option<&str>) -> FaultRegistry {
        let registry = FaultRegistry::start();
        let realm = realm.map_or_else(
            || format!("http://127.0.0.1:{}/token", registry.port),
            str::to_string,
        );
        registry.lock().bearer = Some((realm, token.to_string()));
        registry
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("registry state")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the registry domain as written in references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/<name_and_tag>`.
    pub fn reference(&self, name_and_tag: &str) -> String {
        format!("{}/{}", self.host(), name_and_tag)
    }

    pub fn manifest_path(repo: &str, reference: &str) -> String {
        format!("/v2/{repo}/manifests/{reference}")
    }

    pub fn blob_path(repo: &str, digest: &str) -> String {
        format!("/v2/{repo}/blobs/{digest}")
    }

    pub fn put_blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        self.lock().blobs.insert(digest.clone(), bytes.to_vec());
        digest
    }

    /// Serves `bytes` with `media_type` at `/v2/<repo>/manifests/<reference>` only.
    pub fn put_manifest_at(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        self.lock().manifests.insert(
            Self::manifest_path(repo, reference),
            Object {
                media_type: media_type.to_string(),
                bytes: bytes.to_vec(),
            },
        );
    }

    /// Serves a manifest under `tag` and under its own digest; returns the digest.
    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        self.put_manifest_at(repo, tag, media_type, bytes);
        self.put_manifest_at(repo, &digest, media_type, bytes);
        digest
    }

    /// Serves an image's config, layers and manifest (under `tag` and its digest).
    pub fn push_image(&self, repo: &str, tag: &str, image: &Image) {
        self.put_blob(&image.config);
        for layer in &image.layers {
            self.put_blob(&layer.blob);
        }
        self.put_manifest(repo, tag, DOCKER_MANIFEST, &image.manifest);
    }

    pub fn set_fault(&self, path: &str, fault: Fault) {
        self.lock().faults.insert(path.to_string(), fault);
    }

    pub fn clear_fault(&self, path: &str) {
        self.lock().faults.remove(path);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Body bytes written so far for `path`.
    pub fn sent(&self, path: &str) -> usize {
        self.lock().sent.get(path).copied().unwrap_or(0)
    }
}

pub fn basic_header(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn handle(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    drop(reader);
    let path = target.split('?').next().unwrap_or("").to_string();

    let plan = {
        let mut state = state.lock().expect("registry state");
        let plan = decide(&mut state, &method, &path, &headers);
        state.requests.push(Request {
            method: method.clone(),
            path: path.clone(),
            authorization: headers.get("authorization").cloned(),
            range: headers.get("range").cloned(),
            status: plan.status,
            at: Instant::now(),
        });
        plan
    };

    if plan.hang {
        return hold_silently(&stream);
    }
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        plan.status,
        reason(plan.status)
    );
    if let Some(length) = plan.content_length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    for (name, value) in &plan.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = &stream;
    out.write_all(head.as_bytes())?;
    if plan.send_body && method != "HEAD" {
        let chunk = plan.slow.map_or(64 * 1024, |(size, _)| size.max(1));
        for piece in plan.body.chunks(chunk) {
            out.write_all(piece)?;
            out.flush()?;
            *state
                .lock()
                .expect("registry state")
                .sent
                .entry(path.clone())
                .or_default() += piece.len();
            if let Some((_, pause)) = plan.slow {
                std::thread::sleep(pause);
            }
        }
    }
    out.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// Keeps the connection open, saying nothing, until the client closes it (or 10 minutes pass).
fn hold_silently(stream: &TcpStream) -> std::io::Result<()> {
    use std::io::Read;
    let until = Instant::now() + Duration::from_secs(600);
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut byte = [0u8; 1];
    while Instant::now() < until {
        match (&*stream).read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

fn decide(state: &mut State, method: &str, path: &str, headers: &HashMap<String, String>) -> Plan {
    if method != "GET" && method != "HEAD" {
        return Plan::simple(405, &error_body("UNSUPPORTED", "method not allowed"));
    }
    if let Some(required) = &state.required_auth
        && headers.get("authorization") != Some(required)
    {
        let mut plan = Plan::simple(401, &error_body("UNAUTHORIZED", "authentication required"));
        plan.headers
            .push(("WWW-Authenticate".into(), "Basic realm=\"x\"".into()));
        return plan;
    }
    if path == "/token"
        && let Some((_, token)) = &state.bearer
    {
        let fault = state.faults.get(path).cloned().unwrap_or_default();
        let body = fault.replace_body.unwrap_or_else(|| {
            serde_json::json!({ "token": token })
                .to_string()
                .into_bytes()
        });
        let mut plan = Plan::simple(200, "");
        plan.content_length = (!fault.no_content_length).then_some(body.len() as u64);
        plan.body = body;
        return plan;
    }
    if let Some((realm, token)) = &state.bearer
        && path.starts_with("/v2")
        && headers.get("authorization") != Some(&format!("Bearer {token}"))
    {
        let mut plan = Plan::simple(401, &error_body("UNAUTHORIZED", "authentication required"));
        plan.headers.push((
            "WWW-Authenticate".into(),
            format!("Bearer realm=\"{realm}\",service=\"fault-registry\""),
        ));
        return plan;
    }
    if path == "/v2/" || path == "/v2" {
        return Plan::simple(200, "{}");
    }

    let fault = state.faults.get(path).cloned().unwrap_or_default();
    let seen = {
        let count = state.counts.entry(path.to_string()).or_default();
        *count += 1;
        *count - 1
    };
    if let Some(status) = fault.fail_status
        && seen < fault.fail_times
    {
        let mut plan = Plan::simple(status, &error_body("UNAVAILABLE", "injected failure"));
        if let Some(secs) = fault.retry_after {
            plan.headers.push(("Retry-After".into(), secs.to_string()));
        }
        return plan;
    }
    if fault.hang && fault.hang_times.is_none_or(|times| seen < times) {
        let mut plan = Plan::simple(0, "");
        plan.hang = true;
        return plan;
    }
    if let Some(base) = &fault.redirect {
        let mut plan = Plan::simple(307, "");
        plan.headers.clear();
        plan.headers
            .push(("Location".into(), format!("{base}{path}")));
        return plan;
    }

    let (stored_digest, media_type, bytes, is_blob) = if path.contains("/manifests/") {
        match state.manifests.get(path) {
            Some(object) => (
                sha256(&object.bytes),
                object.media_type.clone(),
                object.bytes.clone(),
                false,
            ),
            None => {
                return Plan::simple(404, &error_body("MANIFEST_UNKNOWN", "manifest unknown"));
            }
        }
    } else if let Some((_, digest)) = path.rsplit_once("/blobs/") {
        match state.blobs.get(digest) {
            Some(bytes) => (
                digest.to_string(),
                "application/octet-stream".to_string(),
                bytes.clone(),
                true,
            ),
            None => {
                return Plan::simple(404, &error_body("BLOB_UNKNOWN", "blob unknown to registry"));
            }
        }
    } else {
        return Plan::simple(404, &error_body("NOT_FOUND", "not found"));
    };
    let body = fault.replace_body.clone().unwrap_or(bytes);
    let total = body.len();

    let mut status = 200;
    let mut start = 0;
    let mut plan_headers = vec![
        (
            "Content-Type".to_string(),
            fault.content_type.clone().unwrap_or(media_type),
        ),
        ("Docker-Content-Digest".to_string(), stored_digest),
    ];
    if is_blob {
        plan_headers.push(("Accept-Ranges".into(), "bytes".into()));
    }
    if is_blob
        && !fault.ignore_range
        && let Some(range) = headers.get("range")
        && let Some(from) = range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
    {
        if from >= total {
            let mut plan = Plan::simple(416, &error_body("RANGE_INVALID", "range not satisfiable"));
            plan.headers
                .push(("Content-Range".into(), format!("bytes */{total}")));
            return plan;
        }
        status = 206;
        start = from;
        plan_headers.push((
            "Content-Range".into(),
            format!("bytes {from}-{}/{total}", total - 1),
        ));
    }

    let mut end = total;
    if let Some(at) = fault.truncate_at {
        let done = state.truncations.entry(path.to_string()).or_default();
        if fault.truncate_times.is_none_or(|times| *done < times) {
            *done += 1;
            end = at.clamp(start, total);
        }
    }
    if let Some(each) = fault.truncate_each {
        end = end.min(start + each);
    }
    let advertised = (total - start) as u64 + fault.extra_length;
    Plan {
        status,
        headers: plan_headers,
        body: body[start..end].to_vec(),
        content_length: (!fault.no_content_length).then_some(advertised),
        slow: fault.slow,
        send_body: true,
        hang: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Layer {
    /// The uncompressed tar.
    pub tar: Vec<u8>,
    /// The gzipped tar, as served.
    pub blob: Vec<u8>,
    /// sha256 of `tar`.
    pub diff_id: String,
    /// sha256 of `blob`.
    pub digest: String,
    pub media_type: String,
}

impl Layer {
    pub fn gzip(tar: &[u8]) -> Layer {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(tar).expect("gzip");
        let blob = encoder.finish().expect("gzip");
        Layer {
            tar: tar.to_vec(),
            diff_id: sha256(tar),
            digest: sha256(&blob),
            blob,
            media_type: DOCKER_LAYER_GZIP.to_string(),
        }
    }

    /// A zstd-compressed layer (`application/vnd.oci.image.layer.v1.tar+zstd`).
    pub fn zstd(tar: &[u8]) -> Layer {
        let blob = zstd::encode_all(tar, 3).expect("zstd");
        Layer {
            tar: tar.to_vec(),
            diff_id: sha256(tar),
            digest: sha256(&blob),
            blob,
            media_type: OCI_LAYER_ZSTD.to_string(),
        }
    }

    /// Hex of the diffID: the name of the layer's directory in the store.
    pub fn diff_hex(&self) -> &str {
        self.diff_id.trim_start_matches("sha256:")
    }
}

#[derive(Clone, Debug)]
pub struct Image {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub layers: Vec<Layer>,
}

/// An amd64 image of gzipped `tars`.
pub fn build_image(tars: &[Vec<u8>]) -> Image {
    image_from_layers(tars.iter().map(|t| Layer::gzip(t)).collect(), "amd64")
}

/// A Docker schema2 image of ready-made layers (their media types used as given).
pub fn image_from_layers(layers: Vec<Layer>, architecture: &str) -> Image {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
        "created": "2024-01-01T00:00:00Z",
    }))
    .expect("config json");
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type,
            "digest": l.digest,
            "size": l.blob.len(),
        })).collect::<Vec<_>>(),
    }))
    .expect("manifest json");
    Image {
        manifest_digest: sha256(&manifest),
        config,
        config_digest,
        manifest,
        layers,
    }
}

/// An OCI index listing `entries` as (image, os, architecture).
pub fn build_index(entries: &[(&Image, &str, &str)]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries.iter().map(|(image, os, arch)| serde_json::json!({
            "mediaType": DOCKER_MANIFEST,
            "digest": image.manifest_digest,
            "size": image.manifest.len(),
            "platform": {"os": os, "architecture": arch},
        })).collect::<Vec<_>>(),
    }))
    .expect("index json")
}

// ---------------------------------------------------------------------------------------------
// Tars with arbitrary raw names
// ---------------------------------------------------------------------------------------------

/// One tar entry, written byte for byte: names and link targets are not checked (`..` and
/// absolute paths welcome).
#[derive(Clone, Debug)]
pub struct TarEntry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Major and minor numbers of a device node.
    pub device: (u32, u32),
}

impl TarEntry {
    pub fn new(name: impl AsRef<[u8]>, kind: tar::EntryType) -> TarEntry {
        TarEntry {
            name: name.as_ref().to_vec(),
            kind,
            data: Vec::new(),
            link: Vec::new(),
            mode: if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            device: (0, 0),
        }
    }
}

#[derive(Default)]
pub struct TarBuilder {
    out: Vec<u8>,
}

impl TarBuilder {
    pub fn new() -> TarBuilder {
        TarBuilder::default()
    }

    /// Appends `entry`; a name or link target longer than the header's 100 bytes goes in a GNU
    /// long-name or long-link entry before it (the header keeps the first 100 bytes).
    pub fn entry(mut self, entry: TarEntry) -> TarBuilder {
        const FIELD: usize = 100;
        if entry.link.len() > FIELD {
            let mut long = TarEntry::new("././@LongLink", tar::EntryType::GNULongLink);
            long.data = entry.link.clone();
            long.data.push(0);
            self = self.entry(long);
        }
        if entry.name.len() > FIELD {
            self = self.gnu_long_name(&entry.name);
        }
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().expect("gnu header");
            let name = &entry.name[..entry.name.len().min(FIELD)];
            let link = &entry.link[..entry.link.len().min(FIELD)];
            gnu.name[..name.len()].copy_from_slice(name);
            gnu.linkname[..link.len()].copy_from_slice(link);
        }
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(entry.mtime);
        if matches!(
            entry.kind,
            tar::EntryType::Fifo | tar::EntryType::Char | tar::EntryType::Block
        ) {
            header
                .set_device_major(entry.device.0)
                .expect("device major");
            header
                .set_device_minor(entry.device.1)
                .expect("device minor");
        }
        header.set_cksum();
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(&entry.data);
        let pad = (512 - entry.data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(self, name: impl AsRef<[u8]>, data: &[u8]) -> TarBuilder {
        let mut entry = TarEntry::new(name, tar::EntryType::Regular);
        entry.data = data.to_vec();
        self.entry(entry)
    }

    pub fn dir(self, name: impl AsRef<[u8]>) -> TarBuilder {
        self.entry(TarEntry::new(name, tar::EntryType::Directory))
    }

    pub fn symlink(self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> TarBuilder {
        let mut entry = TarEntry::new(name, tar::EntryType::Symlink);
        entry.link = target.as_ref().to_vec();
        entry.mode = 0o777;
        self.entry(entry)
    }

    pub fn hardlink(self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> TarBuilder {
        let mut entry = TarEntry::new(name, tar::EntryType::Link);
        entry.link = target.as_ref().to_vec();
        self.entry(entry)
    }

    pub fn fifo(self, name: impl AsRef<[u8]>) -> TarBuilder {
        self.entry(TarEntry::new(name, tar::EntryType::Fifo))
    }

    /// A device node (`kind` Char or Block) with these numbers and mode.
    pub fn device(
        self,
        name: impl AsRef<[u8]>,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
    ) -> TarBuilder {
        let mut entry = TarEntry::new(name, kind);
        entry.device = (major, minor);
        entry.mode = 0o666;
        self.entry(entry)
    }

    /// A GNU long-name entry (`L`) naming the next entry.
    pub fn gnu_long_name(self, name: impl AsRef<[u8]>) -> TarBuilder {
        let mut entry = TarEntry::new("././@LongLink", tar::EntryType::GNULongName);
        entry.data = name.as_ref().to_vec();
        entry.data.push(0);
        self.entry(entry)
    }

    /// A pax extended header (`x`) applying to the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> TarBuilder {
        let mut data = Vec::new();
        for (key, value) in records {
            let base = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = base + base.to_string().len();
            if len.to_string().len() != base.to_string().len() {
                len += 1;
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut entry = TarEntry::new("PaxHeaders/entry", tar::EntryType::XHeader);
        entry.data = data;
        self.entry(entry)
    }

    /// The tar, with its two terminating zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}
