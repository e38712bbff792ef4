//! export, diff, commit, import, save/load, push and search against the fixture registries, real
//! containers and skopeo (when installed). Docker interop lives in tests/interop.sh.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::store::image_id;
use common::{ANON, BASIC, PASSWORD, TOKEN, TestRoot, USER, fixtures};

const BUSYBOX_LAYER: &str = "/var/cache/berth-fixtures/images/busybox-v1/layers/busybox.tar";

type Listing = BTreeMap<String, (char, u32, u64, u64, String)>;

/// name → (type, mode, uid, gid, link target) of every entry of a tar archive.
fn listing(bytes: &[u8]) -> Listing {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Fifo => 'p',
            _ => 'f',
        };
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.insert(
            name,
            (
                kind,
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap(),
                link,
            ),
        );
    }
    out
}

fn config_of(root: &TestRoot, id: &str) -> serde_json::Value {
    let hex = id.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&std::fs::read(root.path.join("blobs/sha256").join(hex)).unwrap())
        .unwrap()
}

fn has_tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Nothing named in the store: no tags, images or layers.
fn assert_store_empty(root: &TestRoot) {
    let tags = std::fs::read(root.path.join("repositories.json"))
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap()["tags"].clone())
        .unwrap_or(serde_json::json!({}));
    assert_eq!(tags, serde_json::json!({}), "tags were written");
    for dir in ["images", "layers", "blobs/sha256", "tmp"] {
        let n = std::fs::read_dir(root.path.join(dir))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(n, 0, "{dir}/ is not empty");
    }
}

const CHANGES: &str =
    "touch /new; rm /etc/group; echo x >> /etc/hostname; mkdir -p /a/b; echo hi > /a/b/c";

fn changed_container(root: &TestRoot, name: &str) {
    let image = format!("{ANON}/busybox:latest");
    root.ok(&["pull", "-q", &image]);
    root.ok(&["run", "--name", name, &image, "sh", "-c", CHANGES]);
}

#[test]
fn diff_matches_docker() {
    fixtures();
    let root = TestRoot::new("xfer-diff");
    changed_container(&root, "d1");
    // `docker diff` after the same steps, in path order (Docker's own order varies run to run).
    let out = root.ok(&["diff", "d1"]);
    assert_eq!(
        out, "A /a\nA /a/b\nA /a/b/c\nC /etc\nD /etc/group\nA /new\n",
        "diff output"
    );
    // An unchanged container has no changes, even though the runtime made mountpoints.
    root.ok(&[
        "run",
        "--name",
        "d2",
        &format!("{ANON}/busybox:latest"),
        "true",
    ]);
    assert_eq!(root.ok(&["container", "diff", "d2"]), "");
    // A directory removed and re-created: overlay makes it opaque; Docker reports the lower
    // entries it hides as deleted. Committed, only the new contents remain.
    root.ok(&[
        "run",
        "--name",
        "d3",
        &format!("{ANON}/busybox:latest"),
        "sh",
        "-c",
        "rm -rf /var; mkdir /var; echo y > /var/x",
    ]);
    assert_eq!(
        root.ok(&["diff", "d3"]),
        "C /var\nD /var/run\nD /var/tmp\nA /var/x\n"
    );
    root.ok(&["commit", "d3", "opaque:1"]);
    assert_eq!(
        root.ok(&["run", "--rm", "opaque:1", "find", "/var"]),
        "/var\n/var/x\n"
    );
    let err = root.fails(&["diff", "nosuch"], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

/// Deeper changes in a bigger image: every directory holding a change is reported, hardlinks,
/// fifos and owners count, a re-created directory hides nothing that was not there. The
/// expected lines are `docker diff | sort` after the same steps (dockerd 20.10, overlay2).
#[test]
fn diff_of_nested_changes_matches_docker() {
    fixtures();
    let root = TestRoot::new("xfer-diff-deb");
    let image = format!("{ANON}/debian:bookworm");
    root.ok(&["pull", "-q", &image]);
    root.ok(&[
        "run",
        "--name",
        "n1",
        &image,
        "bash",
        "-c",
        "echo a > /root/f; ln /root/f /root/g; rm -rf /usr/share/doc; mkdir -p /usr/share/doc/x; \
         rm /etc/issue; mkfifo /tmp/ff; chown 1000:1000 /tmp/ff",
    ]);
    let mut got: Vec<String> = root
        .ok(&["diff", "n1"])
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    let want = [
        "A /root/f",
        "A /root/g",
        "A /tmp/ff",
        "A /usr/share/doc/x",
        "C /etc",
        "C /root",
        "C /tmp",
        "C /usr",
        "C /usr/share",
        "C /usr/share/doc",
        "D /etc/issue",
    ];
    assert_eq!(got, want);
}

#[test]
fn export_is_image_plus_init_layer_plus_changes() {
    fixtures();
    let root = TestRoot::new("xfer-export");
    changed_container(&root, "e1");
    let out = root.dir.join("e1.tar");
    root.ok(&["export", "-o", out.to_str().unwrap(), "e1"]);
    let got = listing(&std::fs::read(&out).unwrap());

    let mut want = listing(&std::fs::read(BUSYBOX_LAYER).unwrap());
    // Docker's init layer.
    for (name, kind) in [
        (".dockerenv", 'f'),
        ("dev", 'd'),
        ("dev/console", 'f'),
        ("dev/pts", 'd'),
        ("dev/shm", 'd'),
        ("etc/hostname", 'f'),
        ("etc/hosts", 'f'),
        ("etc/resolv.conf", 'f'),
        ("proc", 'd'),
        ("sys", 'd'),
    ] {
        want.insert(name.into(), (kind, 0o755, 0, 0, String::new()));
    }
    want.insert("etc/mtab".into(), ('l', 0o777, 0, 0, "/proc/mounts".into()));
    // The container's changes.
    want.remove("etc/group");
    want.insert("new".into(), ('f', 0o644, 0, 0, String::new()));
    want.insert("a".into(), ('d', 0o755, 0, 0, String::new()));
    want.insert("a/b".into(), ('d', 0o755, 0, 0, String::new()));
    want.insert("a/b/c".into(), ('f', 0o644, 0, 0, String::new()));
    assert_eq!(got, want);

    // To stdout too (a pipe), the same entries.
    let piped = root.berth(&["export", "e1"]).output().unwrap();
    assert!(piped.status.success());
    assert_eq!(listing(&piped.stdout), want);
    // A running container exports as well.
    root.ok(&[
        "run",
        "-d",
        "--name",
        "e2",
        &format!("{ANON}/busybox:latest"),
        "sh",
        "-c",
        "touch /live; sleep 30",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // (through its own root mount, to a path relative to the working directory)
    let live = root
        .berth(&["export", "-o", "live.tar", "e2"])
        .current_dir(&root.dir)
        .output()
        .unwrap();
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    let running = listing(&std::fs::read(root.dir.join("live.tar")).unwrap());
    assert!(running.contains_key("live"));
    // The same entries once it has stopped.
    root.ok(&["stop", "-t", "0", "e2"]);
    let stopped = root.berth(&["export", "e2"]).output().unwrap();
    assert_eq!(listing(&stopped.stdout), running);
    root.ok(&["rm", "-f", "e2"]);
}

#[test]
fn export_and_save_refuse_a_terminal() {
    fixtures();
    let root = TestRoot::new("xfer-tty");
    changed_container(&root, "t1");
    let mut master = 0;
    let mut slave = 0;
    // SAFETY: openpty fills two descriptors.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0);
    for args in [
        &["export", "t1"][..],
        &["save", &format!("{ANON}/busybox:latest")][..],
    ] {
        // SAFETY: dup of a descriptor we own.
        let fd = unsafe { libc::dup(slave) };
        // SAFETY: `fd` is the new descriptor dup returned, owned by nothing else yet.
        let stdout = unsafe { <Stdio as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let out = root.berth(args).stdout(stdout).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
        );
    }
    // SAFETY: the pty's two descriptors, opened by this test and closed once, after every use.
    unsafe {
        libc::close(master);
        libc::close(slave);
    }
}

#[test]
fn commit_then_run_sees_the_changes() {
    fixtures();
    let root = TestRoot::new("xfer-commit");
    changed_container(&root, "k1");
    let out = root.ok(&[
        "commit",
        "-m",
        "add a new file",
        "-a",
        "hyang",
        "k1",
        "test:0.1",
    ]);
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    assert_eq!(image_id(&root, "docker.io/library/test:0.1"), id);
    let seen = root.ok(&[
        "run",
        "--rm",
        "test:0.1",
        "sh",
        "-c",
        "cat /a/b/c; ls /new; test -e /etc/group && echo still-there || echo deleted",
    ]);
    assert_eq!(seen, "hi\n/new\ndeleted\n");
    let config = config_of(&root, id);
    assert_eq!(config["author"], "hyang");
    assert_eq!(config["comment"], "add a new file");
    let history = config["history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["comment"], "add a new file");
    assert_eq!(last["author"], "hyang");
    assert_eq!(last["created_by"], format!("sh -c {CHANGES}"));
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    // Listed, with its history entry and its parent, by the image commands.
    let listed = root.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(
        listed.contains(&format!("test:0.1 {}", &id[7..19])),
        "{listed}"
    );
    let history = root.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "test:0.1",
    ]);
    assert_eq!(
        history.lines().next(),
        Some(format!("sh -c {CHANGES}|add a new file").as_str()),
        "{history}"
    );
    let base = image_id(&root, &format!("{ANON}/busybox:latest"));
    assert_eq!(
        root.ok(&["inspect", "-f", "{{.Parent}}", "test:0.1"])
            .trim(),
        base
    );

    // -c changes, and a commit of a commit.
    root.ok(&["run", "--name", "c2", "test:0.1", "rm", "/new"]);
    let id2 = root.ok(&[
        "commit",
        "-c",
        "ENV FOO=bar",
        "-c",
        "CMD [\"cat\", \"/a/b/c\"]",
        "c2",
        "test:0.2",
    ]);
    let config = config_of(&root, id2.trim());
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("FOO=bar"))
    );
    assert_eq!(root.ok(&["run", "--rm", "test:0.2"]), "hi\n");
    assert_eq!(
        root.ok(&["run", "--rm", "test:0.2", "sh", "-c", "ls /new 2>&1; true"]),
        "ls: /new: No such file or directory\n"
    );
    // A running container is paused for the commit and keeps running.
    root.ok(&[
        "run",
        "-d",
        "--name",
        "c3",
        "test:0.1",
        "sh",
        "-c",
        "echo run > /r; sleep 30",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    root.ok(&["commit", "-p", "c3", "test:0.3"]);
    root.ok(&["commit", "--pause=false", "c3", "test:0.4"]);
    assert_eq!(root.ok(&["run", "--rm", "test:0.3", "cat", "/r"]), "run\n");
    root.ok(&["rm", "-f", "c3"]);

    // Bad input: a removed container, an unknown change.
    // Named so that no container ID can start with it: "c1" would find one by prefix.
    root.ok(&["rm", "k1"]);
    let err = root.fails(&["commit", "k1", "test:gone"], 1);
    assert!(err.contains("No such container: k1"), "{err}");
    let err = root.fails(&["commit", "-c", "FROM x", "c2", "test:bad"], 1);
    assert!(err.contains("FROM is not a valid change command"), "{err}");
}

#[test]
fn save_load_round_trip_and_skopeo() {
    fixtures();
    let root = TestRoot::new("xfer-save");
    for image in ["busybox:latest", "multilayer:latest", "debian:bookworm"] {
        root.ok(&["pull", "-q", &format!("{ANON}/{image}")]);
    }
    let archive = root.dir.join("all.tar");
    let names: Vec<String> = ["busybox:latest", "multilayer:latest", "debian:bookworm"]
        .iter()
        .map(|i| format!("{ANON}/{i}"))
        .collect();
    let mut args = vec!["save", "-o", archive.to_str().unwrap()];
    args.extend(names.iter().map(String::as_str));
    root.ok(&args);
    let entries = listing(&std::fs::read(&archive).unwrap());
    for required in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(entries.contains_key(required), "{required} missing");
    }
    // busybox's layer is shared by multilayer: written once.
    let blobs = entries
        .keys()
        .filter(|k| k.starts_with("blobs/sha256/"))
        .count();
    let manifest: serde_json::Value = {
        let mut a = tar::Archive::new(std::fs::File::open(&archive).unwrap());
        let mut found = None;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str() == Some("manifest.json") {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                found = Some(serde_json::from_str(&s).unwrap());
            }
        }
        found.unwrap()
    };
    let mut layers: Vec<&str> = manifest
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["Layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
        })
        .collect();
    layers.sort();
    layers.dedup();
    assert_eq!(blobs, layers.len() + 3 + 3, "layers + configs + manifests");

    let other = TestRoot::new("xfer-save-load");
    let out = other.ok(&["load", "-i", archive.to_str().unwrap()]);
    for name in &names {
        assert!(out.contains(&format!("Loaded image: {name}\n")), "{out}");
        assert_eq!(image_id(&other, name), image_id(&root, name));
    }
    // The loaded image runs.
    assert_eq!(other.ok(&["run", "--rm", &names[0], "echo", "ok"]), "ok\n");
    // Loading from stdin, again: nothing changes.
    let again = other
        .berth(&["load"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(again.status.success());

    if has_tool("skopeo") {
        let out = Command::new("skopeo")
            .args([
                "inspect",
                &format!("docker-archive:{}:{}", archive.display(), names[0]),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And berth loads what skopeo writes, as docker-archive and as oci-archive.
        // (skopeo rewrites a Docker config when it converts to OCI, so the OCI copy starts from
        // the OCI-manifest tag, whose config is the same.)
        for (kind, file, src) in [
            ("docker-archive", "sk-d.tar", "latest"),
            ("oci-archive", "sk-o.tar", "oci"),
        ] {
            let path = root.dir.join(file);
            let status = Command::new("skopeo")
                .args([
                    "copy",
                    "-q",
                    "--src-tls-verify=false",
                    &format!("docker://{ANON}/multilayer:{src}"),
                    &format!("{kind}:{}:multilayer:latest", path.display()),
                ])
                .status()
                .unwrap();
            assert!(status.success());
            let fresh = TestRoot::new(&format!("xfer-skopeo-{file}"));
            let out = fresh.ok(&["load", "-i", path.to_str().unwrap()]);
            assert_eq!(out, "Loaded image: multilayer:latest\n");
            assert_eq!(
                image_id(&fresh, "docker.io/library/multilayer:latest"),
                image_id(&root, &format!("{ANON}/multilayer:latest"))
            );
            assert_eq!(
                fresh.ok(&["run", "--rm", "multilayer:latest", "cat", "/ml/old-mtime"]),
                // (same file content as the pulled image)
                root.ok(&[
                    "run",
                    "--rm",
                    &format!("{ANON}/multilayer:latest"),
                    "cat",
                    "/ml/old-mtime"
                ])
            );
        }
    }
}

/// Rewrites one member of a tar archive.
type Edit<'a> = &'a dyn Fn(&str, Vec<u8>) -> Option<Vec<u8>>;

fn rewrite_tar(src: &Path, dst: &Path, edit: Edit<'_>) {
    let mut input = tar::Archive::new(std::fs::File::open(src).unwrap());
    let mut out = tar::Builder::new(std::fs::File::create(dst).unwrap());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let Some(data) = edit(&name, data) else {
            continue;
        };
        let mut h = entry.header().clone();
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.append_data(&mut h, &name, data.as_slice()).unwrap();
    }
    out.finish().unwrap();
}

#[test]
fn bad_archives_leave_the_store_alone() {
    fixtures();
    let root = TestRoot::new("xfer-bad");
    root.ok(&["pull", "-q", &format!("{ANON}/busybox:latest")]);
    let good = root.dir.join("good.tar");
    root.ok(&[
        "save",
        "-o",
        good.to_str().unwrap(),
        &format!("{ANON}/busybox:latest"),
    ]);
    let bytes = std::fs::read(&good).unwrap();

    type Make<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Make<'_>)> = vec![
        (
            "truncated",
            Box::new(|p: &Path| std::fs::write(p, &bytes[..bytes.len() / 2]).unwrap()),
        ),
        (
            "not a tar",
            Box::new(|p: &Path| std::fs::write(p, b"hello, world\n").unwrap()),
        ),
        (
            "missing layer",
            Box::new(|p: &Path| {
                rewrite_tar(&good, p, &|name, data| {
                    (!name.starts_with("blobs/sha256/") || data.len() < 100_000).then_some(data)
                })
            }),
        ),
        (
            "layer digest",
            Box::new(|p: &Path| {
                rewrite_tar(&good, p, &|_, mut data| {
                    if data.len() > 100_000 {
                        // Change one byte of a file's contents (offset well inside the tar).
                        let i = data.len() / 2;
                        data[i] ^= 0x55;
                    }
                    Some(data)
                })
            }),
        ),
        (
            "escaping path",
            Box::new(|p: &Path| {
                let mut b = tar::Builder::new(std::fs::File::create(p).unwrap());
                let mut h = tar::Header::new_gnu();
                h.set_size(1);
                h.set_mode(0o644);
                {
                    let name = b"../../escape";
                    h.as_old_mut().name[..name.len()].copy_from_slice(name);
                }
                h.set_cksum();
                b.append(&h, &b"x"[..]).unwrap();
                b.finish().unwrap();
            }),
        ),
    ];
    for (what, make) in cases {
        let path = root.dir.join("bad.tar");
        make(&path);
        let fresh = TestRoot::new("xfer-bad-load");
        let err = fresh.fails(&["load", "-i", path.to_str().unwrap()], 1);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert_store_empty(&fresh);
        if what == "missing layer" || what == "layer digest" {
            // Valid tars: import would make an image of the archive itself.
            continue;
        }
        let err = fresh.fails(&["import", path.to_str().unwrap(), "bad:1"], 1);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        if what == "escaping path" {
            assert!(err.contains("refusing unsafe tar entry"), "{err}");
        }
        assert_store_empty(&fresh);
    }
}

/// Serves `body` for GET `path` (404 otherwise), `count` times, on a loopback port.
fn serve(path: &'static str, body: Vec<u8>, count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let target = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, data) = if target == path || target.starts_with(&format!("{path}?")) {
                ("200 OK", body.clone())
            } else {
                ("404 Not Found", b"not found".to_vec())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
                data.len()
            );
            let _ = stream.write_all(&data);
        }
    });
    port
}

#[test]
fn import_from_file_stdin_and_url() {
    fixtures();
    let root = TestRoot::new("xfer-import");
    let layer = std::fs::read(BUSYBOX_LAYER).unwrap();
    // gzip it, like the seed's ubuntu-…-minimal.tar.gz
    let gz = root.dir.join("rootfs.tar.gz");
    {
        let mut child = Command::new("gzip")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&gz).unwrap())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&layer).unwrap();
        assert!(child.wait().unwrap().success());
    }
    let id = root.ok(&[
        "import",
        "-m",
        "from a file",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV A=b",
        gz.to_str().unwrap(),
        "imp:file",
    ]);
    let config = config_of(&root, id.trim());
    assert_eq!(config["comment"], "from a file");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(config["config"]["Env"], serde_json::json!(["A=b"]));
    assert_eq!(config["history"][0]["comment"], "from a file");
    assert_eq!(root.ok(&["run", "--rm", "imp:file", "echo", "hi"]), "hi\n");

    // The seed's `cat x.tar.gz | berth import - ubuntu:18.04`.
    let out = root
        .berth(&["import", "-", "ubuntu:18.04"])
        .stdin(std::fs::File::open(&gz).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdin_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(image_id(&root, "docker.io/library/ubuntu:18.04"), stdin_id);
    assert_eq!(config_of(&root, &stdin_id)["comment"], "Imported from -");
    // Same layer: one copy.
    assert_eq!(
        std::fs::read_dir(root.path.join("layers")).unwrap().count(),
        1
    );

    // --platform sets the config's platform.
    let arm = root.ok(&[
        "import",
        "--platform",
        "linux/arm64/v8",
        gz.to_str().unwrap(),
        "imp:arm",
    ]);
    let config = config_of(&root, arm.trim());
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["os"], "linux");

    let port = serve("/rootfs.tar", layer, 2);
    let url = format!("http://127.0.0.1:{port}/rootfs.tar");
    root.ok(&["import", &url, "imp:url"]);
    assert_eq!(
        root.ok(&["run", "--rm", "imp:url", "cat", "/etc/passwd"])
            .lines()
            .next(),
        Some("root:x:0:0:root:/root:/bin/sh")
    );
    let err = root.fails(
        &[
            "import",
            &format!("http://127.0.0.1:{port}/missing.tar"),
            "imp:404",
        ],
        1,
    );
    assert!(err.contains("404"), "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn push_to_every_fixture_registry_and_pull_back() {
    fixtures();
    let root = TestRoot::new("xfer-push");
    let unique = format!("xfer-{}", std::process::id());
    changed_container(&root, "p1");
    for registry in [ANON, BASIC, TOKEN] {
        let name = format!("{registry}/{unique}/pushed:v1");
        root.ok(&["commit", "p1", &name]);
        let local_id = image_id(&root, &name);
        if registry != ANON {
            // Without credentials: refused, clearly, in Docker's words.
            let err = root.fails(&["push", &name], 1);
            let want = if registry == BASIC {
                "no basic auth credentials"
            } else {
                "denied: requested access to the resource is denied"
            };
            assert_eq!(err.trim(), want);
            root.login_file(registry, USER, PASSWORD);
        }
        let out = root.ok(&["push", &name]);
        assert!(
            out.starts_with(&format!(
                "The push refers to repository [{registry}/{unique}/pushed]\n"
            )),
            "{out}"
        );
        let last = out.lines().last().unwrap();
        assert!(
            last.starts_with("v1: digest: sha256:") && last.contains(" size: "),
            "{out}"
        );
        // Again: every layer is there already.
        let again = root.ok(&["push", &name]);
        assert!(again.contains(": Layer already exists"), "{again}");

        let fresh = TestRoot::new(&format!("xfer-push-pull-{}", registry.replace(':', "-")));
        if registry != ANON {
            fresh.login_file(registry, USER, PASSWORD);
        }
        fresh.ok(&["pull", "-q", &name]);
        assert_eq!(image_id(&fresh, &name), local_id, "{registry}");
        assert_eq!(fresh.ok(&["run", "--rm", &name, "cat", "/a/b/c"]), "hi\n");
        if has_tool("skopeo") {
            let out = Command::new("skopeo")
                .args([
                    "inspect",
                    "--tls-verify=false",
                    "--creds",
                    &format!("{USER}:{PASSWORD}"),
                    &format!("docker://{name}"),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // A pulled image pushed elsewhere in the same registry: blobs are mounted, and the manifest
    // is the same bytes (same digest).
    let src = format!("{ANON}/busybox:latest");
    let dst = format!("{ANON}/{unique}/copy:latest");
    root.ok(&["commit", "p1", &dst]); // make the tag exist, then point it at busybox
    let tagged = root.path.join("repositories.json");
    let mut repos: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tagged).unwrap()).unwrap();
    repos["tags"][&dst] = repos["tags"][&src].clone();
    std::fs::write(&tagged, serde_json::to_vec(&repos).unwrap()).unwrap();
    let out = root.ok(&["push", &dst]);
    assert!(out.contains(": Mounted from "), "{out}");
    let pulled_digest = {
        let o = Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--format",
                "{{.Digest}}",
                &format!("docker://{src}"),
            ])
            .output();
        o.ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(d) = pulled_digest.filter(|d| !d.is_empty()) {
        assert!(out.contains(&format!("latest: digest: {d} ")), "{out}");
    }

    // -a: every local tag of the repository.
    let all = format!("{ANON}/{unique}/all");
    root.ok(&["commit", "p1", &format!("{all}:one")]);
    root.ok(&["commit", "p1", &format!("{all}:two")]);
    let out = root.ok(&["push", "-a", &all]);
    assert!(
        out.contains("\none: digest: sha256:") && out.contains("\ntwo: digest: sha256:"),
        "{out}"
    );
    let err = root.fails(&["push", "-a", &format!("{all}:one")], 1);
    assert_eq!(err.trim(), "tag can't be used with --all-tags/-a");

    // Unknown image.
    let err = root.fails(&["push", &format!("{ANON}/{unique}/nothing:v1")], 1);
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
}

/// Points `tag` at the image `source` names.
fn retag(root: &TestRoot, source: &str, tag: &str) {
    root.ok(&["tag", source, tag]);
}

#[test]
fn push_a_large_layer_in_chunks_and_keep_the_digest() {
    fixtures();
    let root = TestRoot::new("xfer-push-big");
    let src = format!("{ANON}/debian:bookworm");
    root.ok(&["pull", "-q", &src]);
    let dst = format!("{TOKEN}/xfer-{}/debian:bookworm", std::process::id());
    retag(&root, &src, &dst);
    root.login_file(TOKEN, USER, PASSWORD);
    let out = root.ok(&["push", &dst]);
    assert!(out.contains(": Pushed\n"), "{out}");
    let digest = out
        .lines()
        .last()
        .and_then(|l| l.split("digest: ").nth(1))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    // The manifest went up byte for byte: the digest is the one pulled from :5000.
    let record: serde_json::Value = {
        let id = image_id(&root, &src);
        let hex = id.strip_prefix("sha256:").unwrap().to_string();
        serde_json::from_slice(
            &std::fs::read(root.path.join(format!("images/{hex}.json"))).unwrap(),
        )
        .unwrap()
    };
    let pulled: Vec<String> = record["repo_digests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert!(
        pulled.contains(&format!("{src}@{digest}").replace(":bookworm", "")),
        "{pulled:?} {digest}"
    );
    let fresh = TestRoot::new("xfer-push-big-pull");
    fresh.login_file(TOKEN, USER, PASSWORD);
    fresh.ok(&["pull", "-q", &dst]);
    assert_eq!(image_id(&fresh, &dst), image_id(&root, &src));
}

#[test]
fn search_catalog_and_hub() {
    fixtures();
    let root = TestRoot::new("xfer-search");
    let out = root.ok(&["search", &format!("{ANON}/debi")]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("NAME")
            && header.contains("DESCRIPTION")
            && header.contains("STARS")
            && header.contains("OFFICIAL"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{ANON}/debian "))),
        "{out}"
    );
    let names = root.ok(&["search", "--format", "{{.Name}}", &format!("{ANON}/busy")]);
    assert!(
        names.lines().any(|l| l == format!("{ANON}/busybox")),
        "{names}"
    );

    let hub = serde_json::json!({
        "num_pages": 1, "num_results": 3, "page_size": 25, "page": 1, "query": "nginx",
        "results": [
            {"name": "nginx", "description": "Official build of Nginx.", "star_count": 19000, "is_official": true, "is_automated": false},
            {"name": "bitnami/nginx", "description": "Bitnami container image for NGINX, a very long description that goes on", "star_count": 190, "is_official": false, "is_automated": true},
            {"name": "someone/nginx", "description": "", "star_count": 3, "is_official": false, "is_automated": false}
        ]
    });
    let body = serde_json::to_vec(&hub).unwrap();
    let port = serve("/v1/search", body, 3);
    let env = format!("http://127.0.0.1:{port}/v1/search");
    let run = |args: &[&str]| {
        let out = root
            .berth(args)
            .env("BERTH_HUB_SEARCH_URL", &env)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&["search", "nginx"]);
    assert_eq!(
        out,
        "NAME            DESCRIPTION                                     STARS     OFFICIAL\n\
         nginx           Official build of Nginx.                        19000     [OK]\n\
         bitnami/nginx   Bitnami container image for NGINX, a very lo…   190       \n\
         someone/nginx                                                   3         \n"
    );
    let out = run(&[
        "search",
        "-f",
        "stars=100",
        "-f",
        "is-official=false",
        "--no-trunc",
        "--format",
        "{{.Name}}: {{.Description}}",
        "nginx",
    ]);
    assert_eq!(
        out,
        "bitnami/nginx: Bitnami container image for NGINX, a very long description that goes on\n"
    );
    let err = root.fails(&["search", "--limit", "0", "nginx"], 1);
    assert!(
        err.contains("Limit 0 is outside the range of [1, 100]"),
        "{err}"
    );
    let out = run(&[
        "search",
        "--limit",
        "1",
        "--format",
        "{{.Name}} {{.StarCount}} {{.IsOfficial}}",
        "nginx",
    ]);
    assert_eq!(out, "nginx 19000 [OK]\n");
}

/// An OCI archive whose index points at a multi-platform index: the host's image is loaded.
#[test]
fn load_multi_platform_oci_archive() {
    fixtures();
    if !has_tool("skopeo") {
        return;
    }
    let root = TestRoot::new("xfer-multiarch");
    let path = root.dir.join("ma.tar");
    let status = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{ANON}/multiarch:latest"),
            &format!("oci-archive:{}:multiarch:latest", path.display()),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        root.ok(&["load", "-i", path.to_str().unwrap()]),
        "Loaded image: multiarch:latest\n"
    );
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    if arch == "amd64" {
        assert_eq!(
            root.ok(&["run", "--rm", "multiarch:latest", "cat", "/arch"]),
            "amd64\n"
        );
    }
}

#[test]
fn save_by_id_loads_untagged() {
    fixtures();
    let root = TestRoot::new("xfer-save-id");
    let name = format!("{ANON}/busybox:latest");
    root.ok(&["pull", "-q", &name]);
    let id = image_id(&root, &name);
    let archive = root.dir.join("by-id.tar");
    root.ok(&["save", "-o", archive.to_str().unwrap(), &id[7..19]]);
    let fresh = TestRoot::new("xfer-save-id-load");
    let out = fresh.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, format!("Loaded image ID: {id}\n"));
    assert_eq!(fresh.ok(&["run", "--rm", &id[7..19], "echo", "ok"]), "ok\n");
    // Loading a tag that names another image here: Docker's rename notice.
    let tagged = root.dir.join("tagged.tar");
    root.ok(&["save", "-o", tagged.to_str().unwrap(), &name]);
    let other = fresh
        .ok(&["import", BUSYBOX_LAYER, &name])
        .trim()
        .to_string();
    let out = fresh.ok(&["load", "-i", tagged.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "The image {name} already exists, renaming the old one with ID {other} to empty string\nLoaded image: {name}\n"
        )
    );
    assert_eq!(image_id(&fresh, &name), id);
    // A device as output is written to, not replaced.
    root.ok(&["save", "-o", "/dev/null", &name]);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // Unknown images are refused before anything is written.
    let out = root.dir.join("none.tar");
    let err = root.fails(&["save", "-o", out.to_str().unwrap(), "nosuch:1"], 1);
    assert!(err.contains("No such image: nosuch:1"), "{err}");
    assert!(!out.exists());
}

/// Names and link targets longer than a tar header holds go through PAX records, both in
/// `export` and in committed layers.
#[test]
fn long_names_survive_export_and_commit() {
    fixtures();
    let root = TestRoot::new("xfer-long");
    let long = "a".repeat(120);
    let script = format!(
        "mkdir -p /x/{long}; echo deep > /x/{long}/{long}; ln -s /x/{long}/{long} /x/l-{long}; ln /x/{long}/{long} /x/h-{long}"
    );
    root.ok(&["pull", "-q", &format!("{ANON}/busybox:latest")]);
    root.ok(&[
        "run",
        "--name",
        "l1",
        &format!("{ANON}/busybox:latest"),
        "sh",
        "-c",
        &script,
    ]);
    let out = root.berth(&["export", "l1"]).output().unwrap();
    assert!(out.status.success());
    let entries = listing(&out.stdout);
    let file = format!("x/{long}/{long}");
    assert_eq!(entries[&file].0, 'f');
    assert_eq!(
        entries[&format!("x/l-{long}")],
        ('l', 0o777, 0, 0, format!("/{file}"))
    );
    assert_eq!(entries[&format!("x/h-{long}")].0, 'h');
    root.ok(&["commit", "l1", "long:1"]);
    let seen = root.ok(&[
        "run",
        "--rm",
        "long:1",
        "sh",
        "-c",
        &format!("cat /x/{long}/{long} /x/l-{long} /x/h-{long}; stat -c %h /x/h-{long}"),
    ]);
    assert_eq!(seen, "deep\ndeep\ndeep\n2\n");
}
