//! Bridge networking and port publishing, end to end, as root: the real binary, the fixture
//! registry's nginx and busybox images, the host's real bridge, veths and nftables.
//!
//! Every test here touches host networking, so they run one at a time, across test threads
//! and test processes: each holds an flock on /run/berth-net-tests.lock (tests/common/net.rs,
//! shared with security_runtime.rs's case 37).

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::TestRoot;
use common::net::{
    assert_restored, busybox, endpoints_left, http_get, http_get_retry, nginx, setup, sh, snapshot,
};

#[test]
fn publish_nginx_port_ps_logs_inspect() {
    let (_lock, root) = setup("net-nginx");
    let before = snapshot();
    root.ok(&["run", "-d", "--name", "web", "-p", "18080:80", &nginx()]);
    let body = http_get_retry("127.0.0.1:18080");
    assert!(body.contains("Welcome to nginx!"), "{body}");
    assert_eq!(root.ok(&["port", "web"]), "80/tcp -> 0.0.0.0:18080\n");
    assert_eq!(root.ok(&["port", "web", "80/tcp"]), "0.0.0.0:18080\n");
    let ps = root.ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:18080->80/tcp"), "{ps}");
    let logs = root.ok(&["logs", "web"]);
    assert!(logs.contains("\"GET / HTTP/1.0\" 200"), "{logs}");
    let ip = root.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    assert!(ip.trim().starts_with("10.88."), "{ip}");
    let gw = root.ok(&["inspect", "-f", "{{.NetworkSettings.Gateway}}", "web"]);
    assert_eq!(gw.trim(), "10.88.0.1");
    let json: serde_json::Value = serde_json::from_str(&root.ok(&["inspect", "web"])).unwrap();
    assert_eq!(
        json[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        "18080"
    );
    // The container's own /etc/hosts names it by its address.
    let hosts = root.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{}\t", ip.trim())), "{hosts}");
    // The host's own address works too (not just loopback), and from a container (hairpin).
    let out = root.ok(&[
        "run",
        "--rm",
        &busybox(),
        "wget",
        "-qO-",
        "http://10.88.0.1:18080/",
    ]);
    assert!(out.contains("Welcome to nginx!"), "{out}");
    root.ok(&["rm", "-f", "web"]);
    assert_restored(&before, "rm -f");
    assert!(endpoints_left().is_empty(), "{:?}", endpoints_left());
    assert!(http_get("127.0.0.1:18080").is_err());
}

#[test]
fn publish_all_uses_a_free_ephemeral_port() {
    let (_lock, root) = setup("net-publish-all");
    let before = snapshot();
    root.ok(&["run", "-d", "--name", "web", "-P", &nginx()]);
    let mapped = root.ok(&["port", "web", "80"]);
    let port: u16 = mapped.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(port >= 1024, "{mapped}");
    let body = http_get_retry(&format!("127.0.0.1:{port}"));
    assert!(body.contains("Welcome to nginx!"));
    root.ok(&["rm", "-f", "web"]);
    assert_restored(&before, "rm -f after -P");
}

#[test]
fn udp_publish() {
    let (_lock, root) = setup("net-udp");
    let before = snapshot();
    // Busybox's nc here has no -u: a perl UDP echo server in the (Debian) nginx image.
    let script = r#"$|=1; my $s=IO::Socket::INET->new(LocalPort=>5353,Proto=>"udp") or die "$!"; print "ready\n"; while(1){ $s->recv(my $m,1024); print "got $m\n"; $s->send("echo $m"); }"#;
    root.ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        "15353:5353/udp",
        &nginx(),
        "perl",
        "-MIO::Socket::INET",
        "-e",
        script,
    ]);
    assert_eq!(root.ok(&["port", "udp"]), "5353/udp -> 0.0.0.0:15353\n");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 100];
    let mut reply = None;
    for _ in 0..30 {
        sock.send_to(b"hello", "127.0.0.1:15353").unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            reply = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            break;
        }
    }
    assert_eq!(reply.as_deref(), Some("echo hello"));
    assert!(root.ok(&["logs", "udp"]).contains("got hello"));
    root.ok(&["rm", "-f", "udp"]);
    assert_restored(&before, "rm -f after udp");
}

#[test]
fn host_port_in_use_fails_cleanly() {
    let (_lock, root) = setup("net-inuse");
    let before = snapshot();
    let _taken = std::net::TcpListener::bind("127.0.0.1:18083").unwrap();
    let err = root.fails(&["run", "-d", "--rm", "-p", "18083:80", &nginx()], 125);
    assert!(err.contains("18083") && err.contains("in use"), "{err}");
    assert_restored(&before, "failed run");
    assert!(endpoints_left().is_empty());
    assert_eq!(root.ok(&["ps", "-aq"]), "");

    // A port another berth container holds.
    root.ok(&["run", "-d", "--name", "holder", "-p", "18084:80", &nginx()]);
    let err = root.fails(
        &["run", "-d", "--name", "loser", "-p", "18084:80", &nginx()],
        125,
    );
    assert!(err.contains("port is already allocated"), "{err}");
    root.ok(&["rm", "-f", "holder", "loser"]);
    assert_restored(&before, "rm -f after port conflict");
}

#[test]
fn rm_autoremove_and_start_stop_cycles_leave_nothing() {
    let (_lock, root) = setup("net-cycles");
    let before = snapshot();
    let out = root.ok(&["run", "--rm", "-p", "18085:80", &busybox(), "echo", "hi"]);
    assert_eq!(out, "hi\n");
    assert_restored(&before, "--rm container exited");

    root.ok(&[
        "create",
        "--name",
        "cycler",
        "-p",
        "18086:80",
        &busybox(),
        "sleep",
        "1000",
    ]);
    for i in 0..50 {
        root.ok(&["start", "cycler"]);
        root.ok(&["stop", "-t", "0", "cycler"]);
        if i == 0 {
            assert_restored(&before, "first start/stop");
        }
    }
    assert_restored(&before, "50 start/stop cycles");
    root.ok(&["rm", "cycler"]);
    assert!(endpoints_left().is_empty());
}

fn monitor_and_pid(root: &TestRoot, name: &str) -> (i32, i32) {
    let id = root.ok(&["inspect", "-f", "{{.Id}}", name]);
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            root.path
                .join("containers")
                .join(id.trim())
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    (
        state["monitor_pid"].as_i64().unwrap() as i32,
        state["pid"].as_i64().unwrap() as i32,
    )
}

#[test]
fn crash_of_the_monitor_is_cleaned_by_the_next_command() {
    let (_lock, root) = setup("net-crash");
    let before = snapshot();
    // Monitor and container both die (a crash): the next command of any kind cleans up.
    root.ok(&["run", "-d", "--name", "crash1", "-p", "18087:80", &nginx()]);
    let (monitor, pid) = monitor_and_pid(&root, "crash1");
    // SAFETY: kill takes integers only and touches no memory of ours.
    unsafe {
        libc::kill(monitor, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(200));
    root.ok(&["ps"]);
    assert_restored(&before, "kill -9 of monitor and container, then ps");
    assert!(endpoints_left().is_empty());
    // (Its init may linger as a zombie until PID 1 reaps it: `ps` can still say Up.)
    root.ok(&["rm", "-f", "crash1"]);

    // Only the monitor dies: the container keeps its network until it is removed.
    root.ok(&["run", "-d", "--name", "crash2", "-p", "18088:80", &nginx()]);
    let (monitor, _) = monitor_and_pid(&root, "crash2");
    // SAFETY: kill takes integers only and touches no memory of ours.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(100));
    root.ok(&["ps"]);
    http_get_retry("127.0.0.1:18088");
    root.ok(&["rm", "-f", "crash2"]);
    assert_restored(&before, "kill -9 of the monitor, then rm -f");
}

#[test]
fn concurrent_containers_get_distinct_addresses_and_reach_each_other() {
    let (_lock, root) = setup("net-pair");
    let before = snapshot();
    let runs: Vec<_> = ["peer-a", "peer-b"]
        .iter()
        .map(|name| {
            root.berth(&[
                "run",
                "-d",
                "--name",
                name,
                &busybox(),
                "sh",
                "-c",
                "while true; do echo pong | nc -l -p 7000; done",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut r in runs {
        assert!(r.wait().unwrap().success());
    }
    let ip = |n: &str| {
        root.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", n])
            .trim()
            .to_string()
    };
    let (a, b) = (ip("peer-a"), ip("peer-b"));
    assert_ne!(a, b);
    assert!(a.starts_with("10.88.") && b.starts_with("10.88."));
    root.ok(&["exec", "peer-a", "ping", "-c", "1", "-W", "2", &b]);
    root.ok(&["exec", "peer-b", "ping", "-c", "1", "-W", "2", &a]);
    let out = root.ok(&["exec", "peer-a", "nc", &b, "7000"]);
    assert_eq!(out.trim(), "pong");
    root.ok(&["rm", "-f", "peer-a", "peer-b"]);
    assert_restored(&before, "rm -f of two containers");
}

#[test]
fn network_modes_hostname_and_dns_files() {
    let (_lock, root) = setup("net-modes");
    let bb = busybox();
    // none: only lo.
    let dev = root.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &bb,
        "cat",
        "/proc/net/dev",
    ]);
    assert!(dev.contains("lo:") && !dev.contains("eth0"), "{dev}");
    // host: the host's interfaces and hostname.
    let host_name = sh(&["hostname"]);
    let out = root.ok(&["run", "--rm", "--network", "host", &bb, "hostname"]);
    assert_eq!(out, host_name);
    // bridge is the default: eth0 with an address on the bridge, default route.
    let route = root.ok(&["run", "--rm", &bb, "ip", "route"]);
    assert!(route.contains("default via 10.88.0.1 dev eth0"), "{route}");
    let hosts = root.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "--add-host",
        "db:10.0.0.5",
        &bb,
        "sh",
        "-c",
        "cat /etc/hosts; hostname; ip -4 addr show eth0",
    ]);
    assert!(hosts.contains("10.0.0.5\tdb\n"), "{hosts}");
    let addr = hosts
        .lines()
        .find_map(|l| l.trim().strip_prefix("inet "))
        .and_then(|l| l.split('/').next())
        .unwrap()
        .to_string();
    assert!(hosts.contains(&format!("{addr}\tbox\n")), "{hosts}");
    assert!(hosts.contains("\nbox\n"), "{hosts}");
    let resolv = root.ok(&[
        "run",
        "--rm",
        "--dns",
        "1.1.1.1",
        "--dns-search",
        "example.com",
        &bb,
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(resolv.contains("nameserver 1.1.1.1\n"), "{resolv}");
    assert!(resolv.contains("search example.com\n"), "{resolv}");
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
    // Without --dns: the host's, minus loopback servers.
    let default = root.ok(&["run", "--rm", &bb, "cat", "/etc/resolv.conf"]);
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    for line in host.lines().filter(|l| l.starts_with("nameserver")) {
        let loopback = line.contains(" 127.") || line.contains(" ::1");
        assert_eq!(default.contains(line), !loopback, "{line}: {default}");
    }
    let err = root.fails(&["run", "--rm", "--network", "nope", &bb, "true"], 125);
    assert!(err.contains("network nope not found"), "{err}");
}
