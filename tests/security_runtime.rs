//! Security checklist, runtime cases 30–40 (docs/SECURITY.md): what a container (or an
//! image made to attack the runtime) can do to the host: reach host files through leaked
//! descriptors or /proc/self/exe, read or write the kernel's interfaces in /proc and /sys,
//! plant symlinks where the runtime mounts, keep capabilities or groups it should not have,
//! open host devices, change the host's mounts, outlive `stop`, or get host code to load its
//! libraries. Tests are named after the advisory they guard against, else `case_N_…`.
//! Black-box through `berth run`/`exec` on the fixture busybox (tests/common/run_cli.rs) or an
//! image built here (tests/common/sandbox.rs), and, for the runtime library alone, on OCI
//! bundles (tests/common/bundle.rs).
//!
//! Run as root: `cargo test --release --test security_runtime`.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::bundle::{Bundle, base_layer, scratch};
use common::fault_registry::{TarBuilder, TarEntry};
use common::lab::{Lab, top_pids};
use common::net::{OtherNetns, http_get_retry, nginx, setup};
use common::output::{describe, text};
use common::procs::alive;
use common::run_cli::{
    DEFAULT_CAPS, container_status, host_mountinfo, root_with, run_ok, sh_ok, sh_out, status_field,
};
use common::sandbox::{Sandbox, busybox_rootfs, pull_layers, sha256_file};
use common::wait::wait_until;
use common::{BUSYBOX, TestRoot};
use std::fs;

#[test]
fn cve_2022_24769_default_capabilities_and_empty_inheritable_set() {
    let root = root_with("caps", BUSYBOX);
    let status = container_status(&root, &[]);
    for key in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(status_field(&status, key), DEFAULT_CAPS, "{key}");
    }
    assert_eq!(status_field(&status, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&status, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    assert_eq!(status_field(&status, "NoNewPrivs"), "0");
}

#[test]
fn case_32_proc_kcore_is_empty_and_sysrq_is_read_only() {
    let root = root_with("procmask", BUSYBOX);
    let out = run_ok(
        &root,
        &[
            BUSYBOX,
            "sh",
            "-c",
            "echo kcore=$(cat /proc/kcore | wc -c); \
             echo keys=$(cat /proc/keys 2>/dev/null | wc -c); \
             if echo h > /proc/sysrq-trigger; then echo sysrq=written; else echo sysrq=refused; fi; \
             if echo 1 > /proc/sys/kernel/sysrq; then echo sys=written; else echo sys=refused; fi; \
             ls /sys/firmware | wc -l",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["kcore=0", "keys=0", "sysrq=refused", "sys=refused", "0"],
        "{out}"
    );
}

#[test]
fn case_35_block_device_node_cannot_be_read() {
    let root = root_with("mknod", BUSYBOX);
    let out = sh_out(
        &root,
        "mknod /tmp/b b 8 0 || exit 10; echo made; cat /tmp/b > /dev/null",
    );
    assert_eq!(text(&out.stdout), "made\n", "{}", describe(&out));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        describe(&out)
    );
}

#[test]
fn cve_2024_21626_pid1_has_only_stdio_open() {
    let root = root_with("fds", BUSYBOX);
    // `; true` keeps sh as PID 1 (busybox sh execs a lone last command); ls is its child.
    let out = sh_ok(&root, &[], "ls /proc/1/fd; true");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"]);
    // And the same for the user's command itself (fd 3 is ls's own directory handle).
    let out = run_ok(&root, &[BUSYBOX, "ls", "/proc/self/fd"]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
}

#[test]
fn case_36_host_mount_table_unchanged() {
    let root = root_with("mounts", BUSYBOX);
    let vol = root.dir.join("bind");
    std::fs::create_dir_all(vol.join("sub")).unwrap();
    let before = host_mountinfo();
    let bind = format!("{}:/data", vol.display());
    // A privileged container mounts inside its bind mount: nothing propagates out.
    let out = run_ok(
        &root,
        &[
            "--privileged",
            "-v",
            &bind,
            BUSYBOX,
            "sh",
            "-c",
            "mount -t tmpfs none /data/sub && mount -t tmpfs none /tmp && grep -c tmpfs /proc/mounts",
        ],
    );
    assert_ne!(out.trim(), "0");
    run_ok(
        &root,
        &[
            "-v",
            &bind,
            "-v",
            "named:/named",
            "--tmpfs",
            "/scratch",
            BUSYBOX,
            "sh",
            "-c",
            "mount -t tmpfs none /mnt 2>/dev/null; true",
        ],
    );
    let after = host_mountinfo();
    let added: Vec<_> = after.difference(&before).collect();
    let removed: Vec<_> = before.difference(&after).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "added {added:#?}\nremoved {removed:#?}"
    );
}

/// A zombie is made by an orphan whose parent (PID 1 unless --init) never reaps: PID 1 is
/// `sleep`, which does not wait for children.
const ZOMBIE_SCRIPT: &str = "( (sleep 0.1 &); sleep 1; \
     for f in /proc/[0-9]*/stat; do read -r l < $f; echo $l; done ) & exec sleep 2";

fn zombies(stat_lines: &str) -> Vec<&str> {
    stat_lines
        .lines()
        .filter(|l| l.split(") ").nth(1).is_some_and(|r| r.starts_with("Z ")))
        .collect()
}

#[test]
fn case_38_init_reaps_zombies() {
    let root = root_with("init", BUSYBOX);
    // Without --init the orphan stays a zombie: the check below can fail.
    let out = sh_ok(&root, &[], ZOMBIE_SCRIPT);
    assert_eq!(zombies(&out).len(), 1, "a zombie without --init:\n{out}");
    let out = sh_ok(&root, &["--init"], ZOMBIE_SCRIPT);
    assert_eq!(zombies(&out), Vec::<&str>::new(), "{out}");
    let pid1 = out.lines().find(|l| l.starts_with("1 (")).unwrap();
    assert!(
        !pid1.starts_with("1 (sleep)"),
        "PID 1 is berth's init: {pid1}"
    );
}

/// uid 4294967295 is (u32)-1, "unchanged" to setresuid: it would run as root. Docker
/// refuses ids above 2^31-1: 125 for run, 126 for exec.
#[test]
fn cve_2024_40635_user_ids_out_of_range_are_refused() {
    let root = TestRoot::new("uid-range");
    for user in ["4294967295", "0:4294967295"] {
        let err = root.fails(&["run", "--rm", "-u", user, BUSYBOX, "id"], 125);
        assert!(
            err.contains("uids and gids must be in range 0-2147483647"),
            "{err}"
        );
    }
    root.ok(&["run", "-d", "--name", "uidc", BUSYBOX, "sleep", "1000"]);
    let err = root.fails(&["exec", "-u", "4294967295", "uidc", "id"], 126);
    assert!(
        err.contains("uids and gids must be in range 0-2147483647"),
        "{err}"
    );
    root.ok(&["rm", "-f", "uidc"]);
}

/// CVE-2019-5736: with --init, PID 1 is still berth's own image; container processes
/// must not be able to open it through /proc/1/exe.
#[test]
fn cve_2019_5736_init_exe_is_not_reachable() {
    let mut b = Bundle::new("initexe");
    b.args(&[
        "sh",
        "-c",
        "cat /proc/1/exe > /dev/null 2>&1 && echo READ; readlink /proc/1/exe 2>/dev/null || echo HIDDEN; \
         readlink /proc/1/fd/0 2>/dev/null || echo FDS-HIDDEN",
    ]);
    let (code, out, _) = b.run_with(true).unwrap();
    assert_eq!((code, out.as_str()), (0, "HIDDEN\nFDS-HIDDEN\n"));
}

/// CVE-2024-21626: a working directory that names an inherited fd must not put the
/// process in a host directory.
#[test]
fn cve_2024_21626_cwd_through_leaked_fd_is_refused() {
    let mut b = Bundle::new("cwdleak");
    for fd in ["3", "4", "5", "6", "7", "8"] {
        b.spec
            .process_mut()
            .as_mut()
            .unwrap()
            .set_cwd(PathBuf::from(format!("/proc/self/fd/{fd}")));
        b.args(&["pwd"]);
        match b.run_with(false) {
            Err(e) => assert_eq!(e.exit_code(), 125, "{e}"),
            Ok((_, out, _)) => panic!("ran in {out}"),
        }
    }
}

#[test]
fn cve_2023_28642_symlinked_proc_cannot_escape() {
    let host_target = scratch().join("evil-target");
    let _ = fs::remove_dir_all(&host_target);
    fs::create_dir_all(&host_target).unwrap();
    let layer = scratch().join("evil-layer");
    let _ = fs::remove_dir_all(&layer);
    fs::create_dir_all(layer.join("dev")).unwrap();
    std::os::unix::fs::symlink(&host_target, layer.join("proc")).unwrap();
    std::os::unix::fs::symlink(&host_target, layer.join("dev/shm")).unwrap();
    let before = host_mountinfo();
    let mut b = Bundle::overlay("evil", &[&layer, base_layer()]);
    b.args(&["sh", "-c", "cat /proc/1/comm"]);
    let (code, out, err) = b.run();
    assert_eq!((code, out.as_str()), (0, "cat\n"), "{err}");
    assert_eq!(before, host_mountinfo());
    assert_eq!(fs::read_dir(&host_target).unwrap().count(), 0);
}

/// CVE-2024-21626 through the command line: `-w /proc/self/fd/N` for every N a leaked
/// descriptor could have (3–64), on `run` and on `exec`, never leaves the process with a
/// working directory outside the container's root.
#[test]
fn cve_2024_21626_workdir_through_a_leaked_fd_run_and_exec() {
    let root = root_with("cwd-fd", BUSYBOX);
    // Inside the container's root, `..` from the working directory ends at its `/`, where
    // the marker is; from a host directory it climbs to the host's `/`, which has none.
    let script = "touch /.berth-marker; \
                  [ -e ../../../../../../../../../../../../.berth-marker ] || echo OUTSIDE $(pwd -P)";
    root.ok(&[
        "run",
        "-d",
        "--name",
        "ct",
        BUSYBOX,
        "sh",
        "-c",
        "exec sleep 1000",
    ]);
    for n in 3..=64 {
        let wd = format!("/proc/self/fd/{n}");
        for args in [
            vec!["run", "--rm", "-w", &wd, BUSYBOX, "sh", "-c", script],
            vec!["exec", "-w", &wd, "ct", "sh", "-c", script],
        ] {
            let out = root.run(&args);
            let stdout = text(&out.stdout);
            assert!(
                !stdout.contains("OUTSIDE"),
                "{args:?} ran outside the container: {}",
                describe(&out)
            );
        }
    }
    root.ok(&["rm", "-f", "ct"]);
}

/// CVE-2019-5736: an image whose /bin/sh is `#!/proc/self/exe` makes the kernel run the
/// runtime's own binary inside the container when `exec` starts /bin/sh; a process in the
/// container that opens /proc/PID/exe of it for writing, over and over, must never change the
/// host's berth binary. (Run on a copy, so a failure cannot break the other tests.)
#[test]
fn cve_2019_5736_proc_self_exe_overwrite() {
    let sandbox = Sandbox::new("selfexe");
    let berth = sandbox.dir.join("berth-copy");
    fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
    let before = sha256_file(&berth);
    let mut sh = TarEntry::new("bin/sh", tar::EntryType::Regular);
    sh.data = b"#!/proc/self/exe\n".to_vec();
    sh.mode = 0o755;
    // berth's shared libraries, so that the kernel can really run it in there.
    let mut tar = busybox_rootfs().entry(sh);
    let ldd = Command::new("ldd").arg(&berth).output().unwrap();
    for path in text(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let mut lib = TarEntry::new(path.trim_start_matches('/'), tar::EntryType::Regular);
        lib.data = fs::read(path).unwrap();
        lib.mode = 0o755;
        tar = tar.entry(lib);
    }
    let (_registry, _image, reference) = pull_layers(&sandbox, "evil/selfexe", &[tar.finish()]);
    let run = |args: &[&str]| {
        common::sandbox::wait_outcome(sandbox.command_with(&berth, args).spawn().unwrap(), args)
    };
    run(&[
        "run",
        "-d",
        "--name",
        "evil",
        &reference,
        "/bin/busybox",
        "sh",
        "-c",
        "while :; do for f in /proc/[0-9]*/exe; do \
           /bin/busybox readlink $f | /bin/busybox grep -q busybox && continue; \
           (echo pwned > $f) 2>/dev/null && echo WROTE $f >> /tmp/log; \
         done; done",
    ])
    .assert_ok();
    for i in 0..100 {
        // The kernel runs berth for /bin/sh: berth refuses its arguments and exits.
        let outcome = run(&["exec", "evil", "/bin/sh", "-c", "true"]);
        if i == 0 {
            eprintln!("berth as the container's /bin/sh: {outcome:?}");
        }
    }
    let log = run(&["exec", "evil", "/bin/busybox", "cat", "/tmp/log"]);
    run(&["rm", "-f", "evil"]);
    assert_eq!(
        sha256_file(&berth),
        before,
        "the host's berth binary was changed"
    );
    assert!(!log.stdout.contains("WROTE"), "{}", log.stdout);
}

/// Docker's masked and read-only paths, and the mount flags of /proc and /sys
/// (CVE-2019-16884, CVE-2019-19921 and CVE-2025-52881 are about keeping exactly these).
#[test]
fn case_32_dockers_masked_and_read_only_paths() {
    let root = root_with("masked", BUSYBOX);
    let masked = [
        "/proc/acpi",
        "/proc/asound",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/sys/devices/virtual/powercap",
        "/sys/firmware",
    ];
    let mut script = String::new();
    for path in masked {
        script.push_str(&format!(
            "if [ -d {path} ]; then echo {path}=$(ls -A {path} | wc -l); \
             elif [ -e {path} ]; then echo {path}=$(cat {path} 2>/dev/null | wc -c); fi; "
        ));
    }
    for path in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        script.push_str(&format!(
            "[ ! -e {path} ] || grep ' {path} ' /proc/self/mountinfo | grep -q ' ro,' \
             || echo {path}=writable; "
        ));
    }
    script.push_str(
        "for m in /sys /sys/fs/cgroup; do grep \" $m \" /proc/self/mountinfo | grep -q ' ro,' \
         || echo $m=writable; done; \
         grep ' /proc ' /proc/self/mountinfo | head -1 | cut -d' ' -f6",
    );
    let out = sh_ok(&root, &[], &script);
    let mut lines: Vec<&str> = out.lines().collect();
    let proc_flags = lines.pop().unwrap();
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(
            proc_flags.split(',').any(|f| f == flag),
            "/proc is {proc_flags}"
        );
    }
    for line in lines {
        assert!(
            line.ends_with("=0"),
            "not masked or not read-only: {line}\n{out}"
        );
    }
    // thermal_throttle lives under each CPU: masked wherever it exists.
    let out = sh_ok(
        &root,
        &[],
        "for d in /sys/devices/system/cpu/cpu*/thermal_throttle; do [ -d $d ] && ls -A $d | wc -l; done; true",
    );
    assert!(out.lines().all(|l| l == "0"), "{out}");
}

/// CVE-2026-41579 (with runc's CVE-2025-31133 and CVE-2023-28642): an image whose /dev is a
/// symlink out of the root, or whose /dev/ptmx or /dev/null is one, must not make the runtime
/// mount, create or chmod anything outside; the host's /dev/ptmx stays as it was.
#[test]
fn cve_2026_41579_dev_symlink_images_do_not_touch_the_host() {
    let sandbox = Sandbox::new("devlink");
    let outside = sandbox.outside();
    let ptmx_before = fs::symlink_metadata("/dev/ptmx").unwrap();
    let absolute = TarBuilder::new().symlink("dev", outside.as_os_str().as_encoded_bytes());
    let relative =
        TarBuilder::new().symlink("dev", common::sandbox::climbing_to(&outside).into_bytes());
    let inner = TarBuilder::new()
        .dir("dev")
        .symlink("dev/ptmx", "/host-ptmx-target")
        .symlink(
            "dev/null",
            outside.join("null").as_os_str().as_encoded_bytes(),
        )
        .symlink("dev/pts", outside.as_os_str().as_encoded_bytes());
    for (i, top) in [absolute, relative, inner].into_iter().enumerate() {
        let base = busybox_rootfs().finish();
        let (_registry, _image, reference) =
            pull_layers(&sandbox, &format!("evil/devlink{i}"), &[base, top.finish()]);
        let outcome = sandbox.run(&[
            "run",
            "--rm",
            &reference,
            "sh",
            "-c",
            "ls /dev >/dev/null; echo x > /dev/null; true",
        ]);
        eprintln!("image {i}: {outcome:?}");
        assert_eq!(
            names_in_dir(&outside),
            BTreeSet::new(),
            "image {i} wrote outside"
        );
        let ptmx = fs::symlink_metadata("/dev/ptmx").unwrap();
        assert_eq!(
            (ptmx.mode(), ptmx.uid(), ptmx.gid(), ptmx.rdev(), ptmx.ino()),
            (
                ptmx_before.mode(),
                ptmx_before.uid(),
                ptmx_before.gid(),
                ptmx_before.rdev(),
                ptmx_before.ino()
            ),
            "image {i} changed the host's /dev/ptmx"
        );
        assert!(!Path::new("/host-ptmx-target").exists());
    }
    assert_eq!(
        fs::metadata(&outside).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

fn names_in_dir(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// CVE-2022-36109: the supplementary groups of a container process include its primary
/// group (a file denying that group must stay denied), for named and numeric users.
#[test]
fn cve_2022_36109_supplementary_groups_include_the_primary_group() {
    let sandbox = Sandbox::new("groups");
    let mut passwd = TarEntry::new("etc/passwd", tar::EntryType::Regular);
    passwd.data = b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/tmp:/bin/sh\n".to_vec();
    let mut group = TarEntry::new("etc/group", tar::EntryType::Regular);
    group.data = b"root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n".to_vec();
    let tar = busybox_rootfs().entry(passwd).entry(group).finish();
    let (_registry, _image, reference) = pull_layers(&sandbox, "ok/groups", &[tar]);
    for (user, want) in [
        ("alice", &["1000", "50"][..]),
        ("1000:1000", &["1000"][..]),
        ("1000:2000", &["2000"][..]),
    ] {
        let outcome = sandbox.run(&[
            "run",
            "--rm",
            "-u",
            user,
            &reference,
            "cat",
            "/proc/self/status",
        ]);
        outcome.assert_ok();
        let groups: BTreeSet<&str> = status_field(&outcome.stdout, "Groups")
            .split_whitespace()
            .collect();
        for gid in want {
            assert!(
                groups.contains(gid),
                "-u {user}: Groups {groups:?} lack {gid}"
            );
        }
    }
}

/// CVE-2019-14271: nothing berth runs on the host loads libraries from a container's root.
/// An image carrying NSS modules that would leave a mark if loaded (and an nsswitch.conf
/// naming them), with files of users the host does not know: `export` (running and stopped),
/// `commit`, `diff`, `top`, `run -u` and `exec -u` never load them.
#[test]
fn cve_2019_14271_container_libnss_is_never_loaded() {
    let sandbox = Sandbox::new("libnss");
    let marker = sandbox.dir.join("nss-loaded");
    let source = sandbox.dir.join("evil.c");
    fs::write(
        &source,
        format!(
            "#include <fcntl.h>\n#include <unistd.h>\n\
             __attribute__((constructor)) static void mark(void) {{\n\
             int fd = open(\"{}\", O_WRONLY | O_CREAT | O_APPEND, 0644);\n\
             if (fd >= 0) {{ write(fd, \"loaded\\n\", 7); close(fd); }}\n\
             fd = open(\"/nss-loaded\", O_WRONLY | O_CREAT | O_APPEND, 0644);\n\
             if (fd >= 0) {{ write(fd, \"loaded\\n\", 7); close(fd); }}\n}}\n",
            marker.display()
        ),
    )
    .unwrap();
    let lib = sandbox.dir.join("evil.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&source)
        .status()
        .expect("cc");
    assert!(status.success(), "cc failed");
    let evil = fs::read(&lib).unwrap();
    let mut tar = busybox_rootfs();
    for dir in [
        "lib",
        "lib64",
        "usr",
        "usr/lib",
        "lib/x86_64-linux-gnu",
        "usr/lib/x86_64-linux-gnu",
    ] {
        tar = tar.dir(dir);
    }
    for dir in [
        "lib",
        "lib64",
        "usr/lib",
        "lib/x86_64-linux-gnu",
        "usr/lib/x86_64-linux-gnu",
    ] {
        for name in [
            "libnss_files.so.2",
            "libnss_evil.so.2",
            "libnss_compat.so.2",
            "libnftables.so.1",
        ] {
            let mut entry = TarEntry::new(format!("{dir}/{name}"), tar::EntryType::Regular);
            entry.data = evil.clone();
            entry.mode = 0o755;
            tar = tar.entry(entry);
        }
    }
    let mut nsswitch = TarEntry::new("etc/nsswitch.conf", tar::EntryType::Regular);
    nsswitch.data = b"passwd: evil files\ngroup: evil files\nhosts: evil files\n".to_vec();
    let mut passwd = TarEntry::new("etc/passwd", tar::EntryType::Regular);
    passwd.data = b"root:x:0:0:root:/root:/bin/sh\nbob:x:4321:4321::/tmp:/bin/sh\n".to_vec();
    let mut owned = TarEntry::new("owned-by-4321", tar::EntryType::Regular);
    owned.uid = 4321;
    owned.gid = 4321;
    owned.data = b"x".to_vec();
    let tar = tar.entry(nsswitch).entry(passwd).entry(owned).finish();
    let (_registry, _image, reference) = pull_layers(&sandbox, "evil/libnss", &[tar]);

    sandbox
        .run(&[
            "run", "-d", "--name", "ct", "-u", "bob", &reference, "sleep", "1000",
        ])
        .assert_ok();
    sandbox
        .run(&["exec", "-u", "bob", "ct", "touch", "/tmp/by-bob"])
        .assert_ok();
    sandbox.run(&["top", "ct"]).assert_ok();
    sandbox.run(&["diff", "ct"]).assert_ok();
    let export = sandbox.dir.join("running.tar");
    sandbox
        .run(&["export", "-o", export.to_str().unwrap(), "ct"])
        .assert_ok();
    sandbox.run(&["commit", "ct", "committed:1"]).assert_ok();
    sandbox.run(&["stop", "-t", "0", "ct"]).assert_ok();
    let export = sandbox.dir.join("stopped.tar");
    sandbox
        .run(&["export", "-o", export.to_str().unwrap(), "ct"])
        .assert_ok();
    let saved = sandbox.dir.join("saved.tar");
    sandbox
        .run(&["save", "-o", saved.to_str().unwrap(), "committed:1"])
        .assert_ok();
    assert!(!marker.exists(), "berth loaded the container's NSS module");
    let found: Vec<PathBuf> = common::sandbox::walk(&sandbox.root())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "nss-loaded"))
        .collect();
    assert!(
        found.is_empty(),
        "the module ran inside the container root: {found:?}"
    );
    sandbox.run(&["rm", "ct"]).assert_ok();
}

/// moby#45610 and moby#41872: a port published on 127.0.0.1 must not be reachable from the
/// LAN through the DNAT rule (here: from another network namespace routed via the host).
#[test]
fn case_37_loopback_only_publish_is_not_reachable_from_another_netns() {
    let (_lock, root) = setup("net-loopback");
    root.ok(&[
        "run",
        "-d",
        "--name",
        "local",
        "-p",
        "127.0.0.1:18081:80",
        "-p",
        "18082:80",
        &nginx(),
    ]);
    http_get_retry("127.0.0.1:18081");
    let port = root.ok(&["port", "local"]);
    assert!(port.contains("80/tcp -> 127.0.0.1:18081"), "{port}");
    let ns = OtherNetns::new();
    // The control: the all-addresses port answers from the other namespace...
    assert!(ns.get("http://10.199.0.1:18082/"));
    // ...the loopback-only one does not.
    assert!(!ns.get("http://10.199.0.1:18081/"));
    drop(ns);
    // That the host's networking is as before once the container is gone is network.rs's to
    // check: the other tests here start bridged containers meanwhile.
    root.ok(&["rm", "-f", "local"]);
}

#[test]
fn case_38_stop_kills_after_the_timeout_when_sigterm_is_ignored() {
    let lab = Lab::new("stop-kill");
    let id = lab.run_d_sh(
        "ct",
        "trap '' TERM; sleep 1000 & while :; do sleep 0.1; done",
    );
    std::thread::sleep(Duration::from_millis(300));
    let pids = top_pids(&lab, "ct");
    assert!(pids.len() >= 2, "top shows {pids:?}");
    let started = Instant::now();
    lab.ok_within(&["stop", "-t", "2", "ct"], Duration::from_secs(20));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "stop -t 2 took {took:?}"
    );
    let status = lab.status_of("ct");
    assert!(status.starts_with("Exited (137) "), "status {status:?}");
    assert_eq!(lab.inspect(&id)["State"]["ExitCode"], 137);
    // Every process of the container died, not only its init.
    assert!(
        wait_until(Duration::from_secs(2), || pids.iter().all(|p| !alive(*p))),
        "still alive: {:?}",
        pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
}
