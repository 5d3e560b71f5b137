//! IAM and S3 switched to an external endpoint (moto): the domain emulation then checks the role
//! and writes its snapshots into someone else's S3, through its own signed client.

use crate::common;

use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::json;

/// A `moto_server` child on a free port, killed (by its own pid) when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pinned moto, installed on first use by the e2e support library (never a global
/// install: a fresh CI machine has none, and the test must not depend on one).
fn python_with_moto() -> std::path::PathBuf {
    snapferry_tests::moto::python().to_owned()
}

// The child is owned by `Moto`, whose Drop kills and waits for it (also when this panics).
#[allow(clippy::zombie_processes)]
async fn moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python_with_moto())
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if reqwest::get(format!("{url}/moto-api/data.json"))
            .await
            .is_ok()
        {
            return Moto { child, url };
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("moto did not answer on {url} within 30 s");
}

#[tokio::test]
async fn snapshots_land_in_the_external_s3_and_restore_from_it() {
    let moto = moto().await;
    let mut config = fast_config();
    config.external.iam_endpoint = Some(moto.url.clone());
    config.external.s3_endpoint = Some(moto.url.clone());
    let h = start(config).await;

    // Role, bucket and policy live in moto: clients pointed at moto create them.
    let moto_conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.url)
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIAMOTO",
            "moto-secret",
            None,
            None,
            "t",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let iam = aws_sdk_iam::Client::new(&moto_conf);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto_conf)
            .force_path_style(true)
            .build(),
    );
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let arn = iam
        .create_role()
        .role_name("snap")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("moto CreateRole")
        .role
        .unwrap()
        .arn;
    s3.create_bucket()
        .bucket("moto-snaps")
        .send()
        .await
        .expect("moto CreateBucket");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::moto-snaps"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::moto-snaps/*"}
    ]});
    iam.put_role_policy()
        .role_name("snap")
        .policy_name("s")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("moto PutRolePolicy");

    let source = ready_domain(&h, "source").await;
    let target = ready_domain(&h, "target").await;
    let docs: Vec<(String, serde_json::Value)> =
        (0..40).map(|i| (i.to_string(), json!({"i": i}))).collect();
    source.bulk("events", &docs).await;
    let repo = json!({"type": "s3", "settings": {"bucket": "moto-snaps", "base_path": "ext", "role_arn": arn}});
    for d in [&source, &target] {
        let (status, body) = d.call("PUT", "/_snapshot/ext", Some(repo.clone())).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = source
        .call(
            "PUT",
            "/_snapshot/ext/s1?wait_for_completion=true",
            Some(json!({"indices": "events"})),
        )
        .await;
    assert_eq!(
        (status, body["snapshot"]["state"].as_str()),
        (200, Some("SUCCESS")),
        "{body}"
    );
    let listed = s3
        .list_objects_v2()
        .bucket("moto-snaps")
        .prefix("ext/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&"ext/indices/s1/events.json"), "{keys:?}");
    let (status, body) = target
        .call(
            "POST",
            "/_snapshot/ext/s1/_restore?wait_for_completion=true",
            Some(json!({"indices": "events"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, count) = target.call("GET", "/events/_count", None).await;
    assert_eq!(count["count"], 40);
    h.shutdown().await;
}
