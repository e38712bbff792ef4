//! berth-runc on Kubernetes' path: containerd's CRI plugin with a runtime handler `berth`
//! (`io.containerd.runc.v2`, `BinaryName` = berth-runc, as a RuntimeClass selects it), driven
//! through the CRI gRPC API as the kubelet drives it. crictl is not packaged in Debian, so
//! tests/fixtures/cri/cri_client.py (python3-grpcio) is the client: it runs hostNetwork pods
//! (no CNI) — one with a PID namespace per container, one sharing the pod's — and checks every
//! answer; this test gives it a containerd of its
//! own and then checks that nothing is left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::containerd::Containerd;
use common::wait::{run_timeout, slow};

/// The handler's name, as a RuntimeClass's `handler` names it.
const HANDLER: &str = "berth";

fn start() -> Containerd {
    Containerd::start("cri", |dir, runc| {
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        format!(
            // restrict_oom_score_adj: this host refuses to lower oom_score_adj, as in a
            // user namespace. No CNI configuration: host-network pods need none. Port 0:
            // the streaming server must not collide with another containerd's.
            "[{cri}]\n\
             sandbox_image = \"{ANON}/pause:latest\"\n\
             restrict_oom_score_adj = true\n\
             stream_server_address = \"127.0.0.1\"\n\
             stream_server_port = \"0\"\n\
             [{cri}.cni]\n\
             bin_dir = \"{d}/cni/bin\"\n\
             conf_dir = \"{d}/cni/conf\"\n\
             [{cri}.containerd]\n\
             default_runtime_name = \"{HANDLER}\"\n\
             [{cri}.containerd.runtimes.{HANDLER}]\n\
             runtime_type = \"io.containerd.runc.v2\"\n\
             [{cri}.containerd.runtimes.{HANDLER}.options]\n\
             BinaryName = \"{runc}\"\n\
             Root = \"{d}/runc\"\n\
             SystemdCgroup = false\n\
             [{cri}.registry.mirrors.\"{ANON}\"]\n\
             endpoint = [\"http://{ANON}\"]\n",
            ANON = common::ANON,
            d = dir.display(),
            runc = runc.display(),
        )
    })
}

/// The pods' cgroup parent (as the kubelet's cgroupfs driver names one), removed when dropped
/// as the kubelet removes it, once the test's containerd has removed what is below.
struct CgroupParent(String);

impl CgroupParent {
    /// Its directories: in every v1 hierarchy (and the unified one), or v2's root.
    fn dirs(&self) -> Vec<PathBuf> {
        let root = Path::new("/sys/fs/cgroup");
        std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .chain([root.to_path_buf()])
            .map(|h| h.join(&self.0[1..]))
            .filter(|cg| cg.is_dir())
            .collect()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for cg in self.dirs() {
            let _ = std::fs::remove_dir(cg);
        }
    }
}

#[test]
fn kubelets_path_through_the_cri_plugin() {
    // A cgroup parent as the kubelet's cgroupfs driver gives one (kubepods/…/pod<uid>);
    // declared first, so dropped after the containerd whose drop ends what is below it.
    let parent = CgroupParent(format!("/berth-cri-{}", std::process::id()));
    let c = start();
    let logs = c.dir.join("pod-logs");
    let volume = c.dir.join("volume");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&volume).unwrap();
    let scale = std::env::var("BERTH_TEST_TIME_SCALE").unwrap_or_else(|_| "1".into());

    // Debian's python3 (the grpc modules are Debian packages), not one a PATH may put first.
    let mut client = Command::new("/usr/bin/python3");
    client
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cri/cri_client.py"))
        .arg("--socket")
        .arg(c.socket())
        .args(["--handler", HANDLER, "--image", common::BUSYBOX])
        .arg("--log-dir")
        .arg(&logs)
        .arg("--volume")
        .arg(&volume)
        .args(["--cgroup-parent", &parent.0])
        .args(["--runc", c.runc()])
        .arg("--runc-root")
        .arg(c.dir.join("runc/k8s.io"))
        .args(["--time-scale", &scale]);
    let out = run_timeout(client, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the CRI client failed:\n{stdout}{}\ncontainerd's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    assert!(
        stdout.ends_with("step shared PID namespace ok\n"),
        "{stdout}"
    );

    // Nothing left behind: no shim, no mount (the sandbox's /dev/shm, the rootfs), no cgroup.
    let deadline = std::time::Instant::now() + slow(Duration::from_secs(30));
    while !c.shims().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "shims left: {:?}",
            c.shims()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(c.mounts(), Vec::<String>::new());
    // Only the pods' own (empty) parent, which the kubelet would remove: no container's.
    for cg in parent.dirs() {
        let children: Vec<_> = std::fs::read_dir(&cg)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert!(children.is_empty(), "{}: {children:?}", cg.display());
    }
    let state = c.dir.join("runc/k8s.io");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "berth-runc state left: {left:?}");
}
