//! Integration tests of berth::runtime against the real kernel (run as root).
//!
//! The rootfs is Debian's busybox-static (`apt-get install busybox-static`), installed
//! once per test process into a base layer; each test gets its own upper/work dirs and
//! its own cgroup.

mod common;

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth::runtime::{self, Runtime, RuntimeError, SpawnOptions, Stdio};
use common::bundle::{Bundle, base_layer, make_busybox_rootfs, pipes, read_all, scratch, wait};
use common::wait::slow;
use oci_spec::runtime::{Capability, LinuxMemoryBuilder, LinuxPidsBuilder, Spec};

#[test]
fn echo_and_exit_codes() {
    let mut b = Bundle::new("echo");
    b.args(&["echo", "hello", "world"]);
    assert_eq!(b.run(), (0, "hello world\n".into(), String::new()));
    b.args(&["sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(b.run(), (3, String::new(), "oops\n".into()));
}

/// The container's init is cloned from a process whose other threads may be inside libc at
/// that moment: while one spawns a command (musl's posix_spawn holds a lock for as long as
/// its child takes to exec), containers still start, with and without --init, and their
/// rlimits set. A child that called libc's sigaction or setrlimit waited forever here.
#[test]
fn containers_start_while_another_thread_spawns_commands() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                Command::new("/bin/true").status().unwrap();
                n += 1;
            }
            n
        })
    };
    let (done_tx, done_rx) = mpsc::channel();
    let starter = std::thread::spawn(move || {
        let mut b = Bundle::new("spawnrace");
        b.args(&["sh", "-c", "ulimit -n"]);
        let p = b.spec.process_mut().as_mut().unwrap();
        let mut rlimits = p.rlimits().clone().unwrap_or_default();
        rlimits.push(
            oci_spec::runtime::PosixRlimitBuilder::default()
                .typ(oci_spec::runtime::PosixRlimitType::RlimitNofile)
                .soft(321u64)
                .hard(1000u64)
                .build()
                .unwrap(),
        );
        p.set_rlimits(Some(rlimits));
        for i in 0..30 {
            let (code, out, err) = b.run_with(i % 3 == 0).unwrap();
            done_tx.send((code, out, err)).unwrap();
        }
    });
    for i in 0..30 {
        let (code, out, err) = done_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("container {i} did not finish: its start hung"));
        assert_eq!((code, out.as_str()), (0, "321\n"), "{err}");
    }
    starter.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(spawner.join().unwrap() > 0);
}

#[test]
fn command_not_found_is_127() {
    let mut b = Bundle::new("notfound");
    b.args(&["nope"]);
    let e = b.run_with(false).unwrap_err();
    assert_eq!(e.exit_code(), 127);
    assert!(
        e.to_string()
            .contains(r#"exec: "nope": executable file not found in $PATH"#),
        "{e}"
    );
    b.args(&["/no/such/file"]);
    assert_eq!(b.run_with(false).unwrap_err().exit_code(), 127);
}

#[test]
fn not_executable_is_126() {
    let mut b = Bundle::new("noexec");
    b.args(&["/etc/passwd"]);
    let e = b.run_with(false).unwrap_err();
    assert_eq!(e.exit_code(), 126);
    assert!(e.to_string().contains("permission denied"), "{e}");
}

#[test]
fn hostname_pid1_and_cwd() {
    let mut b = Bundle::new("hostname");
    b.spec.set_hostname(Some("box1".into()));
    b.spec
        .process_mut()
        .as_mut()
        .unwrap()
        .set_cwd(PathBuf::from("/tmp"));
    b.args(&["sh", "-c", "hostname; echo $$; pwd"]);
    assert_eq!(b.run().1, "box1\n1\n/tmp\n");
}

#[test]
fn docker_default_capabilities() {
    let mut b = Bundle::new("caps");
    b.args(&["cat", "/proc/self/status"]);
    let (code, out, _) = b.run();
    assert_eq!(code, 0);
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    assert_eq!(field("CapBnd:"), "00000000a80425fb");
    assert_eq!(field("CapEff:"), "00000000a80425fb");
    assert_eq!(field("CapPrm:"), "00000000a80425fb");
    assert_eq!(field("CapInh:"), "0000000000000000");
    assert_eq!(field("CapAmb:"), "0000000000000000");
    assert_eq!(field("Seccomp:"), "2");
}

#[test]
fn non_root_user_has_no_effective_caps() {
    let mut b = Bundle::new("user");
    let u = berth::container::user::resolve_user_in_layers(&[base_layer()], "nobody").unwrap();
    let p = b.spec.process_mut().as_mut().unwrap();
    let mut user = p.user().clone();
    user.set_uid(u.uid);
    user.set_gid(u.gid);
    user.set_additional_gids(Some(u.additional_gids));
    p.set_user(user);
    b.args(&["sh", "-c", "id; grep CapEff /proc/self/status"]);
    let (code, out, _) = b.run();
    assert_eq!(code, 0);
    assert!(
        out.contains("uid=65534(nobody) gid=65534(nogroup)"),
        "{out}"
    );
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

#[test]
fn proc_is_masked_and_readonly() {
    let mut b = Bundle::new("procmask");
    b.args(&[
        "sh",
        "-c",
        "for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && wc -c < $f; done; \
         [ -e /proc/sysrq-trigger ] && echo h > /proc/sysrq-trigger && echo WROTE; \
         echo x > /proc/sys/kernel/domainname && echo WROTE; ls /sys/firmware | wc -l",
    ]);
    let (_, out, err) = b.run();
    assert!(out.lines().all(|l| l == "0"), "{out} stderr: {err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!out.contains("WROTE"));
}

#[test]
fn block_device_cannot_be_read() {
    let mut b = Bundle::new("mknod");
    b.args(&["sh", "-c", "mknod /tmp/b b 8 0 && cat /tmp/b > /dev/null"]);
    let (code, _, err) = b.run();
    assert_ne!(code, 0, "reading a host block device must fail: {err}");
}

#[test]
fn only_stdio_fds_are_inherited() {
    let mut b = Bundle::new("fds");
    // ls's own directory fd is 3, as under Docker.
    b.args(&["ls", "/proc/self/fd"]);
    assert_eq!(b.run().1, "0\n1\n2\n3\n");
}

#[test]
fn pid1_fds_seen_from_exec() {
    let mut b = Bundle::new("execfds");
    b.args(&["sleep", "10"]);
    let (s, _o, _e) = b.spawn_piped(false);
    let mut p = b.spec.process().clone().unwrap();
    p.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "ls /proc/1/fd; hostname; cat /proc/1/cmdline".into(),
    ]));
    let (stdio, out_r, _er) = pipes();
    let e = b
        .container()
        .exec(&b.spec, &p, b.opts(stdio, false))
        .unwrap();
    let out = read_all(out_r);
    assert_eq!(wait(&e), 0);
    assert_eq!(out, "0\n1\n2\nberth\nsleep\u{0}10\u{0}");
    nix::sys::signal::kill(s.pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    wait(&s);
}

fn host_mounts() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
fn host_mount_table_is_untouched() {
    let before = host_mounts();
    let mut b = Bundle::new("mountinfo");
    b.args(&["true"]);
    assert_eq!(b.run().0, 0);
    assert_eq!(before, host_mounts());
}

#[test]
fn plain_bundle_without_overlay() {
    let dir = scratch().join("plain");
    let _ = fs::remove_dir_all(&dir);
    make_busybox_rootfs(&dir.join("rootfs"));
    let mut spec = berth::container::policy::default_spec().unwrap();
    spec.linux_mut().as_mut().unwrap().set_cgroups_path(Some(
        format!("/berth-test/plain-{}", std::process::id()).into(),
    ));
    let mut b = Bundle::with_spec(dir, spec, "plain");
    b.args(&["sh", "-c", "echo plain > /tmp/x; cat /tmp/x"]);
    assert_eq!(b.run().1, "plain\n");
    assert!(b.dir.join("rootfs/tmp/x").exists());
}

/// The OCI lifecycle the runtime crate's documentation shows, on a plain bundle directory
/// (config.json + rootfs): create parks the process before the user's program, start lets
/// it run, state follows it, kill and delete end it.
#[test]
fn oci_create_start_state_kill_delete() {
    let dir = scratch().join("oci-lifecycle");
    let _ = fs::remove_dir_all(&dir);
    make_busybox_rootfs(&dir.join("rootfs"));
    let mut spec = berth::container::policy::default_spec().unwrap();
    spec.linux_mut().as_mut().unwrap().set_cgroups_path(Some(
        format!("/berth-test/oci-lifecycle-{}", std::process::id()).into(),
    ));
    let mut ann = HashMap::new();
    ann.insert(
        "org.example.purpose".to_string(),
        "lifecycle test".to_string(),
    );
    spec.set_annotations(Some(ann));
    let p = spec.process_mut().as_mut().unwrap();
    p.set_args(Some(
        ["sh", "-c", "echo started; exec sleep 1000"]
            .map(String::from)
            .to_vec(),
    ));
    fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();

    let spec = runtime::load_spec(&dir).unwrap();
    let rt = Runtime::new(dir.join("state"));
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let stdio = Stdio::Fds {
        stdin: None,
        stdout: out_w.try_clone().unwrap(),
        stderr: out_w,
    };
    let opts = SpawnOptions::new(stdio, scratch().join("cache"));
    let (c, spawned) = rt.create("lifecycle", &dir, &spec, opts).unwrap();
    let st = c.state();
    assert_eq!(st.status, runtime::Status::Created);
    assert_eq!(st.pid, Some(spawned.pid.as_raw()));
    assert_eq!(st.bundle, dir);
    assert_eq!(st.annotations["org.example.purpose"], "lifecycle test");
    // Parked: set up, but the user's program has not run (no exec, no output yet).
    let comm = fs::read_to_string(format!("/proc/{}/comm", spawned.pid)).unwrap();
    assert_ne!(comm.trim(), "sh");
    let mut pending = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&out_r),
        nix::poll::PollFlags::POLLIN,
    )];
    assert_eq!(
        nix::poll::poll(&mut pending, nix::poll::PollTimeout::from(200u16)).unwrap(),
        0
    );
    let e = rt
        .create(
            "lifecycle",
            &dir,
            &spec,
            SpawnOptions::new(Stdio::Pty, scratch().join("cache")),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "container with id lifecycle already exists");
    assert!(matches!(
        rt.load("lifecycle").unwrap().delete(false),
        Err(RuntimeError::WrongStatus { .. })
    ));

    // Another process's view: start through a fresh load, as `runc start` would.
    rt.load("lifecycle").unwrap().start().unwrap();
    let mut out = [0u8; 8];
    let n = nix::unistd::read(&out_r, &mut out).unwrap();
    assert_eq!(&out[..n], b"started\n");
    assert_eq!(
        rt.load("lifecycle").unwrap().state().status,
        runtime::Status::Running
    );
    let listed: Vec<String> = rt
        .list()
        .unwrap()
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    assert_eq!(listed, ["lifecycle"]);
    assert!(
        rt.load("lifecycle").unwrap().start().is_err(),
        "started twice"
    );

    let c = rt.load("lifecycle").unwrap();
    c.pause().unwrap();
    assert_eq!(c.state().status, runtime::Status::Paused);
    c.resume().unwrap();
    assert_eq!(c.state().status, runtime::Status::Running);

    c.kill(nix::sys::signal::Signal::SIGKILL, false).unwrap();
    assert_eq!(wait(&spawned), 128 + libc::SIGKILL);
    let st = c.state();
    assert_eq!(st.status, runtime::Status::Stopped);
    assert_eq!(st.pid, None);
    c.delete(false).unwrap();
    assert!(matches!(
        rt.load("lifecycle"),
        Err(RuntimeError::NotFound(_))
    ));
    assert!(!dir.join("state/lifecycle").exists());
    let cg = format!("/berth-test/oci-lifecycle-{}", std::process::id());
    assert!(runtime::remove_cgroup(Path::new(&cg)).is_ok());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn overlay_layers_and_whiteouts() {
    let layers = scratch().join("wh-layers");
    let _ = fs::remove_dir_all(&layers);
    let bottom = layers.join("bottom");
    let top = layers.join("top");
    fs::create_dir_all(bottom.join("data")).unwrap();
    fs::create_dir_all(top.join("data")).unwrap();
    fs::write(bottom.join("data/a"), "a").unwrap();
    fs::write(bottom.join("data/b"), "b").unwrap();
    fs::write(top.join("data/c"), "c").unwrap();
    // An overlay whiteout: a 0/0 character device.
    let wh = CString::new(top.join("data/a").to_str().unwrap()).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mknod(wh.as_ptr(), libc::S_IFCHR, 0) }, 0);
    let mut b = Bundle::overlay("whiteout", &[&top, &bottom, base_layer()]);
    b.args(&["sh", "-c", "ls /data; echo new > /data/d"]);
    assert_eq!(b.run().1, "b\nc\n");
    assert_eq!(
        fs::read_to_string(b.dir.join("upper/data/d")).unwrap(),
        "new\n"
    );
    assert!(!bottom.join("data/d").exists());
}

#[test]
fn overlay_with_128_long_named_layers() {
    let layers = scratch().join("many-layers");
    let _ = fs::remove_dir_all(&layers);
    let mut dirs = Vec::new();
    for i in 0..127 {
        // 64 hex chars like the store's layer directories.
        let d = layers.join(format!("{:064x}", i)).join("diff");
        fs::create_dir_all(d.join("layers")).unwrap();
        fs::write(d.join(format!("layers/f{i}")), "x").unwrap();
        dirs.push(d);
    }
    let mut lowers: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
    lowers.push(base_layer());
    assert!(
        lowers
            .iter()
            .map(|p| p.as_os_str().len() + 1)
            .sum::<usize>()
            > 4096
    );
    let mut b = Bundle::overlay("many", &lowers);
    b.args(&["sh", "-c", "ls /layers | wc -l"]);
    let (code, out, err) = b.run();
    assert_eq!((code, out.as_str()), (0, "127\n"), "{err}");
}

#[test]
fn memory_limit_kills() {
    let mut b = Bundle::new("memory");
    let r = b.resources();
    r.set_memory(Some(
        LinuxMemoryBuilder::default()
            .limit(32 * 1024 * 1024i64)
            .swap(32 * 1024 * 1024i64)
            .build()
            .unwrap(),
    ));
    b.args(&[
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    let (code, out, _) = b.run();
    assert!(!out.contains("survived"));
    assert_ne!(code, 0);
}

#[test]
fn pids_limit_contains_fork_bomb() {
    let mut b = Bundle::new("pids");
    let r = b.resources();
    r.set_pids(Some(LinuxPidsBuilder::default().limit(10).build().unwrap()));
    b.args(&[
        "sh",
        "-c",
        // ash gives up at the first failed fork, so the bomb runs in a subshell; only
        // builtins after it, fork is what the limit takes away.
        "(for i in $(seq 30); do sleep 2 & done) 2>/dev/null; set -- /proc/[0-9]*; echo $#",
    ]);
    let (_, out, err) = b.run();
    let n: usize = out.trim().parse().expect(&err);
    assert!(n <= 10, "{n} processes in a pids.max=10 cgroup");
}

#[test]
fn init_reaps_zombies_and_forwards_exit_code() {
    let mut b = Bundle::new("init");
    b.args(&[
        "sh",
        "-c",
        "echo $$; sh -c 'sleep 0.1 & exit 0'; sleep 0.5; cat /proc/[0-9]*/stat | cut -d' ' -f3 | grep -c Z; exit 7",
    ]);
    let (code, out, _) = b.run_with(true).unwrap();
    assert_eq!(code, 7);
    assert_eq!(out, "2\n0\n");
}

#[test]
fn init_passes_signals() {
    let mut b = Bundle::new("initsig");
    b.args(&["sleep", "10"]);
    let (s, _o, _e) = b.spawn_piped(true);
    std::thread::sleep(Duration::from_millis(100));
    nix::sys::signal::kill(s.pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(wait(&s), 128 + libc::SIGTERM);
}

#[test]
fn pty_is_controlling_terminal() {
    let mut b = Bundle::new("pty");
    let p = b.spec.process_mut().as_mut().unwrap();
    p.set_terminal(Some(true));
    p.set_console_size(Some(
        oci_spec::runtime::BoxBuilder::default()
            .height(33u64)
            .width(101u64)
            .build()
            .unwrap(),
    ));
    b.args(&["sh", "-c", "tty; stty size; ls -l /dev/ptmx; cat /proc/self/stat | cut -d' ' -f7; echo hi > /dev/console"]);
    let s = b.spawn(Stdio::Pty, false).unwrap();
    let master = s.pty_master.as_ref().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(wait(&s), 0);
    let out = String::from_utf8_lossy(&out);
    // The pty lives in the container's own devpts, as under Docker: /dev/pts/0 = 136:0.
    assert!(out.starts_with("/dev/pts/0\r\n33 101\r\n"), "{out:?}");
    assert!(out.contains("/dev/ptmx -> pts/ptmx"), "{out:?}");
    assert!(
        out.contains(&format!("\r\n{}\r\nhi\r\n", 136 << 8)),
        "tty_nr: {out:?}"
    );
    let _ = master.as_raw_fd();
}

#[test]
fn read_only_rootfs() {
    let mut b = Bundle::new("readonly");
    b.spec.root_mut().as_mut().unwrap().set_readonly(Some(true));
    b.args(&[
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo ROOT; touch /dev/shm/x && echo SHM",
    ]);
    assert_eq!(b.run().1, "SHM\n");
}

#[test]
fn seccomp_blocks_what_caps_would_allow() {
    let mut b = Bundle::new("seccomp");
    // CAP_SYS_ADMIN, but the default profile computed for Docker's default caps.
    let p = b.spec.process_mut().as_mut().unwrap();
    let mut c = p.capabilities().clone().unwrap();
    for set in [
        c.bounding().clone(),
        c.effective().clone(),
        c.permitted().clone(),
    ]
    .iter()
    .enumerate()
    {
        let mut s = set.1.clone().unwrap();
        s.insert(Capability::SysAdmin);
        match set.0 {
            0 => c.set_bounding(Some(s)),
            1 => c.set_effective(Some(s)),
            _ => c.set_permitted(Some(s)),
        };
    }
    p.set_capabilities(Some(c));
    b.args(&["sh", "-c", "unshare -u true && echo UNSHARED"]);
    let (code, out, _) = b.run();
    assert_ne!(code, 0);
    assert_eq!(out, "");
    // seccomp=unconfined: the same command now works.
    b.linux().set_seccomp(None);
    b.args(&[
        "sh",
        "-c",
        "unshare -u true && echo UNSHARED; grep Seccomp: /proc/self/status",
    ]);
    assert_eq!(b.run().1, "UNSHARED\nSeccomp:\t0\n");
}

#[test]
fn custom_docker_seccomp_profile() {
    let mut b = Bundle::new("customsc");
    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
    let sc = berth::container::seccomp_profile::docker_profile_to_oci(profile, &[]).unwrap();
    b.linux().set_seccomp(Some(sc));
    b.args(&["sh", "-c", "mkdir /tmp/d 2>&1; echo $?"]);
    let out = b.run().1;
    assert!(out.contains("Permission denied"), "{out}");
}

#[test]
fn start_time_of_true() {
    let mut b = Bundle::new("timing");
    // --network none: just the empty namespace.
    b.args(&["true"]);
    b.run(); // warm the seccomp cache
    let (mut spawn_t, mut exit_t, mut clean_t, mut total) = (vec![], vec![], vec![], vec![]);
    for _ in 0..7 {
        let t0 = Instant::now();
        let s = b
            .spawn(
                Stdio::Fds {
                    stdin: None,
                    stdout: nix::unistd::pipe().unwrap().1,
                    stderr: nix::unistd::pipe().unwrap().1,
                },
                false,
            )
            .unwrap();
        let t1 = Instant::now();
        assert_eq!(wait(&s), 0);
        let t2 = Instant::now();
        b.cleanup().unwrap();
        let t3 = Instant::now();
        spawn_t.push(t1 - t0);
        exit_t.push(t2 - t1);
        clean_t.push(t3 - t2);
        total.push(t3 - t0);
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    // The pieces on their own.
    let sc = b.spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let t = Instant::now();
    runtime::seccomp::compile(&sc).unwrap();
    let compile = t.elapsed();
    let t = Instant::now();
    runtime::seccomp::load_or_compile(&sc, &scratch().join("cache")).unwrap();
    let cached = t.elapsed();
    let cg = runtime::cgroups::for_path(Path::new("/berth-test/timing-cg")).unwrap();
    let t = Instant::now();
    cg.create().unwrap();
    let cg_create = t.elapsed();
    let t = Instant::now();
    cg.destroy().unwrap();
    let cg_destroy = t.elapsed();
    eprintln!(
        "median of 7: spawn() {:?}, spawn→exit {:?}, cleanup {:?}, total {:?}; \
         seccomp compile {compile:?} vs cached load {cached:?}; cgroup create {cg_create:?}, \
         destroy {cg_destroy:?}",
        med(&mut spawn_t),
        med(&mut exit_t),
        med(&mut clean_t),
        med(&mut total)
    );
    assert!(med(&mut total) < slow(Duration::from_millis(500)));
}

/// The container sees its own cgroup as the root (a cgroup namespace), with its limit, read-only.
/// On v1 that is the memory hierarchy's directory; on v2 the one unified directory.
#[test]
fn cgroup_namespace_and_mounts() {
    let mut b = Bundle::new("cgview");
    let r = b.resources();
    r.set_memory(Some(
        LinuxMemoryBuilder::default()
            .limit(48 * 1024 * 1024i64)
            .build()
            .unwrap(),
    ));
    let (dir, hierarchy, limit_file, fs) = if runtime::cgroups::is_v2() {
        ("/sys/fs/cgroup", "^0::", "memory.max", "cgroup2")
    } else {
        (
            "/sys/fs/cgroup/memory",
            ":memory:",
            "memory.limit_in_bytes",
            "cgroup",
        )
    };
    let script = format!(
        "grep {hierarchy} /proc/self/cgroup | cut -d: -f3; cat {dir}/{limit_file}; \
         touch {dir}/x 2>/dev/null || echo RO; \
         awk '{{ for (i = 7; $i != \"-\"; i++); }} $5 == \"/\" || $5 == \"{dir}\" {{ print $5, $(i + 1) }}' \
         /proc/self/mountinfo"
    );
    b.args(&["sh", "-c", &script]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("/\n50331648\nRO\n/ overlay\n{dir} {fs}\n"));
}

/// Without a cgroup namespace (Docker's `--cgroupns host`, its default on v1) the container
/// sees its cgroup's full path, and /sys/fs/cgroup holds its own cgroup's directories
/// bind-mounted read-only (as runc does), not the host's whole tree.
#[test]
fn without_a_cgroup_namespace_the_containers_own_cgroup_is_bound() {
    let mut b = Bundle::new("cghost");
    let path = b.linux().cgroups_path().clone().unwrap();
    b.linux()
        .namespaces_mut()
        .as_mut()
        .unwrap()
        .retain(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Cgroup);
    b.resources().set_memory(Some(
        LinuxMemoryBuilder::default()
            .limit(48 * 1024 * 1024i64)
            .build()
            .unwrap(),
    ));
    let (cgroup, limit, dir) = if runtime::cgroups::is_v2() {
        (
            "cat /proc/self/cgroup",
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup",
        )
    } else {
        (
            "grep :memory: /proc/self/cgroup",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory",
        )
    };
    let script = format!(
        "{cgroup}; cat {limit}; touch {dir}/x 2>/dev/null || echo RO; ls {dir} | grep -c berth-test || true"
    );
    b.args(&["sh", "-c", &script]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert!(
        lines.next().unwrap().ends_with(&path.display().to_string()),
        "{out}"
    );
    assert_eq!(lines.next(), Some("50331648"), "{out}");
    assert_eq!(lines.next(), Some("RO"), "{out}");
    assert_eq!(lines.next(), Some("0"), "{out}");
}

/// cpu shares outside 2..262144 are refused, as runc refuses them (the v1 kernel would
/// clamp them silently, and v2's conversion would be meaningless).
#[test]
fn cpu_shares_outside_the_kernels_range_are_refused() {
    for (shares, word) in [(1, "minimum allowed cpu-shares is 2"), (300_000, "maximum")] {
        let mut b = Bundle::new("shares");
        b.resources().set_cpu(Some(
            oci_spec::runtime::LinuxCpuBuilder::default()
                .shares(shares as u64)
                .build()
                .unwrap(),
        ));
        b.args(&["true"]);
        let err = b.run_with(false).unwrap_err();
        assert!(matches!(err, RuntimeError::CgroupConfig(_)), "{err}");
        assert!(err.to_string().contains(word), "{err}");
        assert_eq!(err.exit_code(), 125);
        let _ = b.cleanup();
    }
}

/// A v1 cpuset cgroup accepts tasks only with cpus and mems set. berth sets
/// `cgroup.clone_children` on the levels it creates so that the kernel fills a container's
/// cpuset in; under a parent made without the flag, or one another berth has made but not
/// filled in yet, it copies the values itself. The host's root cpuset is never changed.
#[test]
fn cpuset_cgroups_get_cpus_and_mems_with_or_without_clone_children() {
    if runtime::cgroups::is_v2() {
        return;
    }
    let cpuset = Path::new("/sys/fs/cgroup/cpuset");
    // A level right below the root, as /berth is on a fresh host.
    let top = format!("berth-test-cpuset-{}", std::process::id());
    let parent = cpuset.join(&top);
    let read = |p: &Path, f: &str| fs::read_to_string(p.join(f)).unwrap().trim().to_string();
    let root_flag = read(cpuset, "cgroup.clone_children");
    let host_cpus = read(cpuset, "cpuset.cpus");
    let host_mems = read(cpuset, "cpuset.mems");
    let cgroup = |leaf: &str| runtime::cgroups::for_path(Path::new(&format!("/{top}/{leaf}")));

    let first = cgroup("first").unwrap();
    first.create().unwrap();
    assert_eq!(read(&parent, "cgroup.clone_children"), "1");
    assert_eq!(read(&parent.join("first"), "cpuset.cpus"), host_cpus);
    assert_eq!(read(&parent.join("first"), "cpuset.mems"), host_mems);

    // A parent someone else made: no clone_children, so the new level starts empty.
    fs::write(parent.join("cgroup.clone_children"), "0").unwrap();
    let second = cgroup("second").unwrap();
    second.create().unwrap();
    assert_eq!(read(&parent.join("second"), "cpuset.cpus"), host_cpus);
    assert_eq!(read(&parent.join("second"), "cpuset.mems"), host_mems);
    assert_eq!(read(&parent, "cgroup.clone_children"), "1");

    // A level another berth has just made and not filled in yet (and a level below it).
    let racing = parent.join("racing");
    fs::write(parent.join("cgroup.clone_children"), "0").unwrap();
    fs::create_dir(&racing).unwrap();
    assert_eq!(read(&racing, "cpuset.cpus"), "");
    let third = cgroup("racing/third").unwrap();
    third.create().unwrap();
    assert_eq!(read(&racing.join("third"), "cpuset.cpus"), host_cpus);
    assert_eq!(read(&racing, "cpuset.cpus"), host_cpus);

    assert_eq!(read(cpuset, "cgroup.clone_children"), root_flag);
    for cg in [first, second, third] {
        cg.destroy().unwrap();
    }
    for hierarchy in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = fs::remove_dir(hierarchy.path().join(&top).join("racing"));
        let _ = fs::remove_dir(hierarchy.path().join(&top));
    }
}

/// On cgroup v2 a cgroup that holds processes cannot enable controllers for its children (the
/// "no internal processes" rule: EBUSY), and that is where berth starts inside a container (a
/// CI job): the root of its cgroup namespace holds the container's own processes. berth moves
/// them into a child, `init`, as Docker-in-Docker does, and goes on. A cgroup of the host plays
/// that root here. (v1 has no such rule: nothing to move there.)
#[test]
fn v2_root_holding_processes_is_emptied_into_init() {
    if !runtime::cgroups::is_v2() {
        return;
    }
    let top = Path::new("/sys/fs/cgroup").join(format!("berth-test-nsroot-{}", std::process::id()));
    fs::create_dir(&top).unwrap();
    let mut sleeper = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = sleeper.id().to_string();
    fs::write(top.join("cgroup.procs"), &pid).unwrap();
    use runtime::cgroups::Cgroup as _;
    let cg = runtime::cgroups::V2::with_root(&top, "/berth/c1");
    let made = cg.create();
    let procs = |dir: &Path| fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let moved = procs(&top.join("init"));
    let enabled = fs::read_to_string(top.join("cgroup.subtree_control")).unwrap();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let _ = cg.destroy();
    for dir in ["berth", "init", ""] {
        let _ = fs::remove_dir(top.join(dir));
    }
    made.unwrap();
    assert_eq!(moved.trim(), pid);
    assert!(
        enabled.split_whitespace().any(|c| c == "memory"),
        "{enabled}"
    );
}

/// The cgroup v2 device filter, exercised in this host's unified hierarchy (present
/// next to v1 in the "hybrid" layout; skipped where there is none).
#[test]
fn cgroup_v2_device_filter() {
    let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists());
    let Some(unified) = unified else {
        eprintln!("no cgroup v2 hierarchy: skipped");
        return;
    };
    let dir = unified.join(format!("berth-devtest-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let spec = berth::container::policy::default_spec().unwrap();
    let rules = spec
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    runtime::cgroups::devices_bpf::attach(&dir, &rules).unwrap();
    let script =
        "head -c1 /dev/kmsg > /dev/null && echo KMSG; head -c1 /dev/zero > /dev/null && echo ZERO";
    let outside = Command::new("/bin/busybox")
        .args(["sh", "-c", script])
        .output()
        .unwrap();
    let inside = Command::new("/bin/busybox")
        .args([
            "sh",
            "-c",
            &format!(
                "echo $$ > {}/cgroup.procs && {{ {script}; }}",
                dir.display()
            ),
        ])
        .output()
        .unwrap();
    let _ = fs::remove_dir(&dir);
    assert_eq!(String::from_utf8_lossy(&outside.stdout), "KMSG\nZERO\n");
    assert_eq!(String::from_utf8_lossy(&inside.stdout), "ZERO\n");
}

/// Where the start time goes: `cargo test --release --test runtime -- --ignored
/// timing_variants --nocapture`.
#[test]
#[ignore]
fn timing_variants() {
    type Variant = (&'static str, fn(&mut Spec));
    let variants: [Variant; 5] = [
        ("default", |_| {}),
        ("no /sys/fs/cgroup mount", |s| {
            let m = s.mounts().clone().unwrap();
            s.set_mounts(Some(
                m.into_iter()
                    .filter(|m| m.destination() != Path::new("/sys/fs/cgroup"))
                    .collect(),
            ));
        }),
        ("no network namespace", |s| {
            let l = s.linux_mut().as_mut().unwrap();
            let ns = l.namespaces().clone().unwrap();
            l.set_namespaces(Some(
                ns.into_iter()
                    .filter(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network)
                    .collect(),
            ));
        }),
        ("no seccomp", |s| {
            s.linux_mut().as_mut().unwrap().set_seccomp(None);
        }),
        ("no cgroup", |s| {
            s.linux_mut().as_mut().unwrap().set_cgroups_path(None);
        }),
    ];
    for (name, f) in variants {
        let mut b = Bundle::new("variants");
        b.args(&["true"]);
        f(&mut b.spec);
        b.run();
        let mut v = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            b.run();
            v.push(t.elapsed());
        }
        v.sort();
        eprintln!("{name}: median {:?}", v[v.len() / 2]);
    }
}

#[test]
fn bind_mounts_files_and_volumes() {
    let mut b = Bundle::new("binds");
    let host = scratch().join("binds-host");
    let _ = fs::remove_dir_all(&host);
    fs::create_dir_all(host.join("vol")).unwrap();
    fs::create_dir_all(host.join("ro")).unwrap();
    fs::write(host.join("hostname"), "fromhost\n").unwrap();
    fs::write(host.join("ro/f"), "ro\n").unwrap();
    let bind = |src: &Path, dst: &str, opts: &[&str]| {
        oci_spec::runtime::MountBuilder::default()
            .destination(dst)
            .typ("bind")
            .source(src)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    };
    let mut mounts = b.spec.mounts().clone().unwrap();
    mounts.push(bind(
        &host.join("hostname"),
        "/etc/hostname",
        &["rbind", "ro"],
    ));
    mounts.push(bind(&host.join("vol"), "/data/vol", &["rbind", "rw"]));
    mounts.push(bind(&host.join("ro"), "/ro", &["rbind", "ro"]));
    b.spec.set_mounts(Some(mounts));
    b.args(&[
        "sh",
        "-c",
        "cat /etc/hostname; echo hi > /data/vol/new; cat /ro/f; echo x > /ro/g 2>/dev/null || echo RO",
    ]);
    let (code, out, err) = b.run();
    assert_eq!((code, out.as_str()), (0, "fromhost\nro\nRO\n"), "{err}");
    assert_eq!(fs::read_to_string(host.join("vol/new")).unwrap(), "hi\n");
}

/// Syscalls only the seccomp profile refuses (argument filters, errnoRet), checked with
/// a tiny static C program when gcc is available.
#[test]
fn seccomp_argument_rules() {
    let dir = scratch().join("sc-helper");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("bin")).unwrap();
    let src = dir.join("probe.c");
    fs::write(
        &src,
        r#"#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
static void r(const char *what, long rc) { printf("%s %s\n", what, rc < 0 ? (errno == EPERM ? "EPERM" : errno == ENOSYS ? "ENOSYS" : "ERR") : "OK"); }
int main(void) {
    r("personality-query", syscall(SYS_personality, 0xffffffffUL));
    r("personality-addr-no-randomize", syscall(SYS_personality, 0x0040000UL));
    r("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1 /* thread */, 0));
    r("socket-unix", socket(AF_UNIX, SOCK_STREAM, 0));
    r("socket-vsock", socket(40, SOCK_STREAM, 0));
    r("clone3", syscall(SYS_clone3, NULL, 0));
    long pid = syscall(SYS_clone, (unsigned long)SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    r("clone-plain", pid);
    pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUTS | SIGCHLD), 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    r("clone-newuts", pid);
    return 0;
}
"#,
    )
    .unwrap();
    let built = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(dir.join("bin/probe"))
        .arg(&src)
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        eprintln!("gcc -static not available: skipped");
        return;
    }
    fs::remove_file(&src).unwrap();
    let mut b = Bundle::overlay("scargs", &[&dir, base_layer()]);
    // With CAP_SYS_ADMIN, so only the filter (built for Docker's default caps) refuses.
    let p = b.spec.process_mut().as_mut().unwrap();
    let mut c = p.capabilities().clone().unwrap();
    let add = |s: &Option<oci_spec::runtime::Capabilities>| {
        let mut s = s.clone().unwrap();
        s.insert(Capability::SysAdmin);
        Some(s)
    };
    let (bnd, eff, prm) = (add(c.bounding()), add(c.effective()), add(c.permitted()));
    c.set_bounding(bnd);
    c.set_effective(eff);
    c.set_permitted(prm);
    p.set_capabilities(Some(c));
    b.args(&["/bin/probe"]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "personality-query OK\npersonality-addr-no-randomize EPERM\nkeyctl EPERM\nsocket-unix OK\n\
         socket-vsock EPERM\nclone3 ENOSYS\nclone-plain OK\nclone-newuts EPERM\n"
    );
}

#[test]
fn no_new_privileges() {
    let mut b = Bundle::new("nnp");
    b.spec
        .process_mut()
        .as_mut()
        .unwrap()
        .set_no_new_privileges(Some(true));
    b.args(&["grep", "-E", "NoNewPrivs|Seccomp:", "/proc/self/status"]);
    assert_eq!(b.run().1, "NoNewPrivs:\t1\nSeccomp:\t2\n");
}

/// Pausing freezes every task of the container and resuming thaws it. The kernel shows it
/// differently per version: a task frozen by the v1 freezer sleeps uninterruptibly (state D,
/// in `__refrigerator`); the v2 freezer parks it in `do_freezer_trap` (inlined into
/// `get_signal` on some kernels), an interruptible sleep (state S), and says `frozen 1` in the
/// cgroup's `cgroup.events`.
#[test]
fn freeze_and_thaw() {
    let mut b = Bundle::new("freeze");
    b.args(&["sleep", "10"]);
    let (s, _o, _e) = b.spawn_piped(false);
    let proc_file = |f: &str| fs::read_to_string(format!("/proc/{}/{f}", s.pid)).unwrap();
    let state = || proc_file("stat").split(' ').nth(2).unwrap().to_string();
    let v2 = runtime::cgroups::is_v2();
    let events = || {
        let cgroup = b
            .spec
            .linux()
            .as_ref()
            .unwrap()
            .cgroups_path()
            .clone()
            .unwrap();
        let dir = Path::new("/sys/fs/cgroup").join(cgroup.strip_prefix("/").unwrap());
        fs::read_to_string(dir.join("cgroup.events")).unwrap()
    };
    b.container().pause().unwrap();
    if v2 {
        // do_freezer_trap, or get_signal where it is inlined (Debian 12's 6.1).
        let wchan = proc_file("wchan");
        assert!(
            ["do_freezer_trap", "get_signal"].contains(&wchan.as_str()),
            "{wchan}"
        );
        assert!(events().lines().any(|l| l == "frozen 1"), "{}", events());
    } else {
        assert_eq!(state(), "D", "a frozen task sleeps uninterruptibly");
    }
    b.container().resume().unwrap();
    // Thawed, it runs briefly before it is back asleep in nanosleep.
    let asleep = || state() == "S" && !proc_file("wchan").contains("freezer");
    for _ in 0..200 {
        if asleep() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(asleep(), "{} {}", state(), proc_file("wchan"));
    if v2 {
        assert!(events().lines().any(|l| l == "frozen 0"), "{}", events());
    }
    // cleanup kills what is left, even a container that was frozen.
    b.container().pause().unwrap();
    b.cleanup().unwrap();
    assert_eq!(wait(&s), 128 + libc::SIGKILL);
    b.cleanup().unwrap();
}

#[test]
fn exec_with_pty_and_user() {
    let mut b = Bundle::new("execpty");
    b.args(&["sleep", "10"]);
    let (s, _o, _e) = b.spawn_piped(false);
    let mut p = b.spec.process().clone().unwrap();
    p.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "tty; id -u; echo $$".into(),
    ]));
    let mut user = p.user().clone();
    user.set_uid(65534);
    user.set_gid(65534);
    p.set_user(user);
    let e = b
        .container()
        .exec(&b.spec, &p, b.opts(Stdio::Pty, false))
        .unwrap();
    let master = e.pty_master.as_ref().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = nix::unistd::read(master, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(wait(&e), 0);
    let out = String::from_utf8_lossy(&out);
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(lines[..2], ["/dev/pts/0", "65534"], "{out:?}");
    let pid_in_ns: i32 = lines[2].parse().unwrap();
    assert!(pid_in_ns > 1 && pid_in_ns < 100, "{out:?}");
    nix::sys::signal::kill(s.pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    wait(&s);
}

#[test]
fn sysctl_and_prestart_hook() {
    let mut b = Bundle::new("sysctl");
    let mut sc = HashMap::new();
    sc.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
    b.linux().set_sysctl(Some(sc));
    b.args(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    let (stdio, out_r, _er) = pipes();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let mut opts = b.opts(stdio, false);
    opts.prestart = Some(Box::new(move |pid| {
        // The container exists (its namespaces can be configured) but runs nothing yet.
        let comm = fs::read_to_string(format!("/proc/{pid}/comm"))?;
        *seen2.lock().unwrap() = Some((pid, comm));
        Ok(())
    }));
    let s = b.start(opts).unwrap();
    assert_eq!(read_all(out_r), "1\n");
    assert_eq!(wait(&s), 0);
    let (pid, comm) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(pid, s.pid);
    assert_ne!(comm.trim(), "cat");
    b.cleanup().unwrap();
    // A failing hook aborts the start and leaves no cgroup behind.
    let mut opts = b.opts(
        Stdio::Fds {
            stdin: None,
            stdout: nix::unistd::pipe().unwrap().1,
            stderr: nix::unistd::pipe().unwrap().1,
        },
        false,
    );
    opts.prestart = Some(Box::new(|_| Err("no network".into())));
    let e = b.start(opts).unwrap_err();
    assert_eq!(e.to_string(), "prestart: no network");
    let cg = format!(
        "/sys/fs/cgroup/pids/berth-test/sysctl-{}",
        std::process::id()
    );
    assert!(!Path::new(&cg).exists());
}

#[test]
fn cpu_quota_is_applied() {
    let mut b = Bundle::new("cpu");
    let r = b.resources();
    r.set_cpu(Some(
        oci_spec::runtime::LinuxCpuBuilder::default()
            .quota(50_000i64)
            .period(100_000u64)
            .build()
            .unwrap(),
    ));
    b.args(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null \
         || cat /sys/fs/cgroup/cpu.max",
    ]);
    let out = b.run().1;
    assert!(out == "50000\n100000\n" || out == "50000 100000\n", "{out}");
}

#[test]
fn init_reports_exec_failure() {
    let mut b = Bundle::new("initnope");
    b.args(&["nope"]);
    let e = b.run_with(true).unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
}

#[test]
fn raw_mode_guard_restores_the_terminal() {
    use nix::sys::termios::{LocalFlags, tcgetattr};
    use std::os::fd::AsFd;
    let pty = nix::pty::openpty(None, None).unwrap();
    let before = tcgetattr(&pty.slave).unwrap();
    assert!(
        before
            .local_flags
            .contains(LocalFlags::ECHO | LocalFlags::ICANON)
    );
    {
        let _g = berth::container::tty::RawModeGuard::new(pty.slave.as_fd()).unwrap();
        let raw = tcgetattr(&pty.slave).unwrap();
        assert!(
            !raw.local_flags
                .intersects(LocalFlags::ECHO | LocalFlags::ICANON)
        );
    }
    assert_eq!(
        tcgetattr(&pty.slave).unwrap().local_flags,
        before.local_flags
    );
    berth::container::tty::set_window_size(pty.master.as_fd(), 40, 120).unwrap();
    assert_eq!(
        berth::container::tty::window_size(pty.slave.as_fd()).unwrap(),
        (40, 120)
    );
}

/// The v2 manager against this host's unified hierarchy: create, join, freeze, kill,
/// remove (resource files need controllers, which the hybrid layout's v2 part lacks).
#[test]
fn cgroup_v2_manager_lifecycle() {
    use runtime::cgroups::{Cgroup, V2};
    let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.subtree_control").exists());
    let Some(root) = root else {
        eprintln!("no cgroup v2 hierarchy: skipped");
        return;
    };
    let rel = format!("/berth-test-v2/lifecycle-{}", std::process::id());
    let cg = V2::with_root(root, &rel);
    cg.create().unwrap();
    cg.create().unwrap();
    let mut child = Command::new("/bin/busybox")
        .args(["sleep", "10"])
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    cg.freeze(true).unwrap();
    let dir = root.join(rel.trim_start_matches('/'));
    assert!(
        fs::read_to_string(dir.join("cgroup.events"))
            .unwrap()
            .contains("frozen 1")
    );
    cg.freeze(false).unwrap();
    cg.destroy().unwrap();
    assert!(!child.wait().unwrap().success());
    assert!(!dir.exists());
    cg.destroy().unwrap();
    let _ = fs::remove_dir(root.join("berth-test-v2"));
}

/// The v2 files berth's resources become, written into a plain directory standing in for
/// a cgroup (this host may have no v2 controllers): shares as cpu.weight and a blkio weight
/// as io.weight (runc's conversions) or BFQ's io.bfq.weight where it exists, the cpuset,
/// and the OOM-kill counter read back from memory.events.
#[test]
fn cgroup_v2_resource_files_and_oom_counter() {
    use oci_spec::runtime::{LinuxBlockIo, LinuxCpuBuilder, LinuxResources};
    use runtime::cgroups::{Cgroup, V2};
    let root = scratch().join(format!("fake-v2-{}", std::process::id()));
    let dir = root.join("berth/c1");
    fs::create_dir_all(&dir).unwrap();
    let cg = V2::with_root(&root, "/berth/c1");
    let mut r = LinuxResources::default();
    r.set_cpu(Some(
        LinuxCpuBuilder::default()
            .shares(512u64)
            .cpus("0")
            .mems("0")
            .build()
            .unwrap(),
    ));
    let mut blkio = LinuxBlockIo::default();
    blkio.set_weight(Some(300));
    r.set_block_io(Some(blkio));
    cg.apply(&r).unwrap();
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("cpu.weight"), "20");
    assert_eq!(read("cpuset.cpus"), "0");
    assert_eq!(read("cpuset.mems"), "0");
    assert_eq!(read("io.weight"), "2930");
    // With BFQ the weight keeps v1's scale.
    fs::write(dir.join("io.bfq.weight"), "default 100\n").unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(read("io.bfq.weight"), "300");
    assert_eq!(cg.oom_kills(), 0, "no memory.events: no kills known");
    fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    assert_eq!(cg.oom_kills(), 1);
    fs::remove_dir_all(&root).unwrap();
}

/// glibc programs (bash, procps, apt, python, perl) under the default seccomp profile and
/// capabilities. The image is the host's merged /usr as a lower layer (Debian 12 keeps
/// /bin, /lib, /lib64 in it) plus a small layer with `usr -> /` and /etc files.
#[test]
fn host_programs_run_under_default_profile() {
    if !Path::new("/usr/bin/bash").exists()
        || fs::symlink_metadata("/bin")
            .map(|m| !m.is_symlink())
            .unwrap_or(true)
    {
        eprintln!("needs a merged-/usr host: skipped");
        return;
    }
    let top = scratch().join("hostusr-top");
    let _ = fs::remove_dir_all(&top);
    fs::create_dir_all(top.join("etc")).unwrap();
    std::os::unix::fs::symlink("/", top.join("usr")).unwrap();
    fs::write(top.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    fs::write(top.join("etc/group"), "root:x:0:\n").unwrap();
    let mut b = Bundle::overlay("hostusr", &[&top, Path::new("/usr")]);
    let mut script = String::from("set -e; echo bash $BASH_VERSION | cut -c1-6");
    for (bin, cmd) in [
        ("/usr/bin/ps", "ps -e -o pid=,comm= | head -2"),
        (
            "/usr/bin/apt-get",
            "apt-get --version | head -1 | cut -d' ' -f1",
        ),
        ("/usr/bin/perl", "perl -e 'print \"perl ok\\n\"'"),
        (
            "/usr/bin/python3",
            "python3 -c 'import threading; t=threading.Thread(target=print, args=(\"py ok\",)); t.start(); t.join()'",
        ),
    ] {
        if Path::new(bin).exists() {
            script.push_str("; ");
            script.push_str(cmd);
        }
    }
    b.args(&["/bin/bash", "-c", &script]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "out: {out}\nerr: {err}");
    assert!(out.starts_with("bash 5"), "{out}");
    assert!(out.contains("      1 bash\n"), "{out}");
    eprintln!("{out}");
}

/// `--network container:<id>`-style joining: a namespace with a path is entered, not
/// created.
#[test]
fn join_another_containers_network_namespace() {
    let mut a = Bundle::new("netns-a");
    a.args(&["sleep", "10"]);
    let (sa, _o, _e) = a.spawn_piped(false);
    let theirs = fs::read_link(format!("/proc/{}/ns/net", sa.pid)).unwrap();
    let mut b = Bundle::new("netns-b");
    let l = b.linux();
    let ns: Vec<_> = l
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .map(|mut n| {
            if n.typ() == oci_spec::runtime::LinuxNamespaceType::Network {
                n.set_path(Some(format!("/proc/{}/ns/net", sa.pid).into()));
            }
            n
        })
        .collect();
    l.set_namespaces(Some(ns));
    b.args(&["readlink", "/proc/self/ns/net"]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), theirs.to_str().unwrap());
    nix::sys::signal::kill(sa.pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    wait(&sa);
}

#[test]
fn host_network_keeps_host_sysfs_writable() {
    let mut b = Bundle::new("hostnet");
    let l = b.linux();
    let ns: Vec<_> = l
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .filter(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network)
        .collect();
    l.set_namespaces(Some(ns));
    b.args(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/net; touch /sys/x 2>/dev/null || echo RO",
    ]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let ours = fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(out, format!("{}\nRO\n", ours.display()));
    let host_sys = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = host_sys
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/sys"))
        .unwrap();
    assert!(line.split(' ').nth(5).unwrap().starts_with("rw"), "{line}");
}

#[test]
fn dev_looks_like_dockers() {
    let mut b = Bundle::new("devls");
    b.args(&["ls", "/dev"]);
    let mut want = vec![
        "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero",
    ];
    if Path::new("/proc/kcore").exists() {
        want.insert(0, "core");
    }
    let out = b.run().1;
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
}

#[test]
fn init_with_pty_gives_the_command_the_foreground() {
    let mut b = Bundle::new("initpty");
    // stat fields 5 and 8 of `cut` (in sh's process group): pgrp and the terminal's
    // foreground group.
    b.args(&["sh", "-c", "echo $$; cut -d' ' -f5,8 /proc/self/stat"]);
    let s = b.spawn(Stdio::Pty, true).unwrap();
    let master = s.pty_master.as_ref().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = nix::unistd::read(master, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(wait(&s), 0);
    let out = String::from_utf8_lossy(&out);
    assert_eq!(out, "2\r\n2 2\r\n");
}

/// A detached supervisor may have closed fds 0-2, so spawn's own pipes get those
/// numbers; the container's stdio must still be what was asked for.
#[test]
fn spawn_from_a_process_without_stdio() {
    if let Some(result) = std::env::var_os("BERTH_RT_NO_STDIO_RESULT") {
        // Child run: fds 0-2 are closed. Open the output file and move it up so 0-2 stay
        // free for spawn's pipes.
        let f = fs::File::create(&result).unwrap();
        let high = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)).unwrap();
        drop(f);
        // Rust's runtime reopened 0-2 on /dev/null at startup; close them for real.
        for fd in 0..3 {
            // SAFETY: nothing in this test process uses its stdio from here on.
            unsafe { libc::close(fd) };
        }
        // SAFETY: fresh fd from F_DUPFD.
        let out: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(high) };
        let err = out.try_clone().unwrap();
        let err = {
            let fd = nix::fcntl::fcntl(&err, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)).unwrap();
            // SAFETY: as above.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        };
        let mut b = Bundle::new("nostdio");
        b.args(&[
            "sh",
            "-c",
            "echo out; echo err >&2; ls /proc/self/fd | wc -l",
        ]);
        let s = b
            .spawn(
                Stdio::Fds {
                    stdin: None,
                    stdout: out,
                    stderr: err,
                },
                false,
            )
            .unwrap();
        assert_eq!(wait(&s), 0);
        return;
    }
    let result = scratch().join("nostdio.out");
    let _ = fs::remove_file(&result);
    let st = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "spawn_from_a_process_without_stdio",
            "--test-threads=1",
        ])
        .env("BERTH_RT_NO_STDIO_RESULT", &result)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{st:?}");
    assert_eq!(fs::read_to_string(&result).unwrap(), "out\nerr\n4\n");
}

/// 32-bit x86 binaries use other syscall numbers: the filter has an i386 section.
/// Built from assembly (`as --32`, `ld -m elf_i386`), so no multilib libc is needed.
#[test]
#[cfg(target_arch = "x86_64")]
fn seccomp_covers_i386_binaries() {
    let dir = scratch().join("i386-layer");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("bin")).unwrap();
    // write(1, "ok\n", 3); r = keyctl(0, -1, 0); exit(-r)  → exit 1 when seccomp says EPERM
    let src = ".globl _start\n_start:\n mov $4, %eax\n mov $1, %ebx\n mov $msg, %ecx\n \
               mov $3, %edx\n int $0x80\n mov $288, %eax\n xor %ebx, %ebx\n mov $-1, %ecx\n \
               int $0x80\n mov %eax, %ebx\n neg %ebx\n mov $1, %eax\n int $0x80\n\
               .data\nmsg: .ascii \"ok\\n\"\n";
    fs::write(dir.join("t.s"), src).unwrap();
    let ok = Command::new("as")
        .args(["--32", "-o"])
        .arg(dir.join("t.o"))
        .arg(dir.join("t.s"))
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("ld")
            .args(["-m", "elf_i386", "-static", "-o"])
            .arg(dir.join("bin/t32"))
            .arg(dir.join("t.o"))
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("binutils with i386 support not available: skipped");
        return;
    }
    fs::remove_file(dir.join("t.s")).unwrap();
    fs::remove_file(dir.join("t.o")).unwrap();
    let mut b = Bundle::overlay("i386", &[&dir, base_layer()]);
    b.args(&["/bin/t32"]);
    assert_eq!(b.run(), (1, "ok\n".into(), String::new()));
}
