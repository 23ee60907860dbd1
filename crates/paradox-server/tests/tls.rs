//! TLS on both listeners with a self-signed certificate made in the test.

mod common;

use common::TestServer;
use paradox_client::{Client, ClientConfig};
use paradox_server::config::TlsConfig;
use serde_json::json;

#[tokio::test]
async fn rest_and_grpc_over_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut s = TestServer::start(|c| {
        c.tls = Some(TlsConfig {
            cert: cert_path.clone(),
            key: key_path.clone(),
        });
    })
    .await;
    let rest_port = s.server.as_ref().unwrap().rest_addr.port();
    let grpc_port = s.server.as_ref().unwrap().grpc_addr.unwrap().port();

    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], rest_port)),
        )
        .build()
        .unwrap();
    let base = format!("https://localhost:{rest_port}");
    let response = trusted
        .post(format!("{base}/v1/collections"))
        .json(&json!({"name": "secure", "dimension": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    // Plain HTTP to the TLS port fails; an untrusting client refuses the certificate.
    assert!(s
        .http
        .get(format!("http://127.0.0.1:{rest_port}/healthz"))
        .send()
        .await
        .is_err());
    let untrusting = reqwest::Client::builder()
        .resolve(
            "localhost",
            std::net::SocketAddr::from(([127, 0, 0, 1], rest_port)),
        )
        .build()
        .unwrap();
    assert!(untrusting
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err());

    let mut config = ClientConfig::new(format!("https://127.0.0.1:{grpc_port}"));
    config.ca_pem = Some(cert.cert.pem().into_bytes());
    config.tls_domain = Some("localhost".into());
    let client = Client::connect(config).await.unwrap();
    let names: Vec<String> = client
        .list_collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["secure"]);
    let plain = Client::connect(ClientConfig::new(format!("http://127.0.0.1:{grpc_port}"))).await;
    if let Ok(plain) = plain {
        assert!(plain.list_collections().await.is_err());
    }
    s.stop().await;
}
