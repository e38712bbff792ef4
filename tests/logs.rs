//! Container logs as Docker's json-file driver keeps them (issue 22, item 3): rotation by
//! `--log-opt max-size/max-file` (and `compress`), the defaults from the configuration's
//! `log-driver`/`log-opts`, Docker's refusals of bad values, `logs` across rotated files,
//! `--tail` read from the end in bounded memory, `-f` through rotations, and
//! `HostConfig.LogConfig` in `inspect`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::BUSYBOX;
use common::lab::Lab;
use common::output::describe;
use common::procs::peak_rss_kb;
use common::wait::run_timeout;

fn wait_exit(lab: &Lab, name: &str) {
    let code = lab.ok_within(&["wait", name], Duration::from_secs(300));
    assert_eq!(code.trim(), "0", "{name} exited with {code}");
}

/// The container's log files (`<id>-json.log`, `<id>-json.log.1`, …), sorted by name.
fn log_files(lab: &Lab, id: &str) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(lab.container_dir(id))
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .filter(|(n, _)| n.contains("json.log") || n.ends_with(".log"))
        .collect();
    files.sort();
    files
}

/// A `--config` file holding `json`, kept beside the test's store.
fn config_file(lab: &Lab, json: &str) -> PathBuf {
    let path = lab.dir.join("config.json");
    std::fs::write(&path, json).unwrap();
    path
}

fn with_config<'a>(config: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    all
}

/// One JSON entry of ~1.1 kB per line: `line N` padded with 1000 `x`.
const NUMBERED_KB_LINES: &str = r#"pad=$(printf "%01000d" 0 | tr 0 x); i=0; while [ $i -lt $N ]; do echo "line $i $pad"; i=$((i+1)); done; echo last"#;

#[test]
fn rotation_keeps_max_file_files_of_max_size_and_logs_shows_the_newest_lines() {
    let lab = Lab::new("logs-rotate");
    // ≈ 3.3 MB of log for a limit of 2 × 100 kB.
    let script = format!("N=3000; {NUMBERED_KB_LINES}");
    let id = lab.run_d(&[
        "--name",
        "ct",
        "--log-opt",
        "max-size=100k",
        "--log-opt",
        "max-file=2",
        BUSYBOX,
        "sh",
        "-c",
        &script,
    ]);
    wait_exit(&lab, "ct");
    let files = log_files(&lab, &id);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [format!("{id}-json.log"), format!("{id}-json.log.1")],
        "Docker's names, two files: {files:?}"
    );
    for (name, size) in &files {
        // A file reaches max-size (decimal: 100,000 bytes) and takes one entry more.
        assert!(*size <= 100_000 + 1_200, "{name}: {size} bytes");
    }
    let rotated = files[1].1;
    assert!(rotated >= 100_000, "the rotated file is full: {files:?}");

    let out = run_timeout(lab.berth(&["logs", "ct"]), Duration::from_secs(60));
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"last"));
    // The newest lines, consecutive, oldest file first: a full file of them (~90 entries of
    // 1.1 kB) and what the current one has.
    let numbers: Vec<usize> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        (85..=185).contains(&numbers.len()),
        "{} lines kept",
        numbers.len()
    );
    assert_eq!(*numbers.last().unwrap(), 2999);
    for pair in numbers.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "lines out of order or missing");
    }
    // --tail across the two files.
    let tail = lab.ok(&["logs", "--tail", "2", "ct"]);
    assert!(
        tail.starts_with("line 2999 ") && tail.ends_with("\nlast\n"),
        "{tail:.40}"
    );
    let deep = lab.ok(&["logs", "--tail", &(numbers.len() - 3).to_string(), "ct"]);
    assert_eq!(deep.lines().count(), numbers.len() - 3);
    assert!(deep.starts_with(&format!("line {} ", numbers[4])));

    let inspect = lab.inspect("ct");
    assert_eq!(
        inspect["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "100k", "max-file": "2"}})
    );
    let log_path = inspect["LogPath"].as_str().unwrap();
    assert!(
        log_path.ends_with(&format!("/{id}/{id}-json.log")),
        "{log_path}"
    );
}

#[test]
fn compressed_rotated_files_are_read_by_logs() {
    let lab = Lab::new("logs-compress");
    let script = format!("N=600; {NUMBERED_KB_LINES}");
    let id = lab.run_d(&[
        "--name",
        "ct",
        "--log-opt",
        "max-size=100k",
        "--log-opt",
        "max-file=3",
        "--log-opt",
        "compress=true",
        BUSYBOX,
        "sh",
        "-c",
        &script,
    ]);
    wait_exit(&lab, "ct");
    let files = log_files(&lab, &id);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{id}-json.log"),
            format!("{id}-json.log.1.gz"),
            format!("{id}-json.log.2.gz")
        ],
        "{files:?}"
    );
    let all = lab.ok(&["logs", "ct"]);
    let numbers: Vec<usize> = all
        .lines()
        .filter(|l| *l != "last")
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(*numbers.last().unwrap(), 599);
    assert!(numbers.len() > 180, "{} lines", numbers.len());
    for pair in numbers.windows(2) {
        assert_eq!(pair[1], pair[0] + 1);
    }
    // A tail that reaches into the compressed files.
    let tail = lab.ok(&["logs", "--tail", "150", "ct"]);
    assert_eq!(tail.lines().count(), 150);
    assert!(
        tail.starts_with(&format!("line {} ", 600 - 149)),
        "{tail:.20}"
    );
}

#[test]
fn tail_of_a_large_log_reads_from_its_end_in_bounded_memory() {
    let lab = Lab::new("logs-large");
    // ≈ 210 MB of log, written as fast as the monitor takes it.
    lab.run_d_sh(
        "big",
        r#"yes "$(printf "%0999d" 0)" | head -n 200000; echo second-last; echo last"#,
    );
    wait_exit(&lab, "big");
    assert_eq!(
        lab.ok_within(&["logs", "--tail", "2", "big"], Duration::from_secs(60)),
        "second-last\nlast\n"
    );
    let id = lab.inspect("big")["Id"].as_str().unwrap().to_string();
    let size: u64 = log_files(&lab, &id).iter().map(|(_, s)| s).sum();
    assert!(size > 200_000_000, "log of {size} bytes");
    // Memory, not time: reading the whole file took twice its size before.
    let (code, tail_kb) = peak_rss_kb(
        lab.berth(&["logs", "--tail", "2", "big"]),
        Duration::from_secs(120),
    );
    assert_eq!(code, 0);
    assert!(tail_kb < 16 * 1024, "logs --tail 2: {tail_kb} kB resident");
    // Reading it all streams it: bounded too.
    let (code, all_kb) = peak_rss_kb(lab.berth(&["logs", "big"]), Duration::from_secs(600));
    assert_eq!(code, 0);
    assert!(all_kb < 16 * 1024, "logs: {all_kb} kB resident");
}

#[test]
fn follow_goes_through_rotations_without_losing_or_repeating_a_line() {
    let lab = Lab::new("logs-follow");
    // ~90 B entries, files of 2 kB: a rotation every ~22 lines, 45 in all, each kept (max-file
    // 100), so the follower finds every file however far behind it is. The pauses let it
    // catch up between rotations too.
    lab.run_d(&[
        "--name",
        "ct",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=100",
        BUSYBOX,
        "sh",
        "-c",
        "sleep 1; i=0; while [ $i -lt 1000 ]; do echo line $i; i=$((i+1)); \
         [ $((i % 50)) = 0 ] && sleep 0.05; done; echo done",
    ]);
    let out = lab.ok_within(&["logs", "-f", "ct"], Duration::from_secs(120));
    let want: String = (0..1000)
        .map(|i| format!("line {i}\n"))
        .chain(["done\n".to_string()])
        .collect();
    assert_eq!(out, want);
    // Following a stopped container's rotated log prints it and returns.
    assert_eq!(
        lab.ok_within(
            &["logs", "-f", "--tail", "3", "ct"],
            Duration::from_secs(30)
        ),
        "line 998\nline 999\ndone\n"
    );
}

#[test]
fn configuration_log_opts_are_the_defaults_and_flags_override_them_key_by_key() {
    let lab = Lab::new("logs-config");
    let config = config_file(&lab, r#"{"log-opts": {"max-size": "1k", "max-file": "2"}}"#);
    let log_config = |name: &str| lab.inspect(name)["HostConfig"]["LogConfig"].clone();

    lab.ok(&with_config(
        &config,
        &["create", "--name", "plain", BUSYBOX, "true"],
    ));
    assert_eq!(
        log_config("plain"),
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}})
    );
    lab.ok(&with_config(
        &config,
        &[
            "create",
            "--name",
            "more",
            "--log-opt",
            "max-file=3",
            BUSYBOX,
            "true",
        ],
    ));
    assert_eq!(
        log_config("more"),
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "3"}})
    );
    lab.ok(&with_config(
        &config,
        &[
            "create",
            "--name",
            "quiet",
            "--log-driver",
            "none",
            BUSYBOX,
            "true",
        ],
    ));
    assert_eq!(
        log_config("quiet"),
        serde_json::json!({"Type": "none", "Config": {}})
    );
    // Without the file, no defaults.
    lab.ok(&["create", "--name", "bare", BUSYBOX, "true"]);
    assert_eq!(
        log_config("bare"),
        serde_json::json!({"Type": "json-file", "Config": {}})
    );

    // The defaults rotate.
    let script = "i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done";
    let mut args = with_config(
        &config,
        &["run", "-d", "--name", "rot", BUSYBOX, "sh", "-c"],
    );
    args.push(script);
    let id = lab.ok(&args).trim().to_string();
    wait_exit(&lab, "rot");
    let files = log_files(&lab, &id);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files.iter().all(|(_, size)| *size < 1_000 + 200),
        "{files:?}"
    );
    assert_eq!(lab.ok(&["logs", "--tail", "1", "rot"]), "line 99\n");

    // A configured driver of none keeps no log, and `logs` says so as Docker does.
    let none = config_file(&lab, r#"{"log-driver": "none"}"#);
    let mut args = with_config(&none, &["run", "-d", "--name", "nolog", BUSYBOX, "echo"]);
    args.push("hi");
    let id = lab.ok(&args).trim().to_string();
    wait_exit(&lab, "nolog");
    assert!(log_files(&lab, &id).is_empty());
    assert_eq!(lab.inspect("nolog")["LogPath"], "");
    let err = lab.fails(&["logs", "nolog"], 1);
    assert_eq!(
        err,
        "Error response from daemon: configured logging driver does not support reading\n"
    );

    // A bad default is refused at create, naming the file.
    let bad = config_file(&lab, r#"{"log-opts": {"max-size": "lots"}}"#);
    let err = lab.fails(&with_config(&bad, &["create", BUSYBOX, "true"]), 1);
    assert!(
        err.contains("failed to initialize logging driver: invalid size: 'lots'")
            && err.contains(bad.to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn bad_log_options_are_refused_with_dockers_messages() {
    let lab = Lab::new("logs-refused");
    let daemon = "berth: Error response from daemon: ";
    let init = "berth: Error response from daemon: failed to initialize logging driver: ";
    let cases: &[(&[&str], String)] = &[
        (
            &["--log-opt", "max-size=abc"],
            format!("{init}invalid size: 'abc'"),
        ),
        (
            &["--log-opt", "max-size=10x"],
            format!("{init}invalid suffix: 'x'"),
        ),
        (
            &["--log-opt", "max-size=-1"],
            format!("{init}invalid size: '-1'"),
        ),
        (
            &["--log-opt", "max-size=0"],
            format!("{init}max-size must be a positive number"),
        ),
        (
            &["--log-opt", "max-file=0"],
            format!("{init}max-file cannot be less than 1"),
        ),
        (
            &["--log-opt", "max-file=x"],
            format!("{init}strconv.Atoi: parsing \"x\": invalid syntax"),
        ),
        (
            &["--log-opt", "max-size=1m", "--log-opt", "compress=true"],
            format!(
                "{init}compress cannot be true when max-file is less than 2 or max-size is not set"
            ),
        ),
        (
            &["--log-opt", "compress=yes"],
            format!("{init}strconv.ParseBool: parsing \"yes\": invalid syntax"),
        ),
        (
            &["--log-opt", "foo=bar"],
            format!("{daemon}unknown log opt 'foo' for json-file log driver"),
        ),
        (
            &["--log-driver", "none", "--log-opt", "max-size=1m"],
            "berth: invalid logging opts for driver none".to_string(),
        ),
        (
            &["--log-driver", "bogus"],
            format!("{daemon}error looking up logging plugin bogus: plugin \"bogus\" not found"),
        ),
    ];
    for (flags, message) in cases {
        for verb in ["create", "run"] {
            let mut args = vec![verb];
            args.extend_from_slice(flags);
            args.extend_from_slice(&[BUSYBOX, "true"]);
            // `create` prints a daemon's refusal as it is and exits 1; `run` says 125.
            let (code, message) = match message.strip_prefix("berth: ") {
                Some(bare) if verb == "create" && message.starts_with(daemon) => (1, bare),
                _ => (125, message.as_str()),
            };
            let err = lab.fails(&args, code);
            assert_eq!(err.trim_end(), message, "{args:?}");
        }
    }
    assert_eq!(
        lab.ok(&["ps", "-a", "-q"]),
        "",
        "a refused container was created"
    );
    // What Docker accepts: max-file alone (nothing rotates), its other options, decimal
    // sizes with units.
    for flags in [
        &["--log-opt", "max-file=3"][..],
        &["--log-opt", "max-size=1.5MB", "--log-opt", "max-file=2"],
        &["--log-opt", "max-size=10MiB", "--log-opt", "tag={{.Name}}"],
        &["--log-driver", "json-file", "--log-opt", "labels=a,b"],
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[BUSYBOX, "true"]);
        lab.ok(&args);
    }
}
