//! Image management against the fixture registries: `images`/`image ls` (filters, templates),
//! `rmi`/`image rm`, `image prune`, `tag`, `inspect`, `history`, `system df`, `login`/`logout`,
//! including the seed documents' command lines run verbatim through bash.
//!
//! Test images with chosen creation times, labels and sizes are built here as OCI layouts and
//! pushed with skopeo under names unique to this test process, then retagged locally to the
//! seeds' names (ubuntu:18.04, mongo:3.2, redis, nginx).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use berth::time::Timestamp;
use common::{ANON, BASIC, PASSWORD, TOKEN, TestRoot, USER, fixtures};
use sha2::Digest as _;

const DAY: i64 = 86400;

/// One test image pushed to the anonymous registry.
#[derive(Clone, Debug)]
struct Built {
    /// `127.0.0.1:5000/img…-ubuntu:t`
    remote: String,
    /// `sha256:…` (the config digest)
    id: String,
    /// The layer's diffID.
    diff_id: String,
}

impl Built {
    fn short(&self) -> &str {
        &self.id[7..19]
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Builds a one-layer OCI image (a file of `size` bytes) created `age_days` ago with `labels`,
/// and pushes it as `127.0.0.1:5000/img<pid>-<name>:t`.
fn build(name: &str, age_days: i64, size: usize, labels: &[(&str, &str)]) -> Built {
    let dir = std::env::temp_dir().join(format!("berth-img-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> String {
        let hex = sha256_hex(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    // The layer: one file whose content is unique to this image.
    let mut tar = tar::Builder::new(Vec::new());
    let content: Vec<u8> = (0..size).map(|i| name.as_bytes()[i % name.len()]).collect();
    let mut header = tar::Header::new_gnu();
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mtime(1_600_000_000);
    header.set_cksum();
    tar.append_data(&mut header, format!("{name}.txt"), &content[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let layer = put(&gz);
    let created = Timestamp {
        secs: Timestamp::now().secs - age_days * DAY,
        nanos: 0,
    }
    .rfc3339_nano();
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let mut config_obj = serde_json::json!({ "Cmd": ["sh"], "Env": ["PATH=/bin"] });
    if !labels.is_empty() {
        config_obj["Labels"] = serde_json::Value::Object(labels);
    }
    let config = serde_json::json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": config_obj,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [
            { "created": created, "created_by": format!("/bin/sh -c #(nop) ADD file:{name}.txt in / "), "comment": "test" },
            { "created": created, "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true }
        ]
    });
    let config = serde_json::to_vec(&config).unwrap();
    let id = put(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": id, "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": gz.len() }]
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "t" }
        }]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let remote = format!("{ANON}/img{}-{name}:t", std::process::id());
    let status = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:t", dir.display()))
        .arg(format!("docker://{remote}"))
        .status()
        .expect("run skopeo");
    assert!(status.success(), "skopeo copy to {remote} failed");
    let _ = std::fs::remove_dir_all(&dir);
    Built {
        remote,
        id,
        diff_id,
    }
}

struct Images {
    ubuntu: Built,
    mongo: Built,
    redis5: Built,
    redis: Built,
    nginx: Built,
    dangler: Built,
}

/// The seed images, built and pushed once per test process.
fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        fixtures();
        Images {
            ubuntu: build("ubuntu", 30, 1000, &[("com.example.version", "0.1")]),
            mongo: build("mongo", 20, 2000, &[]),
            redis5: build("redis5", 12, 3000, &[("com.example.version", "0.2")]),
            redis: build("redis", 10, 3500, &[]),
            nginx: build("nginx", 5, 4000, &[]),
            dangler: build("dangler", 15, 5000, &[]),
        }
    })
}

/// A store plus a directory holding a `berth` that is this test binary's berth, so seed
/// command lines run verbatim through bash (the store comes from `BERTH_ROOT`).
struct Shell {
    root: TestRoot,
    bin: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Shell {
    fn new(name: &str) -> Shell {
        let root = TestRoot::new(name);
        let bin = root.dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), bin.join("berth")).unwrap();
        Shell { root, bin }
    }

    fn command(&self, line: &str) -> Command {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(line)
            .env("PATH", path)
            .env("BERTH_ROOT", &self.root.path)
            .env("DOCKER_CONFIG", self.root.docker_config());
        cmd
    }

    fn sh_input(&self, line: &str, input: &str) -> Run {
        let (code, stdout, stderr) = run_with_input(&mut self.command(line), input);
        Run {
            code,
            stdout,
            stderr,
        }
    }

    fn sh(&self, line: &str) -> Run {
        self.sh_input(line, "")
    }

    /// Runs a line expecting success; returns stdout.
    fn ok(&self, line: &str) -> String {
        let r = self.sh(line);
        assert_eq!(
            r.code, 0,
            "{line}: exit {}\nstdout: {}\nstderr: {}",
            r.code, r.stdout, r.stderr
        );
        r.stdout
    }

    /// Pulls `image` and makes `names` its only references.
    fn install(&self, image: &Built, names: &[&str]) {
        self.ok(&format!("berth pull -q {}", image.remote));
        for n in names {
            self.ok(&format!("berth tag {} {n}", image.remote));
        }
        self.ok(&format!("berth rmi {}", image.remote));
    }

    /// ubuntu:18.04, mongo:3.2, redis:5.0, redis:latest, nginx:latest.
    fn seed(&self) -> &'static Images {
        let i = images();
        self.install(&i.ubuntu, &["ubuntu:18.04"]);
        self.install(&i.mongo, &["mongo:3.2"]);
        self.install(&i.redis5, &["redis:5.0"]);
        self.install(&i.redis, &["redis:latest"]);
        self.install(&i.nginx, &["nginx:latest"]);
        i
    }

    /// Makes the `dangler` image dangling: tagged app:1.0, then app:1.0 moved to mongo.
    fn dangle(&self) -> &'static Built {
        let i = images();
        self.install(&i.dangler, &["app:1.0"]);
        self.ok("berth tag mongo:3.2 app:1.0");
        &i.dangler
    }

    fn path(&self) -> &Path {
        &self.root.path
    }
}

const HEADER: &str = "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE";

fn table(rows: &[(&str, &str, &Built, &str, &str)]) -> String {
    // Column widths for these fixtures: REPOSITORY 13, TAG 10, IMAGE ID 15, CREATED 14.
    let mut out = String::new();
    for (repo, tag, image, created, size) in rows {
        out.push_str(&format!(
            "{repo:<13}{tag:<10}{:<15}{created:<14}{size}\n",
            image.short()
        ));
    }
    out
}

#[test]
fn images_table_is_dockers() {
    let sh = Shell::new("images-table");
    let i = sh.seed();
    let expected = format!(
        "{HEADER}\n{}",
        table(&[
            ("nginx", "latest", &i.nginx, "5 days ago", "4kB"),
            ("redis", "latest", &i.redis, "10 days ago", "3.5kB"),
            ("redis", "5.0", &i.redis5, "12 days ago", "3kB"),
            ("mongo", "3.2", &i.mongo, "2 weeks ago", "2kB"),
            ("ubuntu", "18.04", &i.ubuntu, "4 weeks ago", "1kB"),
        ])
    );
    assert_eq!(sh.ok("berth images"), expected);
    assert_eq!(sh.ok("berth image ls"), expected);
    assert_eq!(sh.ok("berth image list"), expected);
    // -a shows the same (no intermediate images in pulled stores).
    assert_eq!(sh.ok("berth images -a"), expected);
    // A repository argument, with and without a tag (seed: docker images ubuntu[:16.04]).
    assert_eq!(
        sh.ok("berth images redis"),
        format!(
            "{HEADER}\n{}",
            table(&[
                ("redis", "latest", &i.redis, "10 days ago", "3.5kB"),
                ("redis", "5.0", &i.redis5, "12 days ago", "3kB"),
            ])
        )
    );
    assert_eq!(
        sh.ok("berth images ubuntu:18.04"),
        format!(
            "{HEADER}\n{}",
            table(&[("ubuntu", "18.04", &i.ubuntu, "4 weeks ago", "1kB")])
        )
    );
    assert_eq!(
        sh.ok("berth images ubuntu:16.04"),
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    );
    // -q: one ID per row, newest first.
    assert_eq!(
        sh.ok("berth images -q"),
        [&i.nginx, &i.redis, &i.redis5, &i.mongo, &i.ubuntu]
            .iter()
            .map(|b| format!("{}\n", b.short()))
            .collect::<String>()
    );
    // --no-trunc: full IDs.
    let out = sh.ok("berth images --no-trunc nginx");
    assert_eq!(
        out.lines().nth(1).unwrap(),
        format!("nginx        latest    {}   5 days ago   4kB", i.nginx.id)
    );
    assert!(out.starts_with(&format!(
        "REPOSITORY   TAG       IMAGE ID{}CREATED",
        " ".repeat(66)
    )));
}

#[test]
fn images_digests_column() {
    fixtures();
    let root = TestRoot::new("images-digests");
    root.ok(&["pull", "-q", &format!("{ANON}/busybox:latest")]);
    root.ok(&["tag", &format!("{ANON}/busybox:latest"), "mybox:1"]);
    let manifest_digest = {
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{ANON}/busybox:latest"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let id = root.ok(&["images", "-q", "mybox"]).trim().to_string();
    let out = root.ok(&["images", "--digests"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let widths = |s: &str| s.split("   ").filter(|c| !c.is_empty()).count();
    assert!(
        lines[0].starts_with("REPOSITORY               TAG       DIGEST"),
        "{out}"
    );
    assert!(
        lines[0].contains(&format!("DIGEST{}IMAGE ID       CREATED", " ".repeat(68))),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{ANON}/busybox   latest    {manifest_digest}   {id}   "
        )),
        "{out}"
    );
    // A local tag has no digest in its own repository.
    assert!(
        lines[2].starts_with(&format!(
            "mybox                    1         <none>{}{id}",
            " ".repeat(68)
        )),
        "{out}"
    );
    assert_eq!(widths(lines[1]), 6);
    // {{.Digest}} in a template shows the digest even without --digests.
    assert_eq!(
        root.ok(&[
            "images",
            "--format",
            "{{.Repository}} {{.Digest}}",
            &format!("{ANON}/busybox")
        ]),
        format!("{ANON}/busybox {manifest_digest}\n")
    );
}

#[test]
fn images_templates() {
    let sh = Shell::new("images-templates");
    let i = sh.seed();
    // Seed: docker images --format "{{.ID}}: {{.Repository}}"
    assert_eq!(
        sh.ok(r#"berth images --format "{{.ID}}: {{.Repository}}" redis"#),
        format!("{}: redis\n{}: redis\n", i.redis.short(), i.redis5.short())
    );
    // Seed: docker images --format "table {{.ID}}\t{{.Repository}}\t{{.Tag}}"
    assert_eq!(
        sh.ok(r#"berth images --format "table {{.ID}}\t{{.Repository}}\t{{.Tag}}" redis"#),
        format!(
            "IMAGE ID       REPOSITORY   TAG\n{}   redis        latest\n{}   redis        5.0\n",
            i.redis.short(),
            i.redis5.short()
        )
    );
    // Conditionals and pipelines are Go template semantics.
    assert_eq!(
        sh.ok(r#"berth images --format '{{if eq .Tag "latest"}}{{.Repository | upper}}{{else}}-{{end}}' redis"#),
        "REDIS\n-\n"
    );
    assert_eq!(
        sh.ok("berth images --format '{{.Size}} {{.CreatedSince}}' nginx"),
        "4kB 5 days ago\n"
    );
    let created_at = sh.ok("berth images --format '{{.CreatedAt}}' nginx");
    assert!(created_at.ends_with(" +0000 UTC\n"), "{created_at}");
    // {{json .}}: every field, keys sorted, HTML characters escaped like Go.
    let json = sh.ok("berth images --format '{{json .}}' nginx");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ID"], i.nginx.short());
    assert_eq!(v["Repository"], "nginx");
    assert_eq!(v["Digest"], "<none>");
    assert!(json.contains(r#""Digest":"\u003cnone\u003e""#), "{json}");
    assert!(
        json.starts_with(r#"{"Containers":"N/A","CreatedAt":"#),
        "{json}"
    );
    // A template error is a clear message, exit 125 (the issue's code; Docker exits 1).
    let r = sh.sh("berth images --format '{{.Nope}}'");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.starts_with("template parsing error:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Nope"), "{}", r.stderr);
    // Seed: docker image ls --format "{{.size}}" (fields are case-sensitive, as in Go).
    let r = sh.sh(r#"berth image ls --format "{{.size}}""#);
    assert_eq!(r.code, 125, "{}", r.stdout);
    let r = sh.sh("berth images --format '{{.ID'");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.starts_with("template parsing error:"),
        "{}",
        r.stderr
    );
}

#[test]
fn seed_filters() {
    let sh = Shell::new("images-filters");
    let i = sh.seed();
    // Seed: docker images -f since=mongo:3.2
    assert_eq!(
        sh.ok("berth images -f since=mongo:3.2"),
        format!(
            "{HEADER}\n{}",
            table(&[
                ("nginx", "latest", &i.nginx, "5 days ago", "4kB"),
                ("redis", "latest", &i.redis, "10 days ago", "3.5kB"),
                ("redis", "5.0", &i.redis5, "12 days ago", "3kB"),
            ])
        )
    );
    // before=
    assert_eq!(
        sh.ok("berth images -q -f before=mongo:3.2"),
        format!("{}\n", i.ubuntu.short())
    );
    // Seed: docker images -f label=com.example.version=0.1
    assert_eq!(
        sh.ok("berth images -f label=com.example.version=0.1"),
        format!(
            "{HEADER}\n{}",
            table(&[("ubuntu", "18.04", &i.ubuntu, "4 weeks ago", "1kB")])
        )
    );
    // label=KEY (any value), and two filters of different kinds combine (AND).
    assert_eq!(
        sh.ok("berth images -q --filter label=com.example.version"),
        format!("{}\n{}\n", i.redis5.short(), i.ubuntu.short())
    );
    assert_eq!(
        sh.ok("berth images -q -f label=com.example.version -f since=mongo:3.2"),
        format!("{}\n", i.redis5.short())
    );
    // Seed: docker image ls --filter reference="*:latest"
    assert_eq!(
        sh.ok(r#"berth image ls --filter reference="*:latest""#),
        format!(
            "{HEADER}\n{}",
            table(&[
                ("nginx", "latest", &i.nginx, "5 days ago", "4kB"),
                ("redis", "latest", &i.redis, "10 days ago", "3.5kB"),
            ])
        )
    );
    // Two reference filters: either matches.
    assert_eq!(
        sh.ok("berth images -q -f reference=mongo -f reference='ub*'"),
        format!("{}\n{}\n", i.mongo.short(), i.ubuntu.short())
    );
    // dangling=false: tagged images only.
    assert_eq!(
        sh.ok("berth images -q -f dangling=false").lines().count(),
        5
    );
    // Errors, worded and coded like Docker.
    let r = sh.sh("berth images -f bogus=1");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error response from daemon: Invalid filter 'bogus'\n")
    );
    let r = sh.sh("berth images -f dangling=maybe");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            1,
            "Error response from daemon: Invalid filter 'dangling=[maybe]'\n"
        )
    );
    let r = sh.sh("berth images -f before=nosuch");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            1,
            "Error response from daemon: No such image: nosuch:latest\n"
        )
    );
    let r = sh.sh("berth images -f nonsense");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("bad format of filter (expected name=value)"),
        "{}",
        r.stderr
    );
}

#[test]
fn seed_dangling() {
    let sh = Shell::new("images-dangling");
    let i = sh.seed();
    let d = sh.dangle();
    // Seed: docker images -f dangling=true
    let expected = format!(
        "{HEADER}\n{}",
        table(&[("<none>", "<none>", d, "2 weeks ago", "5kB")])
    );
    assert_eq!(sh.ok("berth images -f dangling=true"), expected);
    assert_eq!(sh.ok("berth image ls --filter dangling=true"), expected);
    // The full listing shows it too, in creation order.
    let all = sh.ok("berth images -q");
    assert_eq!(
        all,
        [
            &i.nginx, &i.redis, &i.redis5, d, &i.mongo, &i.mongo, &i.ubuntu
        ]
        .iter()
        .map(|b| format!("{}\n", b.short()))
        .collect::<String>()
    );
    // mongo now has two tags and shows twice.
    assert_eq!(
        sh.ok("berth images mongo:3.2 --format '{{.ID}} {{.Repository}}:{{.Tag}}'"),
        format!("{} mongo:3.2\n", i.mongo.short())
    );
    assert_eq!(
        sh.ok("berth images app --format '{{.ID}} {{.Repository}}:{{.Tag}}'"),
        format!("{} app:1.0\n", i.mongo.short())
    );
    // Seed: docker rmi $(docker images -q -f dangling=true)
    assert_eq!(
        sh.ok("berth rmi $(berth images -q -f dangling=true)"),
        format!("Deleted: {}\nDeleted: {}\n", d.id, d.diff_id)
    );
    assert_eq!(
        sh.ok("berth images -f dangling=true"),
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    );
    let hex = &d.diff_id[7..];
    assert!(!sh.path().join("layers").join(hex).exists());
    assert!(
        !sh.path()
            .join("images")
            .join(format!("{}.json", &d.id[7..]))
            .exists()
    );
    assert!(!sh.path().join("blobs/sha256").join(&d.id[7..]).exists());
}

#[test]
fn seed_image_rm() {
    let sh = Shell::new("images-rm-seed");
    let i = sh.seed();
    // Seed: docker image rm $(docker image ls -q redis)
    assert_eq!(
        sh.ok("berth image rm $(berth image ls -q redis)"),
        format!(
            "Untagged: redis:latest\nDeleted: {}\nDeleted: {}\nUntagged: redis:5.0\nDeleted: {}\nDeleted: {}\n",
            i.redis.id, i.redis.diff_id, i.redis5.id, i.redis5.diff_id
        )
    );
    // Seed: docker image rm $(docker image ls -q -f before=mongo:3.2)
    assert_eq!(
        sh.ok("berth image rm $(berth image ls -q -f before=mongo:3.2)"),
        format!(
            "Untagged: ubuntu:18.04\nDeleted: {}\nDeleted: {}\n",
            i.ubuntu.id, i.ubuntu.diff_id
        )
    );
    assert_eq!(
        sh.ok("berth images -q"),
        format!("{}\n{}\n", i.nginx.short(), i.mongo.short())
    );
    // Seed: docker image rm $(docker image ls -q) -f
    let out = sh.ok("berth image rm $(berth image ls -q) -f");
    assert!(out.contains(&format!("Deleted: {}", i.nginx.id)), "{out}");
    assert!(out.contains(&format!("Deleted: {}", i.mongo.id)), "{out}");
    assert_eq!(sh.ok("berth images -q"), "");
    // Nothing left behind in the store.
    for dir in ["layers", "images"] {
        let left: Vec<_> = std::fs::read_dir(sh.path().join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
}

#[test]
fn rmi_rules() {
    let sh = Shell::new("images-rmi");
    let i = sh.seed();
    sh.ok("berth tag redis:latest myredis:1");
    sh.ok("berth tag redis myredis:2");
    // By ID with several tags: refused without -f (Docker's conflict, exit 1).
    let r = sh.sh(&format!("berth rmi {}", i.redis.short()));
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "Error response from daemon: conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories\n",
            i.redis.short()
        )
    );
    // Removing one tag of a multi-tag image only untags.
    assert_eq!(sh.ok("berth rmi myredis:1"), "Untagged: myredis:1\n");
    assert!(
        sh.path()
            .join("layers")
            .join(&i.redis.diff_id[7..])
            .exists()
    );
    // A unique ID prefix works; -f removes every tag.
    assert_eq!(
        sh.ok(&format!("berth image rm -f {}", &i.redis.id[7..11])),
        format!(
            "Untagged: myredis:2\nUntagged: redis:latest\nDeleted: {}\nDeleted: {}\n",
            i.redis.id, i.redis.diff_id
        )
    );
    // Partial failure: what can be removed is, each error reported, exit 1.
    let r = sh.sh("berth rmi nosuch mongo:3.2 redis:nope");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        format!(
            "Untagged: mongo:3.2\nDeleted: {}\nDeleted: {}\n",
            i.mongo.id, i.mongo.diff_id
        )
    );
    assert_eq!(
        r.stderr,
        "Error response from daemon: No such image: nosuch:latest\nError response from daemon: No such image: redis:nope\n"
    );
    // -f with only missing images: errors printed, exit 0 (Docker's behaviour).
    let r = sh.sh("berth rmi -f nosuch");
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr,
        "Error response from daemon: No such image: nosuch:latest\n"
    );
    // By full ID and by sha256: prefix.
    assert_eq!(
        sh.ok(&format!("berth rmi {}", i.nginx.id)),
        format!(
            "Untagged: nginx:latest\nDeleted: {}\nDeleted: {}\n",
            i.nginx.id, i.nginx.diff_id
        )
    );
    assert_eq!(
        sh.ok(&format!("berth rmi sha256:{}", &i.ubuntu.id[7..20])),
        format!(
            "Untagged: ubuntu:18.04\nDeleted: {}\nDeleted: {}\n",
            i.ubuntu.id, i.ubuntu.diff_id
        )
    );
    let r = sh.sh("berth rmi");
    assert_ne!(r.code, 0);
}

#[test]
fn rmi_by_digest_and_shared_layers() {
    fixtures();
    let root = TestRoot::new("images-rmi-shared");
    let busybox = format!("{ANON}/busybox:latest");
    let multilayer = format!("{ANON}/multilayer:latest");
    root.ok(&["pull", "-q", &busybox]);
    root.ok(&["pull", "-q", &multilayer]);
    let layers = |root: &TestRoot| std::fs::read_dir(root.path.join("layers")).unwrap().count();
    assert_eq!(layers(&root), 5);
    // busybox's only layer is multilayer's first: removing busybox keeps it.
    let out = root.ok(&["rmi", &busybox]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], format!("Untagged: {busybox}"));
    assert!(
        lines[1].starts_with(&format!("Untagged: {ANON}/busybox@sha256:")),
        "{out}"
    );
    assert!(lines[2].starts_with("Deleted: sha256:"), "{out}");
    assert_eq!(layers(&root), 5);
    // By digest: the digest reference goes, the tag stays.
    let digest_ref = root
        .ok(&[
            "images",
            "--format",
            "{{.Repository}}@{{.Digest}}",
            "--digests",
            &format!("{ANON}/multilayer"),
        ])
        .trim()
        .to_string();
    assert_eq!(
        root.ok(&["rmi", &digest_ref]),
        format!("Untagged: {digest_ref}\n")
    );
    assert_eq!(
        root.ok(&[
            "images",
            "--format",
            "{{.Tag}} {{.Digest}}",
            "--digests",
            &format!("{ANON}/multilayer")
        ]),
        "latest <none>\n"
    );
    // Removing the last image deletes its five layers, printed as chain IDs, top first.
    let out = root.ok(&["rmi", &multilayer]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Deleted: ")).count(),
        6,
        "{out}"
    );
    assert_eq!(layers(&root), 0);
    assert_eq!(
        std::fs::read_dir(root.path.join("blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "blobs left behind"
    );
}

#[test]
fn tag_forms() {
    let sh = Shell::new("images-tag");
    let i = sh.seed();
    // Seed: docker tag ubuntu:latest myubuntu:latest (here from ubuntu:18.04), by ID, and into
    // another registry's namespace.
    sh.ok("berth tag ubuntu:18.04 myubuntu:latest");
    sh.ok(&format!(
        "berth image tag {} hyang/test:latest",
        i.ubuntu.short()
    ));
    sh.ok("berth tag myubuntu localhost:5000/team/ubuntu:v1");
    assert_eq!(
        sh.ok("berth images --format '{{.Repository}}:{{.Tag}}' -f reference='*ubuntu*' -f reference='*/*'"),
        "hyang/test:latest\nmyubuntu:latest\nubuntu:18.04\n"
    );
    assert_eq!(
        sh.ok("berth images -q localhost:5000/team/ubuntu:v1"),
        format!("{}\n", i.ubuntu.short())
    );
    // Retagging moves the tag; the old image keeps its other tag.
    sh.ok("berth tag nginx myubuntu");
    assert_eq!(
        sh.ok("berth images -q myubuntu"),
        format!("{}\n", i.nginx.short())
    );
    let r = sh.sh("berth tag nosuch x");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            1,
            "Error response from daemon: No such image: nosuch:latest\n"
        )
    );
    let r = sh.sh("berth tag nginx BAD");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error parsing reference: \"BAD\" is not a valid repository/tag: invalid reference format: repository name (library/BAD) must be lowercase\n"
    );
}

#[test]
fn prune_dangling_and_all() {
    let sh = Shell::new("images-prune");
    let i = sh.seed();
    let d = sh.dangle();
    // Without -f it asks; anything but y/yes keeps everything.
    let r = sh.sh_input("berth image prune", "n\n");
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] Total reclaimed space: 0B\n"
    );
    assert!(sh.ok("berth images -q").contains(d.short()));
    let r = sh.sh_input("berth image prune", "y\n");
    assert_eq!(
        r.stdout,
        format!(
            "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] Deleted Images:\ndeleted: {}\ndeleted: {}\n\nTotal reclaimed space: 5kB\n",
            d.id, d.diff_id
        )
    );
    assert_eq!(sh.ok("berth image prune -f"), "Total reclaimed space: 0B\n");
    // until= and label= narrow -a.
    assert_eq!(
        sh.ok("berth image prune -a -f --filter until=480h --filter label=com.example.version"),
        format!(
            "Deleted Images:\nuntagged: ubuntu:18.04\ndeleted: {}\ndeleted: {}\n\nTotal reclaimed space: 1kB\n",
            i.ubuntu.id, i.ubuntu.diff_id
        )
    );
    let out = sh.ok("berth image prune -af --filter label!=com.example.version");
    assert!(out.ends_with("Total reclaimed space: 9.5kB\n"), "{out}");
    assert_eq!(sh.ok("berth images -q"), format!("{}\n", i.redis5.short()));
    let r = sh.sh("berth image prune -f --filter bogus=1");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error response from daemon: Invalid filter 'bogus'\n")
    );
}

#[test]
fn inspect_documents() {
    let sh = Shell::new("images-inspect");
    let i = sh.seed();
    // Seed: docker inspect -f {{".Architecture"}} ubuntu:18.04
    assert_eq!(
        sh.ok(r#"berth inspect -f {{".Architecture"}} ubuntu:18.04"#),
        "amd64\n"
    );
    assert_eq!(
        sh.ok("berth image inspect --format '{{.Os}}/{{.Architecture}}' ubuntu:18.04"),
        "linux/amd64\n"
    );
    assert_eq!(
        sh.ok("berth image inspect -f '{{index .Config.Labels \"com.example.version\"}} {{json .Config.Cmd}} {{.Size}}' ubuntu:18.04"),
        "0.1 [\"sh\"] 1000\n"
    );
    let out = sh.ok("berth image inspect redis:5.0");
    assert!(out.starts_with("[\n    {\n        \"Id\": \""), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let doc = &v[0];
    assert_eq!(doc["Id"], i.redis5.id);
    assert_eq!(doc["RepoTags"], serde_json::json!(["redis:5.0"]));
    assert_eq!(doc["RepoDigests"], serde_json::json!([]));
    assert_eq!(doc["Parent"], "");
    assert_eq!(doc["Comment"], "");
    assert_eq!(doc["Author"], "");
    assert_eq!(doc["Architecture"], "amd64");
    assert_eq!(doc["Os"], "linux");
    assert_eq!(doc["Size"], 3000);
    assert_eq!(doc["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(doc["Config"]["Env"], serde_json::json!(["PATH=/bin"]));
    assert_eq!(doc["Config"]["Entrypoint"], serde_json::Value::Null);
    assert_eq!(doc["Config"]["WorkingDir"], "");
    assert_eq!(doc["Config"]["User"], "");
    assert_eq!(doc["Config"]["Labels"]["com.example.version"], "0.2");
    assert_eq!(doc["RootFS"]["Type"], "layers");
    assert_eq!(
        doc["RootFS"]["Layers"],
        serde_json::json!([i.redis5.diff_id])
    );
    assert!(doc["Created"].as_str().unwrap().ends_with('Z'));
    // `tag` set LastTagTime (Docker sets it on tag and pull).
    let tagged = doc["Metadata"]["LastTagTime"].as_str().unwrap();
    assert!(
        tagged.starts_with("20") && tagged.ends_with('Z'),
        "{tagged}"
    );
    // Field order follows Docker's.
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(keys.contains(&"GraphDriver"));
    let pos = |k: &str| out.find(&format!("\"{k}\":")).unwrap();
    assert!(
        pos("Id") < pos("RepoTags")
            && pos("Config") < pos("Architecture")
            && pos("RootFS") < pos("Metadata")
    );
    // Several names; a missing one: found ones printed, then the error, exit 1.
    let r = sh.sh("berth image inspect -f '{{.Id}}' nginx nosuch");
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, format!("{}\n", i.nginx.id));
    assert_eq!(
        r.stderr,
        "Error response from daemon: no such image: nosuch: No such image: nosuch:latest\n"
    );
    let r = sh.sh("berth inspect nosuch");
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (1, "[]\n", "Error: No such object: nosuch\n")
    );
    let r = sh.sh("berth inspect -f '{{.Nope}}' nginx");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.starts_with("template parsing error"),
        "{}",
        r.stderr
    );
}

#[test]
fn history_columns() {
    let sh = Shell::new("images-history");
    let i = sh.seed();
    let out = sh.ok("berth history nginx");
    assert_eq!(
        out,
        format!(
            "IMAGE          CREATED      CREATED BY{}SIZE      COMMENT\n\
             {}   5 days ago   {:<45}0B        \n\
             <missing>      5 days ago   {:<45}4kB       test\n",
            " ".repeat(35),
            i.nginx.short(),
            "/bin/sh -c #(nop)  CMD [\"sh\"]",
            "/bin/sh -c #(nop) ADD file:nginx.txt in / "
        )
    );
    let out = sh.ok("berth image history --no-trunc -H=false ubuntu:18.04");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED AT"),
        "{out}"
    );
    assert!(lines[1].starts_with(&i.ubuntu.id), "{out}");
    assert!(
        lines[2].contains("/bin/sh -c #(nop) ADD file:ubuntu.txt in /    1000"),
        "{out}"
    );
    assert!(lines[2].contains("Z   "), "{out}");
    assert_eq!(
        sh.ok("berth history -q mongo:3.2"),
        format!("{}\n<missing>\n", i.mongo.short())
    );
    assert_eq!(
        sh.ok("berth history --format '{{.ID}}|{{.Size}}|{{.Comment}}' mongo:3.2"),
        format!("{}|0B|\n<missing>|2kB|test\n", i.mongo.short())
    );
    // Long commands are cut at 45 characters like Docker's.
    sh.ok(&format!("berth pull -q {ANON}/nginx:latest"));
    let out = sh.ok(&format!("berth history {ANON}/nginx"));
    assert!(
        out.contains("   debootstrap --variant=minbase --include=ngin…   "),
        "{out}"
    );
    let r = sh.sh("berth history nosuch");
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            1,
            "Error response from daemon: No such image: nosuch:latest\n"
        )
    );
}

#[test]
fn system_df_counts_shared_layers_once() {
    fixtures();
    let root = TestRoot::new("images-df");
    assert_eq!(
        root.ok(&["system", "df"]),
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
         Images          0         0         0B        0B\n\
         Containers      0         0         0B        0B\n\
         Local Volumes   0         0         0B        0B\n\
         Build Cache     0         0         0B        0B\n"
    );
    root.ok(&["pull", "-q", &format!("{ANON}/busybox:latest")]);
    root.ok(&["pull", "-q", &format!("{ANON}/multilayer:latest")]);
    let size = |tag: &str| -> u64 {
        let out = root.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Size}}",
            &format!("{ANON}/{tag}"),
        ]);
        out.trim().parse().unwrap()
    };
    let (busybox, multilayer) = (size("busybox"), size("multilayer"));
    // The busybox layer is shared: the total is multilayer's size, not the sum.
    let total = berth::cli::format::human_size(multilayer, 4);
    let out = root.ok(&["system", "df"]);
    let images_line = out.lines().nth(1).unwrap();
    let cols: Vec<&str> = images_line
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cols,
        [
            "Images",
            "2",
            "0",
            total.as_str(),
            &format!("{total} (100%)")
        ],
        "{out}"
    );
    let out = root.ok(&["system", "df", "-v"]);
    assert!(
        out.starts_with(
            "Images space usage:\n\nREPOSITORY                  TAG       IMAGE ID       CREATED"
        ),
        "{out}"
    );
    assert!(
        out.contains("SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\n"),
        "{out}"
    );
    let shared = berth::cli::format::human_size(busybox, 4);
    let unique = berth::cli::format::human_size(multilayer - busybox, 4);
    let ml = out.lines().find(|l| l.contains("/multilayer")).unwrap();
    assert!(
        ml.contains(&format!("   {shared}   "))
            && ml.contains(&format!("   {unique}   "))
            && ml.ends_with("   0"),
        "{ml}"
    );
    assert!(out.contains("\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES\n"), "{out}");
    assert!(out.contains("\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n\nBuild cache usage: 0B\n"), "{out}");
}

#[test]
fn listing_index_is_rebuilt_for_old_stores() {
    let sh = Shell::new("images-migrate");
    let i = sh.seed();
    let before = sh.ok("berth images");
    // A store written before the summaries existed: only `tags` in repositories.json.
    let path = sh.path().join("repositories.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(v["images"][&i.nginx.id]["layers"].is_array());
    v.as_object_mut().unwrap().remove("images");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(sh.ok("berth images"), before);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(v["images"][&i.nginx.id].is_object());
}

#[test]
fn login_logout_docker_config() {
    fixtures();
    let root = TestRoot::new("images-login");
    let config = root.docker_config().join("config.json");
    std::fs::create_dir_all(root.docker_config()).unwrap();
    std::fs::write(
        &config,
        r#"{"auths":{"other.example":{"auth":"eDp5"}},"psFormat":"table {{.ID}}"}"#,
    )
    .unwrap();
    let before = std::fs::read(&config).unwrap();
    // Wrong password: Docker's message, exit 1, the file unchanged.
    let mut cmd = root.berth(&["login", "-u", USER, "--password-stdin", BASIC]);
    let out = run_with_input(&mut cmd, "wrong\n");
    assert_eq!(out.0, 1);
    assert_eq!(
        out.2,
        format!(
            "Error response from daemon: login attempt to http://{BASIC}/v2/ failed with status: 401 Unauthorized\n"
        )
    );
    assert_eq!(std::fs::read(&config).unwrap(), before);
    let mut cmd = root.berth(&["login", "-u", USER, "--password-stdin", TOKEN]);
    let out = run_with_input(&mut cmd, "wrong\n");
    assert_eq!(out.0, 1);
    assert!(
        out.2.starts_with(&format!(
            "Error response from daemon: Get \"http://{TOKEN}/v2/\": unauthorized"
        )),
        "{}",
        out.2
    );
    // Right password: stored in Docker's format, other keys kept, mode 0600.
    let mut cmd = root.berth(&["login", "-u", USER, "--password-stdin", BASIC]);
    let out = run_with_input(&mut cmd, &format!("{PASSWORD}\n"));
    assert_eq!(
        (out.0, out.1.as_str()),
        (0, "Login Succeeded\n"),
        "{}",
        out.2
    );
    assert!(
        out.2
            .contains("WARNING! Your credentials are stored unencrypted in"),
        "{}",
        out.2
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(v["auths"][BASIC]["auth"], "YmVydGg6YmVydGhwYXNz");
    assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
    assert_eq!(v["psFormat"], "table {{.ID}}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("{\n\t\"auths\": {\n"), "{text}");
    // The stored login is what pull uses.
    root.ok(&["pull", "-q", &format!("{BASIC}/busybox:latest")]);
    // -p works, with Docker's warning; the token registry's Bearer flow.
    let out = root.run(&["login", "-u", USER, "-p", PASSWORD, TOKEN]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        )
    );
    root.ok(&["pull", "-q", &format!("{TOKEN}/private/busybox:latest")]);
    // Flag errors.
    let e = root.fails(&["login", "--password-stdin", BASIC], 1);
    assert_eq!(e, "Must provide --username with --password-stdin\n");
    let e = root.fails(
        &["login", "-p", "x", "--password-stdin", "-u", "u", BASIC],
        1,
    );
    assert_eq!(
        e,
        "--password and --password-stdin are mutually exclusive\n"
    );
    // logout removes only that entry.
    assert_eq!(
        root.ok(&["logout", BASIC]),
        format!("Removing login credentials for {BASIC}\n")
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(v["auths"].get(BASIC).is_none());
    assert!(v["auths"].get(TOKEN).is_some());
    assert_eq!(v["psFormat"], "table {{.ID}}");
    let e = root.fails(&["pull", "-q", &format!("{BASIC}/busybox:latest")], 1);
    assert!(e.contains("no basic auth credentials"), "{e}");
}

fn run_with_input(cmd: &mut Command, input: &str) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn images_used_by_containers() {
    let sh = Shell::new("images-containers");
    let i = sh.seed();
    sh.ok("berth create --name user1 nginx >/dev/null");
    let cid = sh.ok("berth ps -aq").trim().to_string();
    assert_eq!(cid.len(), 12);
    // By name: the only reference of an image a container uses must be forced.
    let r = sh.sh("berth rmi nginx");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "Error response from daemon: conflict: unable to remove repository reference \"nginx\" (must force) - container {cid} is using its referenced image {}\n",
            i.nginx.short()
        )
    );
    // By ID: a stopped container's image must be forced.
    let r = sh.sh(&format!("berth rmi {}", i.nginx.short()));
    assert_eq!(
        r.stderr,
        format!(
            "Error response from daemon: conflict: unable to delete {} (must be forced) - image is being used by stopped container {cid}\n",
            i.nginx.short()
        )
    );
    // Prune -a skips it; df counts the container and marks the image active.
    let out = sh.ok("berth image prune -af --filter label=nomatch");
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let df = sh.ok("berth system df");
    assert!(
        df.contains("\nImages          5         1         "),
        "{df}"
    );
    assert!(
        df.contains("\nContainers      1         0         "),
        "{df}"
    );
    let df = sh.ok("berth system df -v");
    let row = df
        .lines()
        .find(|l| l.starts_with(&cid))
        .unwrap_or_else(|| panic!("{df}"));
    assert!(
        row.contains("   nginx   ") && row.contains("   Created   ") && row.ends_with("   user1"),
        "{row}"
    );
    let image_row = df.lines().find(|l| l.starts_with("nginx ")).unwrap();
    assert!(image_row.ends_with("   1"), "{image_row}");
    // -f deletes the image but keeps the layer the container runs on, until the container
    // is gone and a prune sweeps it.
    let layer = sh.path().join("layers").join(&i.nginx.diff_id[7..]);
    assert_eq!(
        sh.ok("berth rmi -f nginx"),
        format!("Untagged: nginx:latest\nDeleted: {}\n", i.nginx.id)
    );
    assert!(layer.join("diff").is_dir());
    sh.ok("berth rm user1");
    assert_eq!(
        sh.ok("berth image prune -f"),
        "Total reclaimed space: 4kB\n"
    );
    assert!(!layer.exists());
}

#[test]
fn crash_after_untag_leaves_sweepable_garbage() {
    let sh = Shell::new("images-crash");
    let i = sh.seed();
    // An rmi killed right after its index write: the image is gone from the index, its record,
    // config blob and layer are still on disk.
    let path = sh.path().join("repositories.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["tags"]
        .as_object_mut()
        .unwrap()
        .remove("docker.io/library/nginx:latest");
    v["images"].as_object_mut().unwrap().remove(&i.nginx.id);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let record = sh
        .path()
        .join("images")
        .join(format!("{}.json", &i.nginx.id[7..]));
    let layer = sh.path().join("layers").join(&i.nginx.diff_id[7..]);
    assert!(record.exists() && layer.exists());
    // The store stays usable: listing, lookups and removals of other images work.
    assert!(!sh.ok("berth images -q").contains(i.nginx.short()));
    let r = sh.sh("berth rmi nginx");
    assert_eq!(
        r.stderr,
        "Error response from daemon: No such image: nginx:latest\n"
    );
    sh.ok("berth rmi mongo:3.2");
    // The next prune sweeps the leftovers.
    assert_eq!(
        sh.ok("berth image prune -f"),
        "Total reclaimed space: 4kB\n"
    );
    assert!(!record.exists() && !layer.exists());
    assert!(
        !sh.path()
            .join("blobs/sha256")
            .join(&i.nginx.id[7..])
            .exists()
    );
    assert_eq!(sh.ok("berth images -q").lines().count(), 3);
}

#[test]
fn login_prompts_on_a_terminal() {
    use common::pty::PtySession;
    use std::time::Duration;
    fixtures();
    let root = TestRoot::new("images-login-tty");
    let t = Duration::from_secs(20);
    let mut s = PtySession::spawn(root.berth(&["login", BASIC]), 24, 80);
    s.expect("Username: ", t);
    s.send(&format!("{USER}\r"));
    s.expect("Password: ", t);
    s.send(&format!("{PASSWORD}\r"));
    s.expect("Login Succeeded", t);
    assert_eq!(s.wait(t), 0);
    // The password was not echoed.
    assert!(!s.transcript().contains(PASSWORD), "{}", s.transcript());
    // Next time the stored user is offered as the default.
    let mut s = PtySession::spawn(root.berth(&["login", BASIC]), 24, 80);
    s.expect(&format!("Username ({USER}): "), t);
    s.send("\r");
    s.expect("Password: ", t);
    s.send("wrong\r");
    s.expect("401 Unauthorized", t);
    assert_eq!(s.wait(t), 1);
}
