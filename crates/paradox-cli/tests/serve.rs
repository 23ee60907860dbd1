//! `paradox serve` as a real process: kill -9 and restart with acknowledged writes intact,
//! SIGTERM shuts down cleanly, and the paradoxlf 0.17 legacy routes keep their JSON shapes.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `paradox serve` and its REST address.
struct Served {
    child: Child,
    addr: String,
}

fn serve(data_dir: &Path, extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paradox"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("serve")
        .args(["--rest-addr", "127.0.0.1:0", "--grpc-addr", "off"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("PARADOX_DATA_DIR")
        .env_remove("PARADOX_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("paradox serve starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("paradox serving: REST ") {
                let addr = rest.split(',').next().unwrap().trim().to_string();
                let _ = tx.send(addr.replace("0.0.0.0", "127.0.0.1"));
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server announces its address");
    Served { child, addr }
}

/// One HTTP/1.1 request with `Connection: close`; returns status and JSON body.
fn http(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let payload = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

#[test]
fn kill_9_and_restart_keeps_acknowledged_writes_and_sigterm_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = serve(&data, &[]);
    let (status, _) = http(
        &server.addr,
        "POST",
        "/v1/collections",
        Some(json!({"name": "c", "dimension": 3, "metric": "l2"})),
    );
    assert_eq!(status, 201);
    for batch in 0..10u64 {
        let points: Vec<Value> = (0..20u64)
            .map(|j| {
                let id = batch * 20 + j;
                json!({"id": id, "vector": [id as f32, 1.0, 2.0], "payload": {"batch": batch}})
            })
            .collect();
        let (status, body) = http(
            &server.addr,
            "PUT",
            "/v1/collections/c/points",
            Some(json!({"points": points})),
        );
        assert_eq!(status, 200, "{body}");
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let mut server = serve(&data, &[]);
    let (_, body) = http(
        &server.addr,
        "POST",
        "/v1/collections/c/points/count",
        Some(json!({})),
    );
    assert_eq!(body["count"], 200, "{body}");
    let (_, point) = http(&server.addr, "GET", "/v1/collections/c/points/123", None);
    assert_eq!(point["vector"], json!([123.0, 1.0, 2.0]));
    assert_eq!(point["payload"]["batch"], 6);
    let (status, _) = http(&server.addr, "GET", "/readyz", None);
    assert_eq!(status, 200);

    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

#[test]
fn legacy_routes_keep_the_paradoxlf_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let pkl = dir.path().join("shard.pkl");
    let pkl = pkl.to_str().unwrap();
    let args = [
        "--legacy",
        "--id",
        "node_7",
        "--port",
        "0",
        "--dimension",
        "3",
        "--persistence",
        pkl,
    ];
    let mut server = serve(Path::new("unused"), &args);
    let (status, root) = http(&server.addr, "GET", "/", None);
    assert_eq!(status, 200);
    assert_eq!(
        root,
        json!({"status": "online", "id": "node_7", "count": 0})
    );
    let (status, added) = http(
        &server.addr,
        "POST",
        "/add",
        Some(json!({"vector": [1.0, 0.0, 0.0], "attributes": {"name": "a"}})),
    );
    assert_eq!((status, added), (200, json!({"status": "ok"})));
    let (status, _) = http(
        &server.addr,
        "POST",
        "/add",
        Some(json!({"vector": [0.0, 1.0, 0.0], "attributes": null})),
    );
    assert_eq!(status, 200);
    let (status, hits) = http(
        &server.addr,
        "POST",
        "/query",
        Some(json!({"vector": [0.9, 0.1, 0.0], "k": 2})),
    );
    assert_eq!(status, 200);
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["id"], 0);
    assert!(
        (hits[0]["distance"].as_f64().unwrap() - 0.02f64.sqrt()).abs() < 1e-4,
        "{hits:?}"
    );
    assert_eq!(hits[0]["attributes"], json!({"name": "a", "_id": 0}));
    assert_eq!(hits[1]["attributes"], json!({"_id": 1}));
    // `k` defaults to 5, as in 0.17.
    let (_, hits) = http(
        &server.addr,
        "POST",
        "/query",
        Some(json!({"vector": [0.0, 0.0, 1.0]})),
    );
    assert_eq!(hits.as_array().unwrap().len(), 2);
    let (status, _) = http(&server.addr, "POST", "/add", Some(json!({"vector": [1.0]})));
    assert_eq!(status, 400);
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // Ids continue after a restart; the data lives beside the old pickle path.
    assert!(dir.path().join("shard.paradox").is_dir());
    let mut server = serve(Path::new("unused"), &args);
    http(
        &server.addr,
        "POST",
        "/add",
        Some(json!({"vector": [0.0, 0.0, 1.0]})),
    );
    let (_, root) = http(&server.addr, "GET", "/", None);
    assert_eq!(root["count"], 3);
    let (_, hits) = http(
        &server.addr,
        "POST",
        "/query",
        Some(json!({"vector": [0.0, 0.0, 1.0], "k": 1})),
    );
    assert_eq!(hits[0]["id"], 2);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
