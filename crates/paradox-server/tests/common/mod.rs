//! Helpers for tests against an in-process server on ephemeral ports.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

use paradox_server::config::{ApiKeyConfig, ServerConfig};
use paradox_server::{start, RunningServer};
use serde_json::Value;
use std::net::SocketAddr;

/// A started server and the directory it serves.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub base: String,
    pub grpc: String,
    pub key: Option<String>,
}

/// A config on ephemeral ports over `dir`.
pub fn config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        data_dir: dir.join("data"),
        rest_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        grpc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServerConfig::default()
    }
}

pub fn key(name: &str, key: &str, role: &str, collections: Option<&[&str]>) -> ApiKeyConfig {
    let role = serde_json::from_value(Value::String(role.into())).unwrap();
    ApiKeyConfig {
        name: name.into(),
        key: key.into(),
        role,
        collections: collections.map(|c| c.iter().map(|s| s.to_string()).collect()),
    }
}

impl TestServer {
    /// Starts a server with `edit` applied to the default test config.
    pub async fn start(edit: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        edit(&mut config);
        let server = start(config).await.expect("server starts");
        TestServer::wrap(server, dir)
    }

    pub fn wrap(server: RunningServer, dir: tempfile::TempDir) -> TestServer {
        TestServer {
            base: format!("http://{}", server.rest_addr),
            grpc: format!("http://{}", server.grpc_addr.expect("grpc on")),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            key: None,
        }
    }

    /// Sends a JSON request; returns status and body (JSON, or a string for non-JSON).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(self.key.as_deref(), method, path, body).await
    }

    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Like [`TestServer::call_as`], with an `x-request-id` (to find the call's audit record).
    pub async fn call_traced(
        &self,
        key: Option<&str>,
        request_id: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("x-request-id", request_id);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            server.wait().await.expect("clean shutdown");
        }
    }
}

/// `{"error": {"code", "message"}}` check.
pub fn assert_error(body: &Value, code: &str, contains: &str) {
    assert_eq!(body["error"]["code"], code, "body: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(contains),
        "message {message:?} lacks {contains:?}"
    );
}

/// A deterministic vector for id `i`.
pub fn vector(i: u64, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|d| (((i * 31 + d as u64 * 17) % 97) as f32) / 97.0 + 0.01)
        .collect()
}

const WORDS: [&str; 12] = [
    "river",
    "bread",
    "engine",
    "violin",
    "market",
    "glacier",
    "pepper",
    "satellite",
    "orchard",
    "lantern",
    "harbor",
    "meadow",
];
const VERBS: [&str; 5] = ["watches", "carries", "paints", "follows", "repairs"];

/// A distinct sentence per id (no two share all their words).
pub fn sentence(i: usize) -> String {
    format!(
        "the {} {} a {} near the {}",
        WORDS[i % 12],
        VERBS[(i / 12) % 5],
        WORDS[(i * 7 + 3) % 12],
        WORDS[(i / 5 + 1) % 12]
    )
}

/// The space named `name` in a living collection's description.
pub fn living_space<'a>(living: &'a Value, name: &str) -> &'a Value {
    living["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no space {name} in {living}"))
}
