//! Security checklist, registry cases 15–29 (docs/SECURITY.md): what a registry (or whatever
//! it redirects to) can do to a pull: wrong digests and sizes, broken and resumed downloads,
//! documents that are ambiguous, unsupported or too large, malformed digests, redirects and
//! token realms that fish for credentials, foreign layers. A bad pull must end in exit 1 with
//! one "Error response from daemon: …" line on stderr and leave nothing of itself in the store; credentials go to the
//! registry's own host only. Tests are named after the advisory they guard against, else
//! `case_N_…`; the registry is tests/common/fault_registry.rs, the harness
//! tests/common/sandbox.rs.
//!
//! Run as root: `cargo test --release --test security_registry`.

mod common;

use std::time::Duration;

use common::fault_registry::{
    DOCKER_CONFIG, DOCKER_FOREIGN_LAYER, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, Fault,
    FaultRegistry, Layer, OCI_INDEX, TarBuilder, build_image, build_index, flip_byte,
    image_from_layers, sha256,
};
use common::sandbox::{
    Sandbox, assert_clean_after_failure, assert_manifest_refused, assert_pulled,
    assert_store_intact, hex, noisy_layer, pull_good, serve, small_layer,
};

#[test]
fn case_15_layer_digest_mismatch_is_refused() {
    let sandbox = Sandbox::new("layer-digest");
    let (registry, image) = serve(
        "bad/layer",
        &[small_layer("first"), noisy_layer("second", 4096, 1)],
    );
    let bad = &image.layers[1];
    // Byte 4 is the gzip header's MTIME: the stream still decodes, only the digest is wrong.
    registry.set_fault(
        &FaultRegistry::blob_path("bad/layer", &bad.digest),
        Fault {
            replace_body: Some(flip_byte(&bad.blob, 4)),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/layer:latest"))
        .assert_fails(&["digest mismatch", &bad.digest]);
    assert_clean_after_failure(&sandbox, &registry, &image, &[&image.layers[0]]);
}

#[test]
fn case_15_config_digest_mismatch_is_refused() {
    let sandbox = Sandbox::new("config-digest");
    let (registry, image) = serve("bad/config", &[small_layer("config mismatch")]);
    registry.set_fault(
        &FaultRegistry::blob_path("bad/config", &image.config_digest),
        Fault {
            replace_body: Some(image.config.to_ascii_uppercase()),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/config:latest"))
        .assert_fails(&["digest mismatch", "image config", &image.config_digest]);
    // The config is checked before any layer is fetched.
    let layer_path = FaultRegistry::blob_path("bad/config", &image.layers[0].digest);
    assert!(registry.requests_to(&layer_path).is_empty());
    assert!(
        !sandbox
            .root()
            .join("blobs/sha256")
            .join(hex(&image.config_digest))
            .exists()
    );
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn case_15_manifest_digest_mismatch_is_refused() {
    let sandbox = Sandbox::new("wrong-digest");
    let (registry, image) = serve("bad/digest", &[small_layer("wrong digest")]);
    let claimed = sha256(b"some other manifest");
    registry.put_manifest_at("bad/digest", &claimed, DOCKER_MANIFEST, &image.manifest);
    sandbox
        .pull(&registry.reference(&format!("bad/digest@{claimed}")))
        .assert_fails(&["digest mismatch", &claimed, &image.manifest_digest]);
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn case_16_connection_dropped_once_resumes_with_range() {
    let sandbox = Sandbox::new("resume");
    let (registry, image) = serve("ok/resume", &[noisy_layer("blob", 32 * 1024, 4)]);
    let path = FaultRegistry::blob_path("ok/resume", &image.layers[0].digest);
    registry.set_fault(
        &path,
        Fault {
            truncate_at: Some(7000),
            truncate_times: Some(1),
            ..Fault::default()
        },
    );
    let reference = registry.reference("ok/resume:latest");
    sandbox.pull(&reference).assert_ok();
    let requests = registry.requests_to(&path);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(requests[1].range.as_deref(), Some("bytes=7000-"));
    assert_eq!(requests[1].status, 206);
    assert_pulled(&sandbox, &reference, &image);
}

#[test]
fn case_17_server_ignoring_range_after_a_drop_is_skipped_through() {
    let sandbox = Sandbox::new("norange");
    let (registry, image) = serve("ok/norange", &[noisy_layer("blob", 32 * 1024, 5)]);
    let path = FaultRegistry::blob_path("ok/norange", &image.layers[0].digest);
    registry.set_fault(
        &path,
        Fault {
            truncate_at: Some(9000),
            truncate_times: Some(1),
            ignore_range: true,
            ..Fault::default()
        },
    );
    let reference = registry.reference("ok/norange:latest");
    sandbox.pull(&reference).assert_ok();
    let requests = registry.requests_to(&path);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].range.as_deref(), Some("bytes=9000-"));
    assert_eq!(requests[1].status, 200, "the server was to ignore Range");
    assert_pulled(&sandbox, &reference, &image);
}

#[test]
fn case_18_blob_longer_than_its_descriptor_is_refused() {
    let sandbox = Sandbox::new("longer");
    let (registry, image) = serve("bad/longer", &[small_layer("longer")]);
    let layer = &image.layers[0];
    let mut served = layer.blob.clone();
    served.extend_from_slice(&[0u8; 100]);
    registry.set_fault(
        &FaultRegistry::blob_path("bad/longer", &layer.digest),
        Fault {
            replace_body: Some(served),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/longer:latest"))
        .assert_fails(&[&format!(
            "size mismatch for {}: expected {} bytes, got",
            layer.digest,
            layer.blob.len()
        )]);
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn case_18_blob_shorter_than_its_descriptor_is_refused() {
    let sandbox = Sandbox::new("shorter");
    let (registry, image) = serve("bad/shorter", &[noisy_layer("blob", 8 * 1024, 8)]);
    let layer = &image.layers[0];
    let path = FaultRegistry::blob_path("bad/shorter", &layer.digest);
    let short = layer.blob.len() - 100;
    // A complete, well-framed response that is simply 100 bytes short.
    registry.set_fault(
        &path,
        Fault {
            replace_body: Some(layer.blob[..short].to_vec()),
            ..Fault::default()
        },
    );
    // berth takes the early end for a dropped connection and asks for the rest, which the
    // registry cannot serve (416): a clean failure, if one whose message names no blob.
    sandbox
        .pull(&registry.reference("bad/shorter:latest"))
        .assert_fails(&["range not satisfiable"]);
    let requests = registry.requests_to(&path);
    assert_eq!(requests[0].status, 200);
    assert!(requests.len() > 1, "no resume attempted: {requests:?}");
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.status == 416 && r.range == Some(format!("bytes={short}-"))),
        "{requests:?}"
    );
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn case_19_index_without_the_host_platform() {
    let sandbox = Sandbox::new("index");
    let registry = FaultRegistry::start();
    let arm = image_from_layers(vec![Layer::gzip(&small_layer("arm64 only"))], "arm64");
    registry.put_blob(&arm.config);
    registry.put_blob(&arm.layers[0].blob);
    registry.put_manifest(
        "multi/arch",
        &arm.manifest_digest,
        DOCKER_MANIFEST,
        &arm.manifest,
    );
    let index = build_index(&[(&arm, "linux", "arm64")]);
    registry.put_manifest("multi/arch", "latest", OCI_INDEX, &index);
    let reference = registry.reference("multi/arch:latest");

    let line = sandbox.pull(&reference).assert_fails(&[]);
    assert_eq!(
        line,
        "Error response from daemon: no matching manifest for linux/amd64 in the manifest list entries"
    );
    pull_good(&sandbox);
    assert_store_intact(&sandbox.root());
    assert!(
        !sandbox
            .root()
            .join("layers")
            .join(arm.layers[0].diff_hex())
            .exists()
    );

    sandbox
        .run(&["pull", "--platform", "linux/arm64", &reference])
        .assert_ok();
    assert_pulled(&sandbox, &reference, &arm);
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            sandbox
                .root()
                .join("images")
                .join(format!("{}.json", hex(&arm.config_digest))),
        )
        .unwrap(),
    )
    .unwrap();
    // The repo digest names the index the tag resolved to.
    assert_eq!(
        record["repo_digests"],
        serde_json::json!([format!("{}/multi/arch@{}", registry.host(), sha256(&index))])
    );
}

#[test]
fn case_20_schema1_manifest_is_unsupported() {
    let body = serde_json::json!({
        "schemaVersion": 1,
        "name": "bad/schema1",
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [],
        "history": [],
    })
    .to_string();
    assert_manifest_refused(
        "schema1",
        DOCKER_SCHEMA1_SIGNED,
        body.as_bytes(),
        Fault::default(),
        &["unsupported manifest format", "schema 1"],
    );
}

#[test]
fn cve_2021_41190_manifest_that_is_also_an_index_is_refused() {
    let image = build_image(&[small_layer("ambiguous")]);
    let mut doc: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    doc["manifests"] = serde_json::json!([{
        "mediaType": DOCKER_MANIFEST,
        "digest": image.manifest_digest,
        "size": image.manifest.len(),
        "platform": {"os": "linux", "architecture": "amd64"},
    }]);
    assert_manifest_refused(
        "ambiguous",
        DOCKER_MANIFEST,
        &serde_json::to_vec(&doc).unwrap(),
        Fault::default(),
        &["invalid manifest: the document is both a manifest and an index"],
    );
}

#[test]
fn case_22_manifest_over_the_size_limit_is_refused() {
    assert_manifest_refused(
        "huge",
        DOCKER_MANIFEST,
        &huge_manifest(),
        Fault::default(),
        &["manifest", "exceeds the 4194304-byte limit"],
    );
}

#[test]
fn case_22_manifest_over_the_size_limit_without_content_length_is_refused() {
    assert_manifest_refused(
        "huge-chunked",
        DOCKER_MANIFEST,
        &huge_manifest(),
        Fault {
            no_content_length: true,
            ..Fault::default()
        },
        &["manifest", "exceeds the 4194304-byte limit"],
    );
}

#[test]
fn cve_2024_45336_redirected_blobs_get_no_credentials() {
    let sandbox = Sandbox::new("redirect");
    let registry = FaultRegistry::start_with_basic_auth("user", "pass");
    let cdn = FaultRegistry::start();
    let image = build_image(&[small_layer("behind a redirect")]);
    registry.push_image("priv/img", "latest", &image);
    cdn.push_image("priv/img", "latest", &image);
    let to_cdn = Fault {
        redirect: Some(format!("http://localhost:{}", cdn.port())),
        ..Fault::default()
    };
    let layer_path = FaultRegistry::blob_path("priv/img", &image.layers[0].digest);
    let config_path = FaultRegistry::blob_path("priv/img", &image.config_digest);
    registry.set_fault(&layer_path, to_cdn.clone());
    registry.set_fault(&config_path, to_cdn);
    std::fs::write(
        sandbox.docker_config().join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": "dXNlcjpwYXNz"}}}).to_string(),
    )
    .unwrap();

    let reference = registry.reference("priv/img:latest");
    sandbox.pull(&reference).assert_ok();
    assert_pulled(&sandbox, &reference, &image);

    let expected = Some("Basic dXNlcjpwYXNz".to_string());
    for path in [&layer_path, &config_path] {
        let asked = registry.requests_to(path);
        assert!(!asked.is_empty(), "{path} never asked of the registry");
        assert!(
            asked
                .iter()
                .all(|r| r.status == 307 && r.authorization == expected),
            "{asked:?}"
        );
        let fetched = cdn.requests_to(path);
        assert!(
            !fetched.is_empty(),
            "{path} never fetched from the redirect target"
        );
        assert!(
            fetched
                .iter()
                .all(|r| r.authorization.is_none() && r.status == 200),
            "credentials leaked to the redirect target: {fetched:?}"
        );
    }
    let manifest = registry.requests_to(&FaultRegistry::manifest_path("priv/img", "latest"));
    assert!(
        manifest
            .iter()
            .any(|r| r.status == 200 && r.authorization == expected),
        "{manifest:?}"
    );
}

#[test]
fn case_27_too_many_requests_honours_retry_after() {
    let sandbox = Sandbox::new("429");
    let (registry, image) = serve("ok/429", &[small_layer("429")]);
    let path = FaultRegistry::blob_path("ok/429", &image.layers[0].digest);
    registry.set_fault(
        &path,
        Fault {
            fail_status: Some(429),
            fail_times: 1,
            retry_after: Some(1),
            ..Fault::default()
        },
    );
    let reference = registry.reference("ok/429:latest");
    sandbox.pull(&reference).assert_ok();
    let requests = registry.requests_to(&path);
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_millis(900),
        "Retry-After: 1 not honoured (retried after {waited:?})"
    );
    assert_pulled(&sandbox, &reference, &image);
}

#[test]
fn case_29_unknown_layer_media_type_is_refused() {
    let mut layer = Layer::gzip(&small_layer("odd media type"));
    layer.media_type = "application/vnd.example.unknown.layer".into();
    let image = image_from_layers(vec![layer], "amd64");
    assert_manifest_refused(
        "mediatype",
        DOCKER_MANIFEST,
        &image.manifest,
        Fault::default(),
        &["unsupported layer media type application/vnd.example.unknown.layer"],
    );
}

fn huge_manifest() -> Vec<u8> {
    let padding = "x".repeat(5 << 20);
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "annotations": {"padding": padding},
    }))
    .unwrap()
}

/// A config blob over the 4 MiB document limit is refused, whatever its descriptor claims.
#[test]
fn case_22_config_over_the_size_limit_is_refused() {
    let sandbox = Sandbox::new("huge-config");
    let registry = FaultRegistry::start();
    let layer = Layer::gzip(&small_layer("huge config"));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "config": {"Labels": {"padding": "x".repeat(5 << 20)}},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.blob.len()}],
    }))
    .unwrap();
    registry.put_blob(&config);
    registry.put_blob(&layer.blob);
    registry.put_manifest("bad/config", "latest", DOCKER_MANIFEST, &manifest);
    sandbox
        .pull(&registry.reference("bad/config:latest"))
        .assert_fails(&["exceeds the 4194304-byte limit"]);
    assert!(
        registry
            .requests_to(&FaultRegistry::blob_path("bad/config", &layer.digest))
            .is_empty(),
        "a layer was fetched for a refused config"
    );
    pull_good(&sandbox);
    assert_store_intact(&sandbox.root());
}

/// A token response over the 1 MiB limit is refused (and so is one without a token).
#[test]
fn case_22_token_over_the_size_limit_is_refused() {
    let sandbox = Sandbox::new("huge-token");
    let registry = FaultRegistry::start_with_bearer("tok", None);
    registry.push_image("priv/img", "latest", &build_image(&[small_layer("token")]));
    let huge = serde_json::json!({"token": "t".repeat(2 << 20)}).to_string();
    for (body, needles) in [
        (
            huge.into_bytes(),
            &["token", "exceeds the 1048576-byte limit"][..],
        ),
        (
            br#"{"token": ""}"#.to_vec(),
            &["token response", "no token"][..],
        ),
    ] {
        registry.set_fault(
            "/token",
            Fault {
                replace_body: Some(body),
                ..Fault::default()
            },
        );
        sandbox
            .pull(&registry.reference("priv/img:latest"))
            .assert_fails(needles);
    }
    let manifests: Vec<_> = registry
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/manifests/") && r.status == 200)
        .collect();
    assert!(manifests.is_empty(), "{manifests:?}");
    pull_good(&sandbox);
    assert_store_intact(&sandbox.root());
}

/// Digests are checked before they name anything: a manifest whose config or layer digest is
/// not `sha256:` and 64 lowercase hex digits (path climbing, another algorithm, upper case, the
/// wrong length) is refused before any blob is asked for or any file is named after it.
#[test]
fn case_23_malformed_digests_are_refused_before_any_path_is_built() {
    let image = build_image(&[small_layer("bad digests")]);
    let good: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    let bad_digests = [
        "sha256:../../../../../../../../tmp/berth-digest-escape".to_string(),
        format!("sha256:{}/../x", "a".repeat(64)),
        format!("sha512:{}", "a".repeat(128)),
        format!("sha256:{}", "A".repeat(64)),
        "sha256:abc".to_string(),
        "nonsense".to_string(),
    ];
    for (i, digest) in bad_digests.iter().enumerate() {
        for field in ["config", "layer"] {
            let mut doc = good.clone();
            if field == "config" {
                doc["config"]["digest"] = digest.as_str().into();
            } else {
                doc["layers"][0]["digest"] = digest.as_str().into();
            }
            let (sandbox, _registry) = assert_manifest_refused(
                &format!("digest-{field}-{i}"),
                DOCKER_MANIFEST,
                &serde_json::to_vec(&doc).unwrap(),
                Fault::default(),
                &["invalid manifest", "digest"],
            );
            assert!(!std::path::Path::new("/tmp/berth-digest-escape").exists());
            let stray: Vec<_> = common::sandbox::walk(&sandbox.root())
                .into_iter()
                .filter(|p| p.to_string_lossy().contains("digest-escape"))
                .collect();
            assert!(stray.is_empty(), "{stray:?}");
        }
    }
}

/// Redirect chains: a blob redirected from the registry to one host and on to another gets
/// no credentials past the registry; a redirect loop ends in a clear failure, not a hang.
#[test]
fn case_25_redirect_chain_gets_no_credentials_and_loops_end() {
    let sandbox = Sandbox::new("redirect-chain");
    let registry = FaultRegistry::start_with_basic_auth("user", "pass");
    let hop = FaultRegistry::start();
    let cdn = FaultRegistry::start();
    let image = build_image(&[small_layer("two redirects away")]);
    registry.push_image("priv/img", "latest", &image);
    cdn.push_image("priv/img", "latest", &image);
    let layer_path = FaultRegistry::blob_path("priv/img", &image.layers[0].digest);
    registry.set_fault(
        &layer_path,
        Fault {
            redirect: Some(format!("http://localhost:{}", hop.port())),
            ..Fault::default()
        },
    );
    hop.set_fault(
        &layer_path,
        Fault {
            redirect: Some(format!("http://localhost:{}", cdn.port())),
            ..Fault::default()
        },
    );
    std::fs::write(
        sandbox.docker_config().join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": "dXNlcjpwYXNz"}}}).to_string(),
    )
    .unwrap();
    let reference = registry.reference("priv/img:latest");
    sandbox.pull(&reference).assert_ok();
    assert_pulled(&sandbox, &reference, &image);
    for (name, server) in [("hop", &hop), ("cdn", &cdn)] {
        let asked = server.requests_to(&layer_path);
        assert!(!asked.is_empty(), "{name} never asked");
        assert!(
            asked.iter().all(|r| r.authorization.is_none()),
            "credentials leaked to {name}: {asked:?}"
        );
    }

    // A loop: the redirect target redirects to itself.
    let sandbox = Sandbox::new("redirect-loop");
    let looping = FaultRegistry::start();
    looping.set_fault(
        &layer_path,
        Fault {
            redirect: Some(format!("http://localhost:{}", looping.port())),
            ..Fault::default()
        },
    );
    registry.set_fault(
        &layer_path,
        Fault {
            redirect: Some(format!("http://localhost:{}", looping.port())),
            ..Fault::default()
        },
    );
    std::fs::write(
        sandbox.docker_config().join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": "dXNlcjpwYXNz"}}}).to_string(),
    )
    .unwrap();
    let outcome = sandbox.pull(&reference);
    outcome.assert_fails(&["Too Many Redirects"]);
    assert!(outcome.took < Duration::from_secs(60), "{:?}", outcome.took);
    assert!(
        looping.requests().iter().all(|r| r.authorization.is_none()),
        "credentials sent into the loop"
    );
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

/// The Bearer token flow: a 401 challenge names a realm, the token from there is sent with
/// every request; the registry's credentials go to the realm only as Docker sends them (Basic
/// on the token request). A realm that is no http(s) URL is refused with one line.
#[test]
fn case_26_bearer_token_flow_and_bad_realms() {
    let sandbox = Sandbox::new("bearer");
    let registry = FaultRegistry::start_with_bearer("s3cret-token", None);
    let image = build_image(&[small_layer("behind a token")]);
    registry.push_image("priv/img", "latest", &image);
    let reference = registry.reference("priv/img:latest");
    sandbox.pull(&reference).assert_ok();
    assert_pulled(&sandbox, &reference, &image);
    let requests = registry.requests();
    let tokens: Vec<_> = requests.iter().filter(|r| r.path == "/token").collect();
    assert!(!tokens.is_empty(), "no token fetched: {requests:?}");
    assert!(
        requests
            .iter()
            .filter(|r| r.path.contains("/blobs/") || r.path.contains("/manifests/"))
            .filter(|r| r.status == 200)
            .all(|r| r.authorization.as_deref() == Some("Bearer s3cret-token")),
        "{requests:?}"
    );

    for realm in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/token",
        "not a url at all",
        "http://127.0.0.1:1/token",
    ] {
        let sandbox = Sandbox::new("bad-realm");
        let registry = FaultRegistry::start_with_bearer("tok", Some(realm));
        registry.push_image("priv/img", "latest", &image);
        let outcome = sandbox.pull(&registry.reference("priv/img:latest"));
        let line = outcome.assert_fails(&[realm]);
        assert!(
            outcome.took < Duration::from_secs(60),
            "{realm}: {:?}",
            outcome.took
        );
        assert!(!line.contains("root:x:0:0"), "{line}");
        pull_good(&sandbox);
        assert_store_intact(&sandbox.root());
    }
}

/// CVE-2020-15157: a foreign layer's `urls` name a host other than the registry; berth fetches
/// every layer from the registry by digest, so that host gets no request (and so none of the
/// registry's credentials, not even when it would ask for them with a 401).
#[test]
fn cve_2020_15157_foreign_layer_urls_get_no_credentials() {
    let registry = FaultRegistry::start_with_basic_auth("user", "pass");
    let evil = FaultRegistry::start_with_bearer("evil", None);
    let mut layer = Layer::gzip(&small_layer("foreign"));
    layer.media_type = DOCKER_FOREIGN_LAYER.to_string();
    let image = image_from_layers(vec![layer.clone()], "amd64");
    let mut doc: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    doc["layers"][0]["urls"] = serde_json::json!([format!(
        "http://127.0.0.1:{}/v2/evil/blobs/{}",
        evil.port(),
        layer.digest
    )]);
    let manifest = serde_json::to_vec(&doc).unwrap();
    registry.put_blob(&image.config);
    registry.put_manifest("priv/foreign", "latest", DOCKER_MANIFEST, &manifest);

    for with_blob in [true, false] {
        let sandbox = Sandbox::new("foreign");
        std::fs::write(
            sandbox.docker_config().join("config.json"),
            serde_json::json!({"auths": {registry.host(): {"auth": "dXNlcjpwYXNz"}}}).to_string(),
        )
        .unwrap();
        let reference = registry.reference("priv/foreign:latest");
        if with_blob {
            registry.put_blob(&layer.blob);
            sandbox.pull(&reference).assert_ok();
            assert_store_intact(&sandbox.root());
        } else {
            let other = Layer::gzip(&small_layer("foreign, only out there"));
            let image = image_from_layers(vec![other.clone()], "amd64");
            let mut doc: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
            doc["layers"][0]["mediaType"] = DOCKER_FOREIGN_LAYER.into();
            doc["layers"][0]["urls"] = serde_json::json!([format!(
                "http://127.0.0.1:{}/v2/evil/blobs/{}",
                evil.port(),
                other.digest
            )]);
            registry.put_blob(&image.config);
            registry.put_manifest(
                "priv/only-out",
                "latest",
                DOCKER_MANIFEST,
                &serde_json::to_vec(&doc).unwrap(),
            );
            sandbox
                .pull(&registry.reference("priv/only-out:latest"))
                .assert_fails(&["blob unknown"]);
            pull_good(&sandbox);
            assert_store_intact(&sandbox.root());
        }
    }
    let asked = evil.requests();
    assert!(
        asked.iter().all(|r| r.authorization.is_none()),
        "credentials sent to the foreign URL's host: {asked:?}"
    );
}

/// zstd-compressed OCI layers are pulled and unpacked like gzip ones.
#[test]
fn case_29_zstd_layer_is_pulled() {
    let sandbox = Sandbox::new("zstd");
    let registry = FaultRegistry::start();
    let tar = TarBuilder::new()
        .dir("z")
        .file("z/file", b"zstd compressed")
        .finish();
    let image = image_from_layers(
        vec![Layer::gzip(&small_layer("gzip base")), Layer::zstd(&tar)],
        "amd64",
    );
    registry.push_image("ok/zstd", "latest", &image);
    let reference = registry.reference("ok/zstd:latest");
    sandbox.pull(&reference).assert_ok();
    assert_pulled(&sandbox, &reference, &image);
    let diff = sandbox
        .root()
        .join("layers")
        .join(image.layers[1].diff_hex())
        .join("diff");
    assert_eq!(
        std::fs::read(diff.join("z/file")).unwrap(),
        b"zstd compressed"
    );
}
