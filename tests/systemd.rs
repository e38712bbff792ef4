//! The systemd cgroup driver (issue 17; berth-runc's `--systemd-cgroup`, issue 16): on a host
//! where systemd is PID 1 and the cgroup hierarchy is v2, each container is a transient scope
//! `berth-<id>.scope` in `berth.slice` with its limits as unit properties, and its monitor a
//! scope of its own, so stopping the unit that ran `berth run -d` leaves the container alone.
//! Everything here needs such a host (the test VM, `vagrant/qemu-vm test --test systemd`);
//! elsewhere each test prints why it is skipped and passes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::BUSYBOX;
use common::lab::Lab;
use common::output::{describe, text};
use common::procs::{alive, cgroup_procs};
use common::wait::{run_timeout, wait_until};

/// Why this host cannot run the systemd driver's tests, if it cannot.
fn unsupported() -> Option<String> {
    let init = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if init.trim() != "systemd" {
        return Some(format!("PID 1 is {:?}, not systemd", init.trim()));
    }
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Some("/sys/fs/cgroup is not the unified (v2) hierarchy".into());
    }
    None
}

/// One test at a time: one of them re-executes systemd, which drops every D-Bus client.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

macro_rules! require_systemd {
    ($test:expr) => {
        if let Some(why) = unsupported() {
            eprintln!("skipped {}: {why}", $test);
            return;
        }
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    };
}

const SCOPES: &str = "/sys/fs/cgroup/berth.slice";

fn scope_dir(id: &str) -> PathBuf {
    Path::new(SCOPES).join(format!("berth-{id}.scope"))
}

fn monitor_scope(id: &str) -> String {
    format!("berth-monitor-{id}.scope")
}

fn systemctl(args: &[&str]) -> String {
    let mut cmd = Command::new("systemctl");
    cmd.args(args);
    let out = run_timeout(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "systemctl {args:?}: {}",
        describe(&out)
    );
    text(&out.stdout)
}

/// `systemctl show UNIT -p NAME` for each name, as name → value.
fn show(unit: &str, props: &[&str]) -> std::collections::BTreeMap<String, String> {
    let mut args = vec!["show", unit];
    for p in props {
        args.push("-p");
        args.push(p);
    }
    systemctl(&args)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A unit systemd no longer has (stopped and collected).
fn unit_gone(unit: &str) -> bool {
    show(unit, &["LoadState"])
        .get("LoadState")
        .map(String::as_str)
        == Some("not-found")
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

/// The cgroup (v2) a process is in.
fn cgroup_of(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_default()
        .to_string()
}

/// The limits berth wrote to the scope's files and gave systemd as properties agree, now.
fn check_limits(id: &str, pids_max: &str) {
    let dir = scope_dir(id);
    assert_eq!(read(&dir, "memory.max"), "67108864");
    assert_eq!(read(&dir, "pids.max"), pids_max);
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    assert_eq!(read(&dir, "cpu.weight"), "20");
    let unit = format!("berth-{id}.scope");
    let props = show(
        &unit,
        &[
            "MemoryMax",
            "TasksMax",
            "CPUQuotaPerSecUSec",
            "CPUWeight",
            "Delegate",
            "Slice",
            "ControlGroup",
            "ActiveState",
        ],
    );
    let expect = [
        ("MemoryMax", "67108864"),
        ("TasksMax", pids_max),
        ("CPUQuotaPerSecUSec", "500ms"),
        ("CPUWeight", "20"),
        ("Delegate", "yes"),
        ("Slice", "berth.slice"),
        ("ActiveState", "active"),
    ];
    for (k, v) in expect {
        assert_eq!(
            props.get(k).map(String::as_str),
            Some(v),
            "{unit} {k}: {props:?}"
        );
    }
    assert_eq!(
        props.get("ControlGroup").map(String::as_str),
        Some(format!("/berth.slice/berth-{id}.scope").as_str())
    );
}

#[test]
fn the_container_is_a_scope_in_berths_slice_with_its_limits_through_reloads() {
    require_systemd!("the_container_is_a_scope_in_berths_slice_with_its_limits_through_reloads");
    let lab = Lab::new("sd-scope");
    let id = lab.run_d(&[
        "--name",
        "sd-scope",
        "--memory",
        "64m",
        "--pids-limit",
        "42",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        BUSYBOX,
        "sleep",
        "1000",
    ]);
    let pid = lab.state_pid(&id, "pid");
    let monitor = lab.state_pid(&id, "monitor_pid");
    assert!(alive(pid) && alive(monitor));
    assert_eq!(cgroup_of(pid), format!("/berth.slice/berth-{id}.scope"));
    assert!(cgroup_procs(&scope_dir(&id)).contains(&pid));
    assert_eq!(
        cgroup_of(monitor),
        format!("/berth.slice/{}", monitor_scope(&id)),
        "the monitor is in a scope of its own"
    );
    check_limits(&id, "42");

    // systemd writes its units' properties back on reload and re-exec: the same values.
    systemctl(&["daemon-reload"]);
    check_limits(&id, "42");
    systemctl(&["daemon-reexec"]);
    assert!(
        wait_until(Duration::from_secs(30), || Command::new("systemctl")
            .args(["show", "-p", "Version"])
            .output()
            .is_ok_and(|o| o.status.success())),
        "systemd is back after daemon-reexec"
    );
    check_limits(&id, "42");
    assert!(alive(pid) && alive(monitor), "a reload touches neither");
    assert_eq!(cgroup_of(pid), format!("/berth.slice/berth-{id}.scope"));

    // The device filter is berth's, and still there: no block device opens.
    let out = lab.run(&[
        "exec",
        "sd-scope",
        "sh",
        "-c",
        "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda",
    ]);
    assert!(
        !out.status.success(),
        "a block device opened: {}",
        describe(&out)
    );

    // update: the property and the file.
    lab.ok(&["update", "--pids-limit", "50", "sd-scope"]);
    check_limits(&id, "50");
    systemctl(&["daemon-reload"]);
    check_limits(&id, "50");

    lab.ok(&["rm", "-f", "sd-scope"]);
    assert!(
        wait_until(Duration::from_secs(10), || !scope_dir(&id).exists()
            && unit_gone(&format!("berth-{id}.scope"))
            && unit_gone(&monitor_scope(&id))),
        "the scopes are gone after rm -f"
    );
}

/// Runs `berth ARGS…` as the oneshot service `unit` (RemainAfterExit: the unit, and its
/// cgroup, stay until stopped), returning once the command has finished.
fn run_as_service(lab: &Lab, unit: &str, args: &[&str]) {
    let _ = Command::new("systemctl")
        .args(["reset-failed", unit])
        .output();
    let mut cmd = Command::new("systemd-run");
    cmd.args([
        "--unit",
        unit,
        "--service-type=oneshot",
        "--remain-after-exit",
        "--quiet",
    ])
    .arg(env!("CARGO_BIN_EXE_berth"))
    .arg("--root")
    .arg(&lab.path)
    .args(args);
    let out = run_timeout(cmd, Duration::from_secs(120));
    assert!(out.status.success(), "systemd-run: {}", describe(&out));
}

#[test]
fn stopping_the_service_that_ran_the_container_leaves_it_running_and_its_exit_recorded() {
    require_systemd!(
        "stopping_the_service_that_ran_the_container_leaves_it_running_and_its_exit_recorded"
    );
    let lab = Lab::new("sd-service");
    let unit = format!("berth-test-{}.service", std::process::id());
    // The container exits 7 once told to (a file appears).
    run_as_service(
        &lab,
        &unit,
        &[
            "run",
            "-d",
            "--name",
            "sd-service",
            BUSYBOX,
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.1; done; rm /tmp/go; exit 7",
        ],
    );
    let id = lab
        .ok(&["inspect", "-f", "{{.Id}}", "sd-service"])
        .trim()
        .to_string();
    lab.started.borrow_mut().push(id.clone());
    let pid = lab.state_pid(&id, "pid");
    let monitor = lab.state_pid(&id, "monitor_pid");
    let service_cgroup = Path::new("/sys/fs/cgroup/system.slice").join(&unit);
    assert_eq!(
        cgroup_procs(&service_cgroup),
        Vec::<i32>::new(),
        "nothing of berth stays in the caller's unit"
    );

    systemctl(&["stop", &unit]);
    assert!(alive(pid), "the container outlives the service");
    assert!(alive(monitor), "so does its monitor");
    assert_eq!(
        lab.ok(&["inspect", "-f", "{{.State.Status}}", "sd-service"])
            .trim(),
        "running"
    );

    lab.ok(&["exec", "sd-service", "touch", "/tmp/go"]);
    assert!(
        wait_until(Duration::from_secs(20), || lab
            .ok(&["inspect", "-f", "{{.State.Status}}", "sd-service"])
            .trim()
            == "exited"),
        "the container exits"
    );
    assert_eq!(
        lab.ok(&["inspect", "-f", "{{.State.ExitCode}}", "sd-service"])
            .trim(),
        "7",
        "its own exit code, recorded by its monitor"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !scope_dir(&id).exists()
            && unit_gone(&format!("berth-{id}.scope"))
            && unit_gone(&monitor_scope(&id))),
        "no scope or cgroup is left behind"
    );

    // Once more, stopped by berth after the service is gone: 137, and nothing left.
    run_as_service(&lab, &unit, &["start", "sd-service"]);
    let pid = lab.state_pid(&id, "pid");
    systemctl(&["stop", &unit]);
    assert!(alive(pid), "the restarted container outlives the service");
    lab.ok(&["kill", "sd-service"]);
    assert!(
        wait_until(Duration::from_secs(20), || lab
            .ok(&["inspect", "-f", "{{.State.ExitCode}}", "sd-service"])
            .trim()
            == "137"),
        "killed: 137"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !scope_dir(&id).exists()
            && unit_gone(&format!("berth-{id}.scope"))),
        "no scope is left behind"
    );
    let _ = Command::new("systemctl").args(["stop", &unit]).output();
}

#[test]
fn the_cgroupfs_driver_is_still_there_for_the_asking() {
    require_systemd!("the_cgroupfs_driver_is_still_there_for_the_asking");
    let lab = Lab::new("sd-cgroupfs");
    let config = lab.dir.join("config.json");
    fs::write(
        &config,
        r#"{"exec-opts": ["native.cgroupdriver=cgroupfs"]}"#,
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = lab.ok(&["--config", config, "run", "-d", BUSYBOX, "sleep", "100"]);
    let id = out.trim().to_string();
    lab.started.borrow_mut().push(id.clone());
    let pid = lab.state_pid(&id, "pid");
    assert_eq!(cgroup_of(pid), format!("/berth/{id}"));
    lab.ok(&["rm", "-f", &id]);
    assert!(!Path::new("/sys/fs/cgroup/berth").join(&id).exists());

    fs::write(lab.dir.join("config.json"), r#"{"cgroup-driver": "lxc"}"#).unwrap();
    let err = lab.fails(&["--config", config, "run", "-d", BUSYBOX, "true"], 125);
    assert!(err.contains("lxc"), "{err}");
}

/// `berth-runc --systemd-cgroup` with cgroupsPath `slice:prefix:name` makes the scope
/// `prefix-name.scope` in `slice`, as runc does.
#[test]
fn berth_runc_systemd_cgroup_makes_a_transient_scope() {
    require_systemd!("berth_runc_systemd_cgroup_makes_a_transient_scope");
    use common::bundle::{make_busybox_rootfs, scratch};
    let dir = scratch().join("sd-runc");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    make_busybox_rootfs(&dir.join("rootfs"));
    let runc = dir.join("berth-runc");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), &runc).unwrap();
    let root = dir.join("state");
    let berth_runc = |args: &[&str]| {
        let mut cmd = Command::new(&runc);
        cmd.arg("--root")
            .arg(&root)
            .arg("--systemd-cgroup")
            .args(args);
        run_timeout(cmd, Duration::from_secs(60))
    };
    let out = Command::new(&runc)
        .args(["spec", "--bundle"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["sleep", "100"]);
    let name = format!("sd{}", std::process::id());
    config["linux"]["cgroupsPath"] = format!("system.slice:berth-runc-test:{name}").into();
    config["linux"]["resources"]["pids"] = serde_json::json!({"limit": 33});
    fs::write(dir.join("config.json"), config.to_string()).unwrap();

    let bundle = dir.to_str().unwrap();
    // create hands its stdio to the container's init, which keeps it open: not pipes
    // this test would wait on for EOF.
    let log = dir.join("create.log");
    let status = Command::new(&runc)
        .arg("--root")
        .arg(&root)
        .args(["--systemd-cgroup", "create", "--bundle", bundle, &name])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "create: {status}: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let state: serde_json::Value =
        serde_json::from_slice(&berth_runc(&["state", &name]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap() as i32;
    let unit = format!("berth-runc-test-{name}.scope");
    assert_eq!(cgroup_of(pid), format!("/system.slice/{unit}"));
    let props = show(&unit, &["Delegate", "TasksMax", "ActiveState"]);
    assert_eq!(props["Delegate"], "yes");
    assert_eq!(props["TasksMax"], "33");
    assert_eq!(props["ActiveState"], "active");
    assert_eq!(
        read(
            &Path::new("/sys/fs/cgroup/system.slice").join(&unit),
            "pids.max"
        ),
        "33"
    );
    let out = berth_runc(&["delete", "--force", &name]);
    assert!(out.status.success(), "delete: {}", describe(&out));
    // The init was reparented to PID 1 when create exited, which reaps it.
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid) && unit_gone(&unit)),
        "the scope goes with the container"
    );
    let _ = fs::remove_dir_all(&dir);
}
